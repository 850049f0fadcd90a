"""How the BentoML endpoints read their JSON bodies: unknown fields refused, and large
bodies validated off the event loop, one account at a time.

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
        except (ValueError, TypeError, KeyError):
            pass
    return serde.deserialize_model(payload, cls)


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
                return await _original(request, serde)
            body = await request.body()
            payload = Payload((body,), metadata=request.headers)
            if len(body) <= INLINE_BODY_BYTES:
                return parse_body(cls, serde, payload, body)
            return await anyio.to_thread.run_sync(parse_body, cls, serde, payload, body)

        spec.from_http_request = classmethod(from_http_request)
