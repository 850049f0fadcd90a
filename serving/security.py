"""Authentication, the sales view's session, request size limits and security headers.

Every path needs ``Authorization: Bearer <TRIALCAST_API_TOKEN>`` except the
probes (``/livez``, ``/readyz``, ``/healthz``), Prometheus ``/metrics`` (request
counts and latencies by route template, no account data; set
``TRIALCAST_PROTECT_METRICS=1`` to require the token there too), the login form
and the sales view's script. A browser signs in once on ``/ui/login`` and gets a
**session**, not the token: a value signed with a key derived from the token
(``itsdangerous``), expiring after ``SESSION_SECONDS``, accepted for GET/HEAD of
``/ui`` pages only, so it can read pages but cannot call the scoring API. The
cookie is ``Secure`` (browsers accept that on ``http://localhost`` too),
``HttpOnly`` and ``SameSite=Strict``; the login form carries a signed CSRF token
that must match a cookie (double submit). Wrong tokens are throttled per client
address with an exponential back-off (``LoginThrottle``) shared by all workers.

Bodies larger than ``TRIALCAST_MAX_REQUEST_BYTES`` (default 8 MiB) get a 413
before any parsing: by ``Content-Length`` when given, else while reading. Every
response carries ``nosniff``, ``frame-ancestors 'none'`` / ``X-Frame-Options``,
``no-store`` and, on the sales view, a strict Content-Security-Policy.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import sqlite3
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import quote

from itsdangerous import BadSignature, URLSafeTimedSerializer

ENV_API_TOKEN = "TRIALCAST_API_TOKEN"
ENV_MAX_REQUEST_BYTES = "TRIALCAST_MAX_REQUEST_BYTES"
ENV_PROTECT_METRICS = "TRIALCAST_PROTECT_METRICS"
ENV_STATE_DIR = "TRIALCAST_STATE_DIR"
DEFAULT_MAX_REQUEST_BYTES = 8 * 1024 * 1024
COOKIE_NAME = "trialcast_session"
CSRF_COOKIE = "trialcast_csrf"
#: A sales-view session lasts a working day; then the user signs in again.
SESSION_SECONDS = 8 * 3600
#: A login form is good for an hour (its CSRF token expires).
CSRF_SECONDS = 3600
OPEN_PATHS = frozenset({"/livez", "/readyz", "/healthz"})
LOGIN_PATH = "/ui/login"
SCRIPT_PATH = "/ui/app.js"
MIN_TOKEN_LENGTH = 16
#: Wrong logins allowed per client address before the back-off starts.
FREE_LOGIN_FAILURES = 5
#: Longest lock-out after repeated wrong logins (the back-off doubles up to this).
MAX_LOCKOUT_SECONDS = 15 * 60

UI_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class TokenMissingError(RuntimeError):
    """The service was started without a usable API token."""


def token_problem(token: str | None) -> str | None:
    """Why ``token`` cannot protect the service, or ``None`` when it can."""
    if len(token or "") < MIN_TOKEN_LENGTH:
        return (
            f"set {ENV_API_TOKEN} to a secret of at least {MIN_TOKEN_LENGTH} characters "
            "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
        )
    return None


def exit_without_token(prog: str = "trialcast serve") -> None:
    """Exit with code 2 and a one-line message (no traceback) when the token is unusable.

    Called first thing when the service module is imported, so ``bentoml serve``
    stops within a second instead of starting workers that crash and restart.
    """
    problem = token_problem(os.environ.get(ENV_API_TOKEN))
    if problem:
        sys.stderr.write(f"{prog}: {problem}\n")
        raise SystemExit(2)


def read_api_token() -> str:
    """The API token from ``TRIALCAST_API_TOKEN``; refuses a missing or short one."""
    token = os.environ.get(ENV_API_TOKEN, "")
    problem = token_problem(token)
    if problem:
        raise TokenMissingError(problem)
    return token


def read_max_request_bytes() -> int:
    """The request body limit in bytes (``TRIALCAST_MAX_REQUEST_BYTES``, default 8 MiB)."""
    raw = os.environ.get(ENV_MAX_REQUEST_BYTES, "")
    return int(raw) if raw.strip().isdigit() else DEFAULT_MAX_REQUEST_BYTES


class SessionSigner:
    """Signs and checks sales-view sessions and login CSRF tokens.

    The key is derived from the API token (HMAC with a fixed label), so a
    session never contains the token and stops working when the token changes.
    """

    def __init__(self, token: str) -> None:
        key = hmac.new(token.encode(), b"trialcast sales view", hashlib.sha256).hexdigest()
        self._session = URLSafeTimedSerializer(key, salt="session")
        self._csrf = URLSafeTimedSerializer(key, salt="csrf")

    def issue_session(self) -> str:
        """A new read-only session value for the cookie."""
        return str(self._session.dumps({"scope": "read", "id": secrets.token_urlsafe(8)}))

    def valid_session(self, value: str) -> bool:
        """True for an unexpired session this service signed."""
        try:
            data = self._session.loads(value, max_age=SESSION_SECONDS)
        except (BadSignature, ValueError, TypeError):
            return False
        return isinstance(data, dict) and data.get("scope") == "read"

    def issue_csrf(self) -> tuple[str, str]:
        """A ``(cookie value, form value)`` pair for one login form."""
        nonce = secrets.token_urlsafe(16)
        return nonce, str(self._csrf.dumps(nonce))

    def valid_csrf(self, cookie: str, form: str) -> bool:
        """True when the form's signed token is fresh and matches the cookie."""
        try:
            nonce = self._csrf.loads(form, max_age=CSRF_SECONDS)
        except (BadSignature, ValueError, TypeError):
            return False
        return isinstance(nonce, str) and hmac.compare_digest(nonce.encode(), cookie.encode())


