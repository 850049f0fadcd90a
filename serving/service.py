"""The trialcast scoring service (BentoML): scores with exact reasons, and the sales view.

Run it with ``bentoml serve serving.service:TrialcastService`` (or the ``serve``
job in ``trialcast.serve_job``). Settings come from the environment:

- ``TRIALCAST_API_TOKEN`` (required): bearer token for every endpoint except the
  probes and ``/metrics`` (see ``serving.security``).
- ``TRIALCAST_CONFIG``: the company config (default: the demo config).
- ``TRIALCAST_TRACKING_URI`` / ``TRIALCAST_MODEL_ALIAS``: where the models are
  registered and which alias to serve (default ``champion``); the last good copy
  is kept under ``models/serving_cache`` for when the registry is down.
- ``TRIALCAST_SCORES_PATH``: the batch scores the sales view and
  ``/accounts/{account_id}`` read (default ``models/scores/latest.parquet``).
- ``TRIALCAST_REGISTRY_WAIT``: seconds to wait for a down registry before serving
  the cached copy (default 10; ``serving.preflight``).
- ``TRIALCAST_TRUSTED_PROXIES``: proxies whose ``X-Forwarded-For`` names the client
  (none by default; ``serving.security``).
- ``TRIALCAST_WORKERS``: worker processes (default: one per CPU core, at least two).
- ``TRIALCAST_TRACING=1``: let BentoML's OpenTelemetry middleware trace requests
  (off by default: BentoML samples no traces unless configured to, yet building
  the unsampled spans cost ~0.2 ms per request).

Endpoints: ``POST /score`` (one or many accounts from features), ``POST
/score_batch`` (the same with adaptive batching), ``POST /score_events`` (one
account from its raw rows), and from ``serving.web`` / ``serving.ui_routes``:
``GET /info``, ``/accounts``, ``/accounts/{account_id}``, ``/forecast`` and the
sales view under ``/ui``; BentoML adds ``/livez``, ``/readyz`` and ``/metrics``.

This module is imported by ``bentoml serve``'s supervisor process too, which
only needs the endpoints' shapes: the models' libraries are imported in each
worker (``ServiceState.load``, ``serving.scoring_api``), not here.
"""

# ruff: noqa: E402 - the token check runs before the other imports, to fail fast
from __future__ import annotations

from serving.security import apply_trusted_proxies, exit_without_token

exit_without_token()  # in the `bentoml serve` process, before any worker starts
apply_trusted_proxies()  # X-Forwarded-For only from TRIALCAST_TRUSTED_PROXIES

from serving.preflight import exit_without_model

exit_without_model()  # no model anywhere: one clear exit, not workers restarting forever

import os
from typing import TYPE_CHECKING, Annotated, Any

import anyio
import bentoml
from fastapi.responses import Response
from pydantic import Field, StringConstraints

import serving.funnel_routes  # registers /funnel and /ui/funnel on `web`
import serving.health_routes  # registers the Model health page and gauges on `web`
import serving.ui_routes  # noqa: F401 - registers the sales view's pages on `web`
from features.parallel import usable_cores
from serving.http_errors import ErrorShapeMiddleware, install_route_metrics, quiet_client_errors
from serving.request_parsing import install_request_parsing
from serving.schemas import (
    MAX_ACCOUNTS,
    MAX_BATCH_ACCOUNTS,
    MAX_COMMUNICATIONS,
    MAX_EVENTS,
    MAX_TOP_K,
    AccountRow,
    AccountScore,
    CommunicationRow,
    EventRow,
    FeatureAccount,
    FeatureValue,
    Moment,
)
from serving.security import SecurityMiddleware
from serving.web import web

if TYPE_CHECKING:
    from serving.state import ServiceState

ENV_WORKERS = "TRIALCAST_WORKERS"
ENV_TRACING = "TRIALCAST_TRACING"
#: Default workers never go below this (see ``serving_workers``).
MIN_WORKERS = 2
#: Adaptive batching of ``/score_batch``: largest merged batch, and the latency
#: budget past which BentoML sheds queued requests with a 503 (generous: this
#: endpoint is for throughput; ``/score`` is the low-latency one).
BATCH_MAX_SIZE = 5_000
BATCH_MAX_LATENCY_MS = 10_000
#: ``/score`` requests with at most this many accounts are scored on the event loop
#: (about 1.5 ms for one account, under 5 ms for 8); larger ones in a worker thread,
#: so a big request never holds ``/livez``. A thread round trip costs more than
#: scoring one account.
INLINE_ACCOUNTS = 8


def serving_workers() -> int:
    """Worker processes: ``TRIALCAST_WORKERS``, else one per core this process may run on
    (its CPU affinity: a container or ``taskset`` limited to 2 of 64 cores gets 2) and at
    least two.

    At least two, so a crashed worker does not drop requests while it restarts (the
    other one keeps accepting on the shared socket).
    """
    raw = os.environ.get(ENV_WORKERS, "").strip()
    if raw.isdigit() and int(raw) > 0:
        return int(raw)
    return max(MIN_WORKERS, usable_cores())


