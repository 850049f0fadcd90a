"""The FastAPI app mounted on the scoring service, and its JSON GET routes.

``/info``, ``/accounts``, ``/accounts/{account_id}`` and ``/forecast`` read the
worker's ``ServiceState`` (the ``State`` dependency); the sales view's pages are in
``serving.ui_routes``. Kept light to import (see ``serving.state``).
"""

from __future__ import annotations

from typing import Annotated, Any

import pandas as pd
from fastapi import Depends, FastAPI, HTTPException, Path, Query

from serving.forecast.view import read_latest_forecast
from serving.schemas import AccountScore, AccountSummary, ModelInfo, ServiceInfo
from serving.state import ServiceState, current_state

#: The worker's state, as a route parameter.
State = Annotated[ServiceState, Depends(current_state)]
AccountId = Annotated[str, Path(min_length=1, max_length=200)]

web = FastAPI(
    title="trialcast sales view",
    docs_url=None,
    redoc_url=None,
    openapi_url=None,
)


@web.get("/info", response_model=ServiceInfo, tags=["accounts"])
def info(state: State) -> ServiceInfo:
    """The company, the models being served (and from where) and the batch snapshot."""
    state.store.refresh()
    as_of = state.store.as_of
    return ServiceInfo(
        company=state.config.company,
        models=[
            ModelInfo(
                kind=m.kind,
                name=m.name,
                version=m.version,
                alias=m.alias,
                source=m.source,
                detail=m.detail or None,
            )
            for m in state.models.loaded()
        ],
        scores_as_of=as_of.to_pydatetime() if as_of is not None else None,
        scored_accounts=len(state.store),
    )


@web.get("/accounts", response_model=list[AccountSummary], tags=["accounts"])
def accounts(
    state: State,
    persona: Annotated[str | None, Query(max_length=100)] = None,
    pql: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> list[AccountSummary]:
    """Open trials of the latest batch scores, by expected value, filtered by persona / PQL."""
    frame = state.store.ranked(persona=persona, pql=pql, limit=limit)
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
def account(state: State, account_id: AccountId) -> AccountScore:
    """One account from the latest batch scores (404 if it is not in them)."""
    found = state.store.account(account_id)
    if found is None:
        raise HTTPException(404, f"account {account_id!r} is not in the latest batch scores")
    return AccountScore.model_validate(found)


@web.get("/forecast", tags=["forecast"])
def forecast() -> dict[str, Any]:
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
