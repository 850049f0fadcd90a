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
that must match a cookie (double submit). Signing out ends the session on the
server too (``serving.auth_state.SessionRevocations``): the old cookie no longer
opens a page. Wrong tokens, on the login form and as bearer tokens on the API, are
throttled per client address with an exponential back-off shared by all workers
(``serving.auth_state.FailureThrottle``; 429 with ``Retry-After``).

The client address is the connection's peer. ``X-Forwarded-For`` is honoured only
from the proxies listed in ``TRIALCAST_TRUSTED_PROXIES`` (addresses or networks,
comma-separated; none by default), so a client cannot pick its own address by
sending the header (``apply_trusted_proxies``).

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
import sys
import time
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import quote

from itsdangerous import BadSignature, URLSafeTimedSerializer

from serving.auth_state import FailureThrottle, SessionRevocations

#: The login form's throttle (the name other modules and tests know it by).
LoginThrottle = FailureThrottle

ENV_API_TOKEN = "TRIALCAST_API_TOKEN"
ENV_MAX_REQUEST_BYTES = "TRIALCAST_MAX_REQUEST_BYTES"
ENV_PROTECT_METRICS = "TRIALCAST_PROTECT_METRICS"
ENV_TRUSTED_PROXIES = "TRIALCAST_TRUSTED_PROXIES"
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

#: A right bearer token's client is looked up in the shared throttle at most this often.
RECHECK_SECONDS = 1.0
MAX_REMEMBERED_CLIENTS = 10_000

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
        return self.session_id(value) is not None

    def session_id(self, value: str) -> str | None:
        """The id of an unexpired session this service signed (``None`` if it is not one)."""
        try:
            data = self._session.loads(value, max_age=SESSION_SECONDS)
        except (BadSignature, ValueError, TypeError):
            return None
        if not isinstance(data, dict) or data.get("scope") != "read":
            return None
        return str(data.get("id", ""))

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


def apply_trusted_proxies() -> None:
    """Let uvicorn take the client address from ``X-Forwarded-For`` only when the
    connection comes from a proxy in ``TRIALCAST_TRUSTED_PROXIES`` (none by default).

    uvicorn trusts the header from 127.0.0.1 unless told otherwise
    (``FORWARDED_ALLOW_IPS``), so any local client could choose its address and
    dodge the throttles. Called when the service module is imported, in every
    worker, before uvicorn reads its settings.
    """
    os.environ["FORWARDED_ALLOW_IPS"] = os.environ.get(ENV_TRUSTED_PROXIES, "").strip()


def client_address(scope: Scope) -> str:
    """The request's client address (the peer, or as a trusted proxy reported it)."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


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
        self.revocations = SessionRevocations.for_token(token)
        self.bearer_throttle = FailureThrottle.for_token(token, "bearer")
        #: Client -> (when this worker last read its throttle state, its lock-out end).
        self._checked: dict[str, tuple[float, float]] = {}
        self.open_paths = set(OPEN_PATHS) | {LOGIN_PATH, SCRIPT_PATH}
        if os.environ.get(ENV_PROTECT_METRICS, "") not in ("1", "true", "yes"):
            self.open_paths.add("/metrics")

    def _authorised(self, scope: Scope, headers: dict[bytes, bytes]) -> bool | None:
        """True: the right token or a live session; None: a wrong bearer token; False: none."""
        auth = headers.get(b"authorization", b"")
        if auth[:7].lower() == b"bearer ":
            return True if hmac.compare_digest(auth[7:].strip(), self.token) else None
        path = scope.get("path", "")
        if scope.get("method") in ("GET", "HEAD") and (path == "/ui" or path.startswith("/ui/")):
            session = _cookie(headers, COOKIE_NAME)
            sid = None if session is None else self.signer.session_id(session)
            return sid is not None and not self.revocations.is_revoked(sid)
        return False

    def _bearer_wait(self, client: str, authorised: bool | None) -> float:
        """Seconds ``client`` must wait before its bearer token is even looked at.

        A wrong token is recorded in the shared throttle (a lock-out refuses even the
        right token, so guessing cannot go faster). For a right token the shared file
        is read at most once per ``RECHECK_SECONDS`` per client and worker (not on
        every request of the hot path); a client that had wrong tries and is no longer
        locked out has its count cleared.
        """
        now = time.time()
        if authorised is None:
            wait = self.bearer_throttle.retry_after(client, now)
            if wait <= 0:
                self._checked[client] = (now, now + self.bearer_throttle.failed(client, now))
                return 0.0
            self._checked[client] = (now, now + wait)
            return wait
        checked = self._checked.get(client)
        if checked is None or now - checked[0] > RECHECK_SECONDS:
            if len(self._checked) > MAX_REMEMBERED_CLIENTS:
                self._checked.clear()
            count, until = self.bearer_throttle.status(client)
            if count and until <= now:
                self.bearer_throttle.succeeded(client)
            checked = self._checked[client] = (now, until)
        return max(0.0, checked[1] - now)

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
        authorised = True if path in self.open_paths else self._authorised(scope, headers)
        if authorised is not False and path not in self.open_paths:
            wait = self._bearer_wait(client_address(scope), authorised)
            if wait > 0:
                await _send_json(
                    send,
                    429,
                    _error(
                        f"too many wrong tokens from this address; wait {wait:.0f} s",
                        "Authorization",
                    ),
                    [(b"retry-after", str(max(1, round(wait + 0.5))).encode())],
                )
                return
        if not authorised:
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
