"""Bearer-token authentication and request size limits, as one ASGI middleware.

Every path needs ``Authorization: Bearer <TRIALCAST_API_TOKEN>`` except the
probes (``/livez``, ``/readyz``, ``/healthz``), Prometheus ``/metrics`` (it holds
request counts and latencies, no account data; set ``TRIALCAST_PROTECT_METRICS=1``
to require the token there too) and the sales view's login form. A browser signs
in once on ``/ui/login``; the token then travels in an HttpOnly, SameSite=Strict
cookie that is accepted for GET/HEAD only, so it can read pages but cannot be
used to POST scoring requests from another site.

Bodies larger than ``TRIALCAST_MAX_REQUEST_BYTES`` (default 8 MiB) get a 413
before any parsing: by ``Content-Length`` when given, else while reading.
"""

from __future__ import annotations

import hmac
import json
import os
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import SimpleCookie
from typing import Any

ENV_API_TOKEN = "TRIALCAST_API_TOKEN"
ENV_MAX_REQUEST_BYTES = "TRIALCAST_MAX_REQUEST_BYTES"
ENV_PROTECT_METRICS = "TRIALCAST_PROTECT_METRICS"
DEFAULT_MAX_REQUEST_BYTES = 8 * 1024 * 1024
COOKIE_NAME = "trialcast_token"
OPEN_PATHS = frozenset({"/livez", "/readyz", "/healthz"})
LOGIN_PATH = "/ui/login"
MIN_TOKEN_LENGTH = 16

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class TokenMissingError(RuntimeError):
    """The service was started without a usable API token."""


def read_api_token() -> str:
    """The API token from ``TRIALCAST_API_TOKEN``; refuses a missing or short one."""
    token = os.environ.get(ENV_API_TOKEN, "")
    if len(token) < MIN_TOKEN_LENGTH:
        raise TokenMissingError(
            f"set {ENV_API_TOKEN} to a secret of at least {MIN_TOKEN_LENGTH} characters "
            "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
        )
    return token


def read_max_request_bytes() -> int:
    """The request body limit in bytes (``TRIALCAST_MAX_REQUEST_BYTES``, default 8 MiB)."""
    raw = os.environ.get(ENV_MAX_REQUEST_BYTES, "")
    return int(raw) if raw.strip().isdigit() else DEFAULT_MAX_REQUEST_BYTES


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


class SecurityMiddleware:
    """Checks the bearer token (or the sales-view cookie) and the body size of each request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.token = read_api_token().encode()
        self.max_bytes = read_max_request_bytes()
        self.open_paths = set(OPEN_PATHS)
        if os.environ.get(ENV_PROTECT_METRICS, "") not in ("1", "true", "yes"):
            self.open_paths.add("/metrics")

    def _authorised(self, scope: Scope) -> bool:
        headers = dict(scope.get("headers") or [])
        auth = headers.get(b"authorization", b"")
        if auth[:7].lower() == b"bearer " and hmac.compare_digest(auth[7:].strip(), self.token):
            return True
        if scope.get("method") in ("GET", "HEAD") and b"cookie" in headers:
            try:
                cookie = SimpleCookie(headers[b"cookie"].decode("latin-1"))
            except Exception:  # a malformed cookie header is just "no cookie"
                return False
            morsel = cookie.get(COOKIE_NAME)
            if morsel is not None:
                return hmac.compare_digest(morsel.value.encode(), self.token)
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        is_login = path == LOGIN_PATH
        if path not in self.open_paths and not is_login and not self._authorised(scope):
            if scope.get("method") == "GET" and path.startswith("/ui"):
                await send(
                    {
                        "type": "http.response.start",
                        "status": 303,
                        "headers": [(b"location", LOGIN_PATH.encode()), (b"content-length", b"0")],
                    }
                )
                await send({"type": "http.response.body", "body": b""})
                return
            await _send_json(
                send,
                401,
                {"error": "missing or invalid bearer token (Authorization: Bearer <token>)"},
                [(b"www-authenticate", b"Bearer")],
            )
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None:
            if not length.strip().isdigit():
                await _send_json(send, 400, {"error": "invalid Content-Length header"})
                return
            if int(length) > self.max_bytes:
                await _send_json(send, 413, {"error": self._too_large()})
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
                await _send_json(send, 413, {"error": self._too_large()})
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