def tracing_config() -> dict[str, Any]:
    """BentoML's tracing settings: every URL excluded unless ``TRIALCAST_TRACING=1``."""
    if os.environ.get(ENV_TRACING, "") in ("1", "true", "yes"):
        return {}
    return {"excluded_urls": [".*"]}


install_route_metrics()
quiet_client_errors()

TopK = Annotated[int, Field(ge=0, le=MAX_TOP_K, description="Factors of each sign to list.")]


@bentoml.service(
    name="trialcast",
    workers=serving_workers(),
    traffic={"timeout": 60},
    logging={"access": {"enabled": False}},
    tracing=tracing_config(),
)
@bentoml.asgi_app(web, path="/")
class TrialcastService:
    """Scores trials (conversion) and paying accounts (churn) with exact, plain-English reasons."""

    def __init__(self) -> None:
        from models.loader import ModelUnavailableError
        from serving.state import ServiceState

        try:
            self.state: ServiceState = ServiceState.load()
        except ModelUnavailableError as exc:
            # The supervisor's check passed, but the model went away since: stop the
            # whole service with the reason instead of restarting this worker forever.
            import logging
            import signal

            logging.getLogger("trialcast.serving").error("cannot serve: %s; stopping", exc)
            os.kill(os.getppid(), signal.SIGTERM)
            raise
        self._offload: anyio.CapacityLimiter | None = None

    def __is_ready__(self) -> bool:
        """Ready once the conversion model is loaded (it is, when ``__init__`` returned)."""
        return self.state.models.conversion is not None

    @bentoml.api(route="/score")
    async def score(
        self,
        accounts: Annotated[list[FeatureAccount], Field(min_length=1, max_length=MAX_ACCOUNTS)],
        as_of: Moment | None = None,
        top_k: TopK = 5,
        explain_all: bool = False,
    ) -> list[AccountScore]:
        """Score one or many accounts from their features, with the reasons behind each score.

        Trials get ``p_convert``; paying accounts (``customer_days_paying`` set) get
        ``p_churn``. Each explanation's ``base_value`` plus all contributions equals
        its ``logit`` exactly. Up to ``INLINE_ACCOUNTS`` accounts are scored on the
        event loop; more in a worker thread (one at a time per worker), so a large
        request does not hold the event loop (``/livez`` keeps answering).
        """
        from serving.scoring_api import score_features_json

        args = (self.state, accounts, as_of, top_k, explain_all)
        if len(accounts) <= INLINE_ACCOUNTS:
            body = score_features_json(*args)
        else:
            if self._offload is None:
                self._offload = anyio.CapacityLimiter(1)
            body = await anyio.to_thread.run_sync(score_features_json, *args, limiter=self._offload)
        return Response(body, media_type="application/json")  # type: ignore[return-value]

    @bentoml.api(
        route="/score_batch",
        batchable=True,
        max_batch_size=BATCH_MAX_SIZE,
        max_latency_ms=BATCH_MAX_LATENCY_MS,
    )
    def score_batch(
        self,
        accounts: Annotated[
            list[FeatureAccount], Field(min_length=1, max_length=MAX_BATCH_ACCOUNTS)
        ],
    ) -> list[AccountScore]:
        """Score accounts with adaptive batching: concurrent requests are merged into one pass.

        Same output as ``/score`` with the default 5 factors of each sign.
        """
        from serving.scoring_api import score_features

        scored = score_features(self.state, accounts, None, 5, False)
        return [AccountScore.model_validate(x) for x in scored]

    @bentoml.api(route="/score_events")
    def score_events(
        self,
        account: AccountRow,
        events: Annotated[list[EventRow] | None, Field(max_length=MAX_EVENTS)] = None,
        communications: Annotated[
            list[CommunicationRow] | None, Field(max_length=MAX_COMMUNICATIONS)
        ] = None,
        as_of: Moment | None = None,
        top_k: TopK = 5,
        explain_all: bool = False,
        table_features: Annotated[
            dict[Annotated[str, StringConstraints(max_length=200)], FeatureValue] | None,
            Field(max_length=500),
        ] = None,
    ) -> AccountScore:
        """Score one account from its raw rows (account, events, communications).

        Features are built with the training feature code and the model's feature
        spec, from data strictly before ``as_of`` (default: now, UTC). A model
        trained with a feature table (``[sources.features]``) also needs the
        account's row of that table in ``table_features`` (source column names);
        columns left out score as missing, each with a warning.
        """
        from serving.scoring_api import score_raw_rows

        return score_raw_rows(
            self.state, account, events, communications, as_of, top_k, explain_all, table_features
        )


install_request_parsing(TrialcastService)
TrialcastService.add_asgi_middleware(SecurityMiddleware)  # type: ignore[attr-defined]
TrialcastService.add_asgi_middleware(ErrorShapeMiddleware)  # type: ignore[attr-defined]
