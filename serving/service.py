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

# ruff: noqa: E402 - the token check runs before the heavy imports, to fail fast
from __future__ import annotations

from serving.security import exit_without_token

exit_without_token()  # in the `bentoml serve` process, before any worker starts

import gc
import hmac
import json
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
from serving.finance_view import render_finance
from serving.forecast.view import read_latest_forecast
from serving.http_errors import ErrorShapeMiddleware, install_route_metrics, quiet_client_errors
from serving.input_checks import TrainingRanges
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
    check_accounts,
)
from serving.score_history import read_score_trend
from serving.scoring import (
    FeatureInputError,
    ScoringModels,
    load_scoring_models,
    score_feature_records,
)
from serving.security import (
    COOKIE_NAME,
    CSRF_COOKIE,
    SESSION_SECONDS,
    LoginThrottle,
    SecurityMiddleware,
    SessionSigner,
    read_api_token,
    read_cookie,
    safe_next,
)
from serving.store import ScoreStore
from serving.views import (
    APP_JS,
    PAGE_SIZE,
    render_account,
    render_list,
    render_login,
    render_not_found,
)

log = logging.getLogger("trialcast.serving")

ENV_CONFIG = "TRIALCAST_CONFIG"
ENV_WORKERS = "TRIALCAST_WORKERS"
#: Adaptive batching of ``/score_batch``: largest merged batch, and the latency
#: budget past which BentoML sheds queued requests with a 503 (generous: this
#: endpoint is for throughput; ``/score`` is the low-latency one).
BATCH_MAX_SIZE = 5_000
#: Allocations between young-generation collections (CPython's default is 700).
GC_GEN0_THRESHOLD = 50_000
BATCH_MAX_LATENCY_MS = 10_000


def serving_workers() -> int | str:
    """Worker processes: ``TRIALCAST_WORKERS``, else one per CPU core (``cpu_count``).

    More than one, so a crashed worker does not drop requests while it restarts.
    """
    raw = os.environ.get(ENV_WORKERS, "").strip()
    return int(raw) if raw.isdigit() and int(raw) > 0 else "cpu_count"


install_route_metrics()
quiet_client_errors()

TopK = Annotated[int, Field(ge=0, le=MAX_TOP_K, description="Factors of each sign to list.")]
AccountId = Annotated[str, Path(min_length=1, max_length=200)]
Search = Annotated[str | None, Query(max_length=200)]
Page = Annotated[int, Query(ge=1, le=1_000_000)]

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
    scored: list[dict[str, Any]],
    accounts: list[FeatureAccount],
    as_of: datetime,
    ranges: TrainingRanges,
) -> list[dict[str, Any]]:
    for item, account in zip(scored, accounts, strict=True):
        p = item["p_convert"]
        item["account_id"] = account.account_id
        item["as_of"] = as_of
        item["deal_value"] = account.deal_value
        item["expected_value"] = (
            p * account.deal_value if p is not None and account.deal_value is not None else None
        )
        item["warnings"] = [*item.get("warnings", []), *ranges.warnings(account.features)]
    return scored


