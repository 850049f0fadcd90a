"""One error shape, quiet logs for users' mistakes, and metrics by route template.

BentoML answers a bad request with ``{"error", "detail": [...]}`` (pydantic),
``[{"error"}]`` (its own exceptions) and FastAPI with 422 ``{"detail"}``, some of
them echoing the input. ``ErrorShapeMiddleware`` turns every JSON error into
``{"error", "field", "detail"}`` with short texts (no input echoed) and every
validation failure into a 400. ``quiet_client_errors`` logs 4xx at WARNING with
one line instead of an ERROR with a traceback. ``install_route_metrics`` makes
BentoML's Prometheus middleware label requests by route template
(``/accounts/{account_id}``, unknown paths as ``other``), so ``/metrics`` has a
bounded number of series and never an account id.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from serving.security import ASGIApp, Message, Receive, Scope, Send

#: Longest error text sent back (inputs are never echoed; messages are cut here).
MAX_TEXT = 300

_ROUTE_PATTERNS: tuple[tuple[str, str | None], ...] = (
    (r"/(score|score_batch|score_events|info|accounts|forecast|docs\.json|metrics)", None),
    (r"/(livez|readyz|healthz)", None),
    (r"/accounts/.+", "/accounts/{account_id}"),
    (r"/ui(/forecast|/login|/logout|/app\.js)?", None),
    (r"/ui/accounts/.+", "/ui/accounts/{account_id}"),
    (r"/", None),
)
#: Known routes: (pattern, template); ``None`` keeps the path (it has no parameters).
ROUTES = tuple((re.compile(pattern), template) for pattern, template in _ROUTE_PATTERNS)


def route_template(path: str) -> str:
    """The route a path belongs to (its template), or ``other`` for unknown paths."""
    for pattern, template in ROUTES:
        if pattern.fullmatch(path):
            return template or path
    return "other"


def install_route_metrics() -> None:
    """Make BentoML's HTTP metrics label by route template instead of by raw path."""
    from bentoml._internal.server.http import instruments

    base = instruments.RunnerTrafficMetricsMiddleware
    if getattr(base, "_trialcast_templates", False):
        return

    class _RestorePath:
        def __init__(self, app: ASGIApp) -> None:
            self.app = app

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            real = scope.pop("trialcast.path", None)
            if real is not None:
                scope["path"] = real
            await self.app(scope, receive, send)

    class RouteTemplateMetrics(base):  # type: ignore[misc,valid-type]
        _trialcast_templates = True

        def __init__(self, app: ASGIApp, **kwargs: Any) -> None:
            super().__init__(_RestorePath(app), **kwargs)

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"].startswith("http"):
                scope = dict(scope)
                scope["trialcast.path"] = scope["path"]
                scope["path"] = route_template(scope["path"])
            await super().__call__(scope, receive, send)

    instruments.RunnerTrafficMetricsMiddleware = RouteTemplateMetrics  # type: ignore[misc,assignment]


def _cut(text: Any) -> str | None:
    if text is None:
        return None
    text = str(text)
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 3] + "..."


#: The names pydantic gives the members of a union in an error's location
#: (``features.x.float``, ``features.x.constrained-str``): not part of the field.
_UNION_MEMBER = re.compile(r"float|int|str|bool|none|constrained-\w+|function-\w+\[.*\]|list\[.*\]")


def _field(loc: Any) -> str | None:
    parts = [str(p) for p in (loc or []) if p not in ("body", "query", "path")]
    while len(parts) > 1 and _UNION_MEMBER.fullmatch(parts[-1]):
        parts.pop()
    return ".".join(parts) or None


def _from_pydantic(errors: list[Any], fallback: str) -> dict[str, Any]:
    first = errors[0] if errors and isinstance(errors[0], dict) else {}
    field = _field(first.get("loc"))
    msg = str(first.get("msg") or fallback).removeprefix("Value error, ")
    more = len(errors) - 1
    detail = msg + (f" (and {more} more problem{'s' if more > 1 else ''})" if more > 0 else "")
    error = f"invalid {field}: {msg}" if field else msg
    return {"error": _cut(error), "field": _cut(field), "detail": _cut(detail)}


#: Our own messages name the field first: "invalid accounts.3.features.x: why".
_NAMED = re.compile(r"(?:invalid )?([A-Za-z_][\w.]*): (.+)", re.DOTALL)


def reshape_error(status: int, body: Any) -> tuple[int, dict[str, Any]]:
    """Any JSON error body as ``(status, {"error", "field", "detail"})``; 422 becomes 400."""
    if isinstance(body, list) and len(body) == 1 and isinstance(body[0], dict):
        body = body[0]
    if status == 422:
        status = 400
    if isinstance(body, dict) and set(body) == {"error", "field", "detail"}:
        return status, {k: _cut(v) for k, v in body.items()}
    if isinstance(body, dict) and isinstance(body.get("detail"), list):
        return status, _from_pydantic(body["detail"], str(body.get("error") or "invalid request"))
    if isinstance(body, dict):
        message = str(body.get("error") or body.get("detail") or "request failed")
        named = _NAMED.match(message)
        if named:
            return status, {
                "error": _cut(message),
                "field": _cut(named[1]),
                "detail": _cut(named[2]),
            }
        return status, {"error": _cut(message), "field": None, "detail": None}
    return status, {"error": "request failed", "field": None, "detail": None}


class ErrorShapeMiddleware:
    """Rewrites JSON error responses (status >= 400) into the one error shape."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        chunks: list[bytes] = []

        async def wrapped(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                headers = dict(message.get("headers") or [])
                is_json = headers.get(b"content-type", b"").startswith(b"application/json")
                if message["status"] >= 400 and is_json:
                    start = message
                    return
                await send(message)
            elif message["type"] == "http.response.body" and start is not None:
                chunks.append(message.get("body", b""))
                if message.get("more_body", False):
                    return
                try:
                    parsed = json.loads(b"".join(chunks) or b"null")
                except ValueError:
                    parsed = None
                status, shaped = reshape_error(int(start["status"]), parsed)
                data = json.dumps(shaped).encode()
                kept = [
                    (k, v)
                    for k, v in start.get("headers") or []
                    if k.lower() not in (b"content-length", b"content-type")
                ]
                kept += [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(data)).encode()),
                ]
                await send({**start, "status": status, "headers": kept})
                await send({"type": "http.response.body", "body": data})
            else:
                await send(message)

        await self.app(scope, receive, wrapped)


class _ClientErrorFilter(logging.Filter):
    """Turns BentoML's ERROR-with-traceback for a user's bad request into one WARNING line."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.exc_info or record.levelno < logging.ERROR:
            return True
        exc = record.exc_info[1]
        from bentoml.exceptions import BentoMLException
        from pydantic import ValidationError

        client = isinstance(exc, ValidationError) or (
            isinstance(exc, BentoMLException) and int(exc.error_code.value) < 500
        )
        if client:
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            summary = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            record.msg = f"{record.msg} (client error: {_cut(summary)})"
            record.exc_info, record.exc_text = None, None
        return True


def quiet_client_errors() -> None:
    """Log 4xx at WARNING without a traceback (5xx keep their ERROR and traceback)."""
    logger = logging.getLogger("bentoml._internal.server.http_app")
    if not any(isinstance(f, _ClientErrorFilter) for f in logger.filters):
        logger.addFilter(_ClientErrorFilter())
