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

Endpoints: ``POST /score`` (one or many accounts from features), ``POST
/score_batch`` (the same with adaptive batching), ``POST /score_events`` (one
account from its raw rows), ``GET /accounts`` and ``GET /accounts/{account_id}``
(latest batch scores), ``GET /info``, the sales view under ``/ui``, and
BentoML's ``/livez``, ``/readyz`` and ``/metrics``.
"""

from __future__ import annotations

import gc
import hmac
import logging
import os
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import parse_qs

import bentoml
import pandas as pd
from bentoml.exceptions import InvalidArgument
from fastapi import FastAPI, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import Field

from features.config import CompanyConfig, load_config, load_demo_config
from features.validation import InputError
from serving.forecast.view import read_latest_forecast, render_forecast
from serving.online_features import AccountDataError, build_account_features
from serving.schemas import (
    MAX_ACCOUNTS,
    MAX_BATCH_ACCOUNTS,
    MAX_COMMUNICATIONS,
    MAX_EVENTS,
    MAX_TOP_K,
    AccountRow,
    AccountScore,
    AccountSummary,
    CommunicationRow,
    EventRow,
    FeatureAccount,
    FeatureCatalog,
    ModelInfo,
    Moment,
    ServiceInfo,
)
from serving.scoring import (
    FeatureInputError,
    ScoringModels,
    load_scoring_models,
    score_feature_records,
)
from serving.security import COOKIE_NAME, SecurityMiddleware, read_api_token
from serving.store import ScoreStore
from serving.views import render_account, render_list, render_login, render_not_found

log = logging.getLogger("trialcast.serving")

ENV_CONFIG = "TRIALCAST_CONFIG"
#: Adaptive batching of ``/score_batch``: largest merged batch, and the latency
#: budget past which BentoML sheds queued requests with a 503 (generous: this
#: endpoint is for throughput; ``/score`` is the low-latency one).
BATCH_MAX_SIZE = 5_000
#: Allocations between young-generation collections (CPython's default is 700).
GC_GEN0_THRESHOLD = 50_000
BATCH_MAX_LATENCY_MS = 10_000

TopK = Annotated[int, Field(ge=0, le=MAX_TOP_K, description="Factors of each sign to list.")]
AccountId = Annotated[str, Path(min_length=1, max_length=200)]

web = FastAPI(
    title="trialcast sales view",
    docs_url=None,
    redoc_url=None,
    openapi_url=None,
)


def load_company_config() -> CompanyConfig:
    """The company config named by ``TRIALCAST_CONFIG``, else the demo config."""
    path = os.environ.get(ENV_CONFIG)
    return load_config(path) if path else load_demo_config()


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _with_account_fields(
    scored: list[dict[str, Any]], accounts: list[FeatureAccount], as_of: datetime
) -> list[dict[str, Any]]:
    for item, account in zip(scored, accounts, strict=True):
        p = item["p_convert"]
        item["account_id"] = account.account_id
        item["as_of"] = as_of
        item["deal_value"] = account.deal_value
        item["expected_value"] = (
            p * account.deal_value if p is not None and account.deal_value is not None else None
        )
        item.setdefault("warnings", [])
    return scored


@bentoml.service(
    name="trialcast",
    workers=1,
    traffic={"timeout": 60},
    logging={"access": {"enabled": False}},
)
@bentoml.asgi_app(web, path="/")
class TrialcastService:
    """Scores trials (conversion) and paying accounts (churn) with exact, plain-English reasons."""

    def __init__(self) -> None:
        self.token = read_api_token()  # refuses to start without a token
        self.config = load_company_config()
        self.models: ScoringModels = load_scoring_models(self.config)
        FeatureCatalog.set(self.models.numeric, self.models.categorical)
        self.store = ScoreStore.open()
        # Warm up (first predictions allocate; the batch dispatcher learns from them).
        score_feature_records(self.models, [{}], top_k=5)
        # Long-lived objects (models, snapshot, imported modules) leave the GC's view,
        # and young-generation collections run less often: fewer pauses in the p99.
        gc.collect()
        gc.freeze()
        gc.set_threshold(GC_GEN0_THRESHOLD, 20, 20)
        for loaded in self.models.loaded():
            log.info(
                "serving %s v%s (%s) from %s",
                loaded.name,
                loaded.version,
                loaded.alias,
                loaded.source,
            )

    def __is_ready__(self) -> bool:
        """Ready once the conversion model is loaded (it is, when ``__init__`` returned)."""
        return self.models.conversion is not None

    def _score(
        self, accounts: list[FeatureAccount], as_of: datetime | None, top_k: int, explain_all: bool
    ) -> list[dict[str, Any]]:
        try:
            scored = score_feature_records(
                self.models, [a.features for a in accounts], top_k=top_k, explain_all=explain_all
            )
        except FeatureInputError as exc:  # e.g. a running trial for a trial-end model
            raise InvalidArgument(str(exc)) from exc
        return _with_account_fields(scored, accounts, as_of or _now())

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
        its ``logit`` exactly.
        """
        return [
            AccountScore.model_validate(x) for x in self._score(accounts, as_of, top_k, explain_all)
        ]

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
        return [AccountScore.model_validate(x) for x in self._score(accounts, None, 5, False)]

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
    ) -> AccountScore:
        """Score one account from its raw rows (account, events, communications).

        Features are built with the training feature code and the model's feature
        spec, from data strictly before ``as_of`` (default: now, UTC).
        """
        moment = as_of or _now()
        row = {
            **account.attributes,
            **account.model_dump(exclude={"attributes"}),
        }
        try:
            features, warnings = build_account_features(
                self.config,
                self.models.spec("conversion"),
                row,
                [e.model_dump() for e in events or []],
                [c.model_dump() for c in communications or []],
                pd.Timestamp(moment),
            )
        except (AccountDataError, InputError, ValueError, KeyError) as exc:
            raise InvalidArgument(str(exc)) from exc
        try:
            scored = score_feature_records(
                self.models, [features], top_k=top_k, explain_all=explain_all
            )[0]
        except FeatureInputError as exc:
            raise InvalidArgument(str(exc)) from exc
        p = scored["p_convert"]
        scored.update(
            account_id=account.account_id,
            as_of=moment,
            deal_value=account.deal_value,
            expected_value=p * account.deal_value
            if p is not None and account.deal_value is not None
            else None,
            warnings=[*scored["warnings"], *warnings],
        )
        return AccountScore.model_validate(scored)

    # --- GET endpoints and the sales view (FastAPI, mounted on the same server) ----------

    @web.get("/info", response_model=ServiceInfo, tags=["accounts"])
    def info(self) -> ServiceInfo:
        """The company, the models being served (and from where) and the batch snapshot."""
        self.store.refresh()
        as_of = self.store.as_of
        return ServiceInfo(
            company=self.config.company,
            models=[
                ModelInfo(
                    kind=m.kind, name=m.name, version=m.version, alias=m.alias, source=m.source
                )
                for m in self.models.loaded()
            ],
            scores_as_of=as_of.to_pydatetime() if as_of is not None else None,
            scored_accounts=len(self.store),
        )

    @web.get("/accounts", response_model=list[AccountSummary], tags=["accounts"])
    def accounts(
        self,
        persona: Annotated[str | None, Query(max_length=100)] = None,
        pql: bool | None = None,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    ) -> list[AccountSummary]:
        """Open trials of the latest batch scores, by expected value, filtered by persona / PQL."""
        frame = self.store.ranked(persona=persona, pql=pql, limit=limit)
        return [
            AccountSummary(
                account_id=str(r["account_id"]),
                p_convert=float(r["p_convert"]),
                deal_value=None if pd.isna(r["deal_value"]) else float(r["deal_value"]),
                expected_value=None if pd.isna(r["expected_value"]) else float(r["expected_value"]),
                persona=str(r["persona"]),
                pql=bool(r["pql"]),
                trial_days_left=float(r["trial_days_left"]),
            )
            for r in frame.to_dict("records")
        ]

    @web.get("/accounts/{account_id}", response_model=AccountScore, tags=["accounts"])
    def account(self, account_id: AccountId) -> AccountScore:
        """One account from the latest batch scores (404 if it is not in them)."""
        found = self.store.account(account_id)
        if found is None:
            raise HTTPException(404, f"account {account_id!r} is not in the latest batch scores")
        return AccountScore.model_validate(found)

    @web.get("/forecast", tags=["forecast"])
    def forecast(self) -> dict[str, Any]:
        """The latest revenue forecast (``trialcast forecast``): expected new revenue from
        open trials with P10 / P50 / P90, in total, by month and by segment."""
        latest = read_latest_forecast()
        if latest is None:
            raise HTTPException(404, "no forecast yet: run `trialcast forecast -c CONFIG`")
        return {
            "as_of": latest.as_of,
            "model_version": latest.model_version,
            "rows": latest.breakdown.to_dict("records"),
        }

    @web.get("/ui/forecast", response_class=HTMLResponse, include_in_schema=False)
    def ui_forecast(self) -> HTMLResponse:
        """The finance page: the latest forecast with its range and picture."""
        return HTMLResponse(render_forecast(read_latest_forecast(), company=self.config.company))

    @web.get("/ui", response_class=HTMLResponse, include_in_schema=False)
    def ui_list(
        self,
        persona: Annotated[str | None, Query(max_length=100)] = None,
        pql: Annotated[str | None, Query(max_length=3)] = None,
    ) -> HTMLResponse:
        """The ranked account list (HTML)."""
        flag = {"yes": True, "no": False}.get(pql or "")
        frame = self.store.ranked(persona=persona or None, pql=flag, limit=500)
        total = len(self.store)
        return HTMLResponse(
            render_list(
                frame.to_dict("records"),
                total=total,
                persona=persona or None,
                pql=flag,
                as_of=self.store.as_of,
                company=self.config.company,
            )
        )

    @web.get("/ui/accounts/{account_id}", response_class=HTMLResponse, include_in_schema=False)
    def ui_account(self, account_id: AccountId) -> HTMLResponse:
        """One account's page with its waterfall and reasons (HTML)."""
        found = self.store.account(account_id)
        if found is None:
            return HTMLResponse(
                render_not_found(account_id, company=self.config.company), status_code=404
            )
        return HTMLResponse(render_account(found, company=self.config.company))

    @web.get("/ui/login", response_class=HTMLResponse, include_in_schema=False)
    def ui_login_form(self) -> HTMLResponse:
        """The sign-in form."""
        return HTMLResponse(render_login(company=self.config.company))

    @web.post("/ui/login", include_in_schema=False)
    async def ui_login(self, request: Request) -> Response:
        """Check the token from the form; on success set the session cookie and go to the list."""
        body = (await request.body())[:4096].decode("utf-8", errors="replace")
        token = (parse_qs(body).get("token") or [""])[0]
        if not hmac.compare_digest(token.encode(), self.token.encode()):
            return HTMLResponse(render_login(failed=True), status_code=401)
        response = RedirectResponse("/ui", status_code=303)
        response.set_cookie(
            COOKIE_NAME,
            token,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            max_age=12 * 3600,
        )
        return response

    @web.get("/ui/logout", include_in_schema=False)
    def ui_logout(self) -> Response:
        """Forget the session cookie."""
        response = RedirectResponse("/ui/login", status_code=303)
        response.delete_cookie(COOKIE_NAME)
        return response


TrialcastService.add_asgi_middleware(SecurityMiddleware)  # type: ignore[attr-defined]