@bentoml.service(
    name="trialcast",
    workers=serving_workers(),
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
        self.ranges = TrainingRanges.from_models(m.model for m in self.models.loaded())
        self.signer = SessionSigner(self.token)
        self.throttle = LoginThrottle.for_token(self.token)
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
            check_accounts(accounts)
            scored = score_feature_records(
                self.models, [a.features for a in accounts], top_k=top_k, explain_all=explain_all
            )
        except ValueError as exc:  # bad input, or a running trial for a trial-end model
            raise InvalidArgument(str(exc)) from None
        return _with_account_fields(scored, accounts, as_of or _now(), self.ranges)

    @bentoml.api(route="/score")
    def score(
        self,
        accounts: Annotated[list[FeatureAccount], Field(min_length=1, max_length=MAX_ACCOUNTS)],
        as_of: Moment | None = None,
        top_k: TopK = 5,
        explain_all: bool = False,
    ) -> list[AccountScore]:
        """Score one or many accounts from their features, with the reasons behind each score.

        A plain ``def``: BentoML runs it in a thread pool, so a large request does
        not hold the event loop (``/livez`` keeps answering). Trials get
        ``p_convert``; paying accounts (``customer_days_paying`` set) get
        ``p_churn``. Each explanation's ``base_value`` plus all contributions equals
        its ``logit`` exactly.
        """
        # Serialised here, in the worker thread (pydantic's Rust encoder), not on the event loop.
        scored = self._score(accounts, as_of, top_k, explain_all)
        # One account at a time: a single dump of a large list holds the GIL throughout.
        parts = [AccountScore.model_validate(x).model_dump_json().encode() for x in scored]
        body = b"[" + b",".join(parts) + b"]"
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
        if account.trial_start > moment:
            raise InvalidArgument(
                f"invalid account.trial_start: the trial starts after as_of ({moment:%Y-%m-%d %H:%M})"
            )
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
            warnings=[*scored["warnings"], *warnings, *self.ranges.warnings(features)],
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

    @web.get("/accounts/{account_id:path}", response_model=AccountScore, tags=["accounts"])
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
        return HTMLResponse(
            render_finance(
                read_latest_forecast(),
                company=self.config.company,
                currency=self.config.currency,
            )
        )

    @web.get("/ui", response_class=HTMLResponse, include_in_schema=False)
    def ui_list(
        self,
        persona: Annotated[str | None, Query(max_length=100)] = None,
        pql: Annotated[str | None, Query(max_length=3)] = None,
        q: Search = None,
        page: Page = 1,
    ) -> HTMLResponse:
        """The ranked account list (HTML), searchable by account id, a page at a time."""
        flag = {"yes": True, "no": False}.get(pql or "")
        frame = self.store.ranked(persona=persona or None, pql=flag, limit=None, search=q)
        matched = len(frame)
        pages = max(1, -(-matched // PAGE_SIZE))
        page = min(page, pages)
        rows = frame.iloc[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
        return HTMLResponse(
            render_list(
                rows.to_dict("records"),
                total=len(self.store),
                matched=matched,
                page=page,
                pages=pages,
                first_rank=(page - 1) * PAGE_SIZE + 1,
                persona=persona or None,
                pql=flag,
                search=q or "",
                as_of=self.store.as_of,
                company=self.config.company,
                persona_rates=self.models.persona_rates,
                window_days=self.config.trial.conversion_window_days,
            )
        )

    @web.get("/ui/app.js", include_in_schema=False)
    def ui_script(self) -> Response:
        """The sales view's only script (filters submit on change); CSP allows no inline code."""
        return Response(APP_JS, media_type="text/javascript")

    @web.get("/ui/accounts/{account_id:path}", response_class=HTMLResponse, include_in_schema=False)
    def ui_account(self, account_id: AccountId) -> HTMLResponse:
        """One account's page: dates, score trend, waterfall and reasons (HTML)."""
        found = self.store.account(account_id)
        if found is None:
            return HTMLResponse(
                render_not_found(account_id, company=self.config.company), status_code=404
            )
        trend = read_score_trend(self.store.path, account_id)
        return HTMLResponse(
            render_account(
                found,
                company=self.config.company,
                trend=trend,
                window_days=self.config.trial.conversion_window_days,
                persona_rates=self.models.persona_rates,
            )
        )

    def _login_page(
        self, *, next_path: str, failed: str | None = None, status: int = 200
    ) -> Response:
        cookie, form = self.signer.issue_csrf()
        response = HTMLResponse(
            render_login(
                failed=failed, company=self.config.company, csrf=form, next_path=next_path
            ),
            status_code=status,
        )
        response.set_cookie(
            CSRF_COOKIE,
            cookie,
            httponly=True,
            samesite="strict",
            secure=True,
            max_age=3600,
            path="/ui/login",
        )
        return response

    @web.get("/ui/login", response_class=HTMLResponse, include_in_schema=False)
    def ui_login_form(self, next: Annotated[str | None, Query(max_length=2000)] = None) -> Response:
        """The sign-in form (with its CSRF token; remembers the page asked for)."""
        return self._login_page(next_path=safe_next(next))

    @web.post("/ui/login", include_in_schema=False)
    async def ui_login(self, request: Request) -> Response:
        """Check the token from the form (CSRF, then the throttle); on success start a
        signed read-only session and go to the page that was asked for."""
        body = (await request.body())[:8192].decode("utf-8", errors="replace")
        form = parse_qs(body)
        token = (form.get("token") or [""])[0]
        next_path = safe_next((form.get("next") or [""])[0])
        csrf_cookie = read_cookie(request.scope, CSRF_COOKIE) or ""
        if not self.signer.valid_csrf(csrf_cookie, (form.get("csrf") or [""])[0]):
            return self._login_page(
                next_path=next_path, failed="The form expired; please sign in again.", status=403
            )
        client = request.client.host if request.client else "unknown"
        wait = self.throttle.retry_after(client)
        if wait > 0:
            response = self._login_page(
                next_path=next_path,
                failed=f"Too many wrong tries; wait {wait:.0f} s and try again.",
                status=429,
            )
            response.headers["Retry-After"] = str(max(1, round(wait + 0.5)))
            return response
        if not hmac.compare_digest(token.encode(), self.token.encode()):
            self.throttle.failed(client)
            log.warning("wrong sales-view token from %s", client)
            return self._login_page(
                next_path=next_path, failed="That token is not valid.", status=401
            )
        self.throttle.succeeded(client)
        response = RedirectResponse(next_path, status_code=303)
        response.set_cookie(
            COOKIE_NAME,
            self.signer.issue_session(),
            httponly=True,
            samesite="strict",
            secure=True,
            max_age=SESSION_SECONDS,
            path="/ui",
        )
        response.delete_cookie(CSRF_COOKIE, path="/ui/login")
        return response

    @web.get("/ui/logout", include_in_schema=False)
    def ui_logout(self) -> Response:
        """Forget the session cookie."""
        response = RedirectResponse("/ui/login", status_code=303)
        response.delete_cookie(
            COOKIE_NAME, path="/ui", secure=True, httponly=True, samesite="strict"
        )
        return response


def _parse_body(cls: Any, serde: Any, payload: Any, body: bytes) -> Any:
    """Validate a request body, one account at a time when it has ``accounts``.

    pydantic validates a whole body in one Rust call that holds the GIL; for a
    1,000-account body that starves the event loop thread for ~0.1-0.3 s. Account by
    account, the GIL changes hands between accounts. On any problem the whole body is
    validated the usual way, so errors keep their exact location.
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


def _forbid_unknown_fields(service: Any) -> None:
    """Refuse unknown top-level fields on the BentoML endpoints (pydantic ``extra="forbid"``),
    and parse JSON bodies in a worker thread, not on the event loop (a 1,000-account body
    takes ~0.1 s to validate; ``/livez`` must not wait for it)."""
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
            return await anyio.to_thread.run_sync(_parse_body, cls, serde, payload, body)

        spec.from_http_request = classmethod(from_http_request)


_forbid_unknown_fields(TrialcastService)
TrialcastService.add_asgi_middleware(SecurityMiddleware)  # type: ignore[attr-defined]
TrialcastService.add_asgi_middleware(ErrorShapeMiddleware)  # type: ignore[attr-defined]