class LoginThrottle:
    """Counts wrong logins per client address in a small SQLite file all workers share.

    After ``FREE_LOGIN_FAILURES`` wrong tries the address is locked out for 1 s,
    then 2 s, 4 s, ... up to ``MAX_LOCKOUT_SECONDS``; during a lock-out even the
    right token is refused (429 with ``Retry-After``), so guessing cannot speed up.
    A right token outside a lock-out clears the count.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._db() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS failures "
                "(client TEXT PRIMARY KEY, count INTEGER, locked_until REAL)"
            )

    @classmethod
    def for_token(cls, token: str) -> LoginThrottle:
        """The throttle of this service (``TRIALCAST_STATE_DIR``, else the temp folder)."""
        root = Path(os.environ.get(ENV_STATE_DIR) or tempfile.gettempdir())
        digest = hashlib.sha256(token.encode()).hexdigest()[:12]
        return cls(root / f"trialcast-logins-{digest}.sqlite")

    def _db(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=5, isolation_level=None)

    def retry_after(self, client: str, now: float | None = None) -> float:
        """Seconds until ``client`` may try again (0 when it may now)."""
        now = time.time() if now is None else now
        with self._db() as db:
            row = db.execute(
                "SELECT locked_until FROM failures WHERE client = ?", (client,)
            ).fetchone()
        return max(0.0, float(row[0]) - now) if row else 0.0

    def failed(self, client: str, now: float | None = None) -> float:
        """Record a wrong try; returns the lock-out it starts (0 while still free)."""
        now = time.time() if now is None else now
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            row = db.execute("SELECT count FROM failures WHERE client = ?", (client,)).fetchone()
            count = (row[0] if row else 0) + 1
            over = count - FREE_LOGIN_FAILURES
            lock = 0.0 if over <= 0 else float(min(2 ** (over - 1), MAX_LOCKOUT_SECONDS))
            db.execute(
                "INSERT OR REPLACE INTO failures VALUES (?, ?, ?)", (client, count, now + lock)
            )
            db.execute("COMMIT")
        return lock

    def succeeded(self, client: str) -> None:
        """Forget ``client``'s wrong tries."""
        with self._db() as db:
            db.execute("DELETE FROM failures WHERE client = ?", (client,))


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path of the sales view, never another site."""
    if not target or not target.startswith("/ui") or "\\" in target or target.startswith("//"):
        return "/ui"
    return target


def _cookie(headers: dict[bytes, bytes], name: str) -> str | None:
    raw = headers.get(b"cookie")
    if raw is None:
        return None
    try:
        cookie = SimpleCookie(raw.decode("latin-1"))
    except Exception:  # a malformed cookie header is just "no cookie"
        return None
    morsel = cookie.get(name)
    return None if morsel is None else morsel.value


def read_cookie(scope: Scope, name: str) -> str | None:
    """The value of cookie ``name`` in the request, if any."""
    return _cookie(dict(scope.get("headers") or []), name)


async def _send_json(send: Send, status: int, body: dict[str, Any], headers: list | None = None):
    data = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(data)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})


def _error(message: str, field: str | None = None, detail: str | None = None) -> dict[str, Any]:
    return {"error": message, "field": field, "detail": detail}


def security_headers(path: str) -> list[tuple[bytes, bytes]]:
    """The headers every response of ``path`` carries."""
    out = [
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
        (b"referrer-policy", b"no-referrer"),
    ]
    if path not in OPEN_PATHS:
        out.append((b"cache-control", b"no-store"))
    csp = UI_CSP if path.startswith("/ui") else "frame-ancestors 'none'"
    out.append((b"content-security-policy", csp.encode()))
    return out


class SecurityMiddleware:
    """Checks the bearer token (or a sales-view session) and the body size of each request,
    and adds the security headers to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        token = read_api_token()
        self.token = token.encode()
        self.signer = SessionSigner(token)
        self.max_bytes = read_max_request_bytes()
        self.open_paths = set(OPEN_PATHS) | {LOGIN_PATH, SCRIPT_PATH}
        if os.environ.get(ENV_PROTECT_METRICS, "") not in ("1", "true", "yes"):
            self.open_paths.add("/metrics")

    def _authorised(self, scope: Scope, headers: dict[bytes, bytes]) -> bool:
        auth = headers.get(b"authorization", b"")
        if auth[:7].lower() == b"bearer " and hmac.compare_digest(auth[7:].strip(), self.token):
            return True
        path = scope.get("path", "")
        if scope.get("method") in ("GET", "HEAD") and (path == "/ui" or path.startswith("/ui/")):
            session = _cookie(headers, COOKIE_NAME)
            return session is not None and self.signer.valid_session(session)
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        extra = security_headers(path)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                added = [(k, v) for k, v in extra if k not in present]
                message = {**message, "headers": [*message.get("headers", []), *added]}
            await send(message)

        await self._handle(scope, receive, send_with_headers)

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        headers = dict(scope.get("headers") or [])
        if path not in self.open_paths and not self._authorised(scope, headers):
            if scope.get("method") in ("GET", "HEAD") and path.startswith("/ui"):
                query = scope.get("query_string", b"").decode("latin-1")
                target = path + (f"?{query}" if query else "")
                location = f"{LOGIN_PATH}?next={quote(target, safe='')}"
                await send(
                    {
                        "type": "http.response.start",
                        "status": 303,
                        "headers": [(b"location", location.encode()), (b"content-length", b"0")],
                    }
                )
                await send({"type": "http.response.body", "body": b""})
                return
            await _send_json(
                send,
                401,
                _error("missing or invalid bearer token", "Authorization", "Bearer <token>"),
                [(b"www-authenticate", b"Bearer")],
            )
            return
        length = headers.get(b"content-length")
        if length is not None:
            if not length.strip().isdigit():
                await _send_json(send, 400, _error("invalid Content-Length header"))
                return
            if int(length) > self.max_bytes:
                await _send_json(send, 413, _error(self._too_large()))
                return
            await self.app(scope, receive, send)
            return
        if scope.get("method") in ("GET", "HEAD", "OPTIONS", "DELETE"):
            await self.app(scope, receive, send)
            return
        # No Content-Length (chunked): read up to the limit, then replay the body.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes:
                await _send_json(send, 413, _error(self._too_large()))
                return
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _too_large(self) -> str:
        return f"request body larger than {self.max_bytes} bytes ({ENV_MAX_REQUEST_BYTES})"
