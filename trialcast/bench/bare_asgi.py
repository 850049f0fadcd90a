"""The transport floor for the serving benchmark: a bare ASGI app with one trivial route.

``python -m uvicorn trialcast.bench.bare_asgi:app`` serves ``GET /livez`` -> ``ok``
with uvicorn and Starlette only (no BentoML, no trialcast middleware, no model).
The same load generator against it measures what any Python HTTP service costs on
this machine (client, loopback, event loops, process wake-ups), so the service's
figures can be read against it in the same run.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route


async def livez(request: Request) -> PlainTextResponse:
    """Always ``ok``."""
    return PlainTextResponse("ok")


app = Starlette(routes=[Route("/livez", livez)])
