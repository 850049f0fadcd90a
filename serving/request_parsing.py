"""How the BentoML endpoints read their JSON bodies: unknown fields refused, large
bodies validated off the event loop, one account at a time, and any body the
parser cannot take (nested too deeply, malformed multipart) a 400, never a 500.

pydantic validates a whole body in one Rust call that holds the GIL; for a
1,000-account body that starves the event loop for ~0.1-0.3 s, so ``/livez`` would
wait. Bodies above ``INLINE_BODY_BYTES`` are therefore validated in a worker thread,
account by account (the GIL changes hands between accounts). A single account's
body (a few KB, ~0.05 ms to validate) is validated on the event loop: handing it to
a thread and back costs more than the work (two thread wake-ups per request).
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request

from serving.schemas import MAX_BATCH_ACCOUNTS, FeatureAccount

#: Bodies up to this size are validated on the event loop (~30 accounts' features).
INLINE_BODY_BYTES = 64 * 1024


def parse_body(cls: Any, serde: Any, payload: Any, body: bytes) -> Any:
    """Validate a request body, one account at a time when it has ``accounts``.

    On any problem the whole body is validated the usual way (``serde``), so errors
    keep their exact location.
    """
    if "accounts" in cls.model_fields:
        try:
            data = json.loads(body)
            items = data["accounts"] if isinstance(data, dict) else None
            if isinstance(items, list) and 0 < len(items) <= MAX_BATCH_ACCOUNTS:
                accounts = [FeatureAccount.model_validate(item) for item in items]
                return cls.model_validate({**data, "accounts": accounts})
        except (ValueError, TypeError, KeyError, RecursionError):
            pass  # pydantic's own parser names the problem (it has no recursion limit issue)
    try:
        return serde.deserialize_model(payload, cls)
    except RecursionError:
        raise unreadable_body("JSON nested too deeply") from None


def unreadable_body(why: str) -> Exception:
    """A 400 for a body the parser cannot take (never a 500 with a traceback)."""
    from bentoml.exceptions import BadInput

    return BadInput(f"the request body could not be read: {why}")


async def read_other_media(original: Any, request: Request, serde: Any) -> Any:
    """Parse a non-JSON body (multipart, ...) with BentoML's own reader, turning its
    crashes on malformed input into a 400."""
    from bentoml.exceptions import BentoMLException
    from pydantic import ValidationError

    try:
        return await original(request, serde)
    except (BentoMLException, ValidationError):
        raise
    except Exception as exc:  # a malformed body must never be a 500
        media = request.headers.get("content-type", "?").split(";")[0]
        raise unreadable_body(f"malformed {media} body ({type(exc).__name__})") from None


def install_request_parsing(service: Any) -> None:
    """Refuse unknown top-level fields on the BentoML endpoints (pydantic
    ``extra="forbid"``) and validate large JSON bodies in a worker thread."""
    import anyio
    from _bentoml_impl.serde import JSONSerde, Payload

    for api in service.apis.values():
        spec = api.input_spec
        spec.model_config["extra"] = "forbid"
        spec.model_rebuild(force=True)
        original = spec.from_http_request

        async def from_http_request(
            cls: Any, request: Request, serde: Any, _original: Any = original
        ) -> Any:
            if not isinstance(serde, JSONSerde) or type(serde) is not JSONSerde:
                return await read_other_media(_original, request, serde)
            body = await request.body()
            payload = Payload((body,), metadata=request.headers)
            if len(body) <= INLINE_BODY_BYTES:
                return parse_body(cls, serde, payload, body)
            return await anyio.to_thread.run_sync(parse_body, cls, serde, payload, body)

        spec.from_http_request = classmethod(from_http_request)
