"""The work behind the scoring endpoints: check, score, add the account's fields, encode.

Plain functions of the worker's ``ServiceState`` so that ``serving.service`` can run
them either on the event loop (small requests) or in a worker thread (large ones).
Imported lazily by the service: this module pulls in the models' libraries.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from bentoml.exceptions import InvalidArgument

from features.validation import InputError
from serving.input_checks import TrainingRanges
from serving.online_features import AccountDataError, build_account_features
from serving.schemas import (
    AccountRow,
    AccountScore,
    CommunicationRow,
    EventRow,
    FeatureAccount,
    check_accounts,
)
from serving.scoring import FeatureInputError, score_feature_records
from serving.state import ServiceState


def now_utc() -> datetime:
    """Now, as naive UTC (the tables' form)."""
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


def score_features(
    state: ServiceState,
    accounts: list[FeatureAccount],
    as_of: datetime | None,
    top_k: int,
    explain_all: bool,
) -> list[dict[str, Any]]:
    """Scores of accounts given by their features (``/score`` and ``/score_batch``).

    Raises:
        InvalidArgument: bad feature values, or a running trial for a trial-end model (400).
    """
    try:
        check_accounts(accounts)
        scored = score_feature_records(
            state.models, [a.features for a in accounts], top_k=top_k, explain_all=explain_all
        )
    except ValueError as exc:
        raise InvalidArgument(str(exc)) from None
    return _with_account_fields(scored, accounts, as_of or now_utc(), state.ranges)


def score_features_json(
    state: ServiceState,
    accounts: list[FeatureAccount],
    as_of: datetime | None,
    top_k: int,
    explain_all: bool,
) -> bytes:
    """``score_features`` as the JSON body of the response.

    One account at a time: a single dump of a large list would hold the GIL throughout.
    """
    scored = score_features(state, accounts, as_of, top_k, explain_all)
    parts = [AccountScore.model_validate(x).model_dump_json().encode() for x in scored]
    return b"[" + b",".join(parts) + b"]"


def score_raw_rows(
    state: ServiceState,
    account: AccountRow,
    events: list[EventRow] | None,
    communications: list[CommunicationRow] | None,
    as_of: datetime | None,
    top_k: int,
    explain_all: bool,
    table_features: Mapping[str, Any] | None = None,
) -> AccountScore:
    """Score one account from its raw rows (``/score_events``), features built with the
    training feature code and the model's feature spec from data strictly before ``as_of``
    (plus the account's feature-table row when the model uses one).

    Raises:
        InvalidArgument: the trial starts after ``as_of``, or the rows cannot be used (400).
    """
    moment = as_of or now_utc()
    if account.trial_start > moment:
        raise InvalidArgument(
            f"invalid account.trial_start: the trial starts after as_of ({moment:%Y-%m-%d %H:%M})"
        )
    row = {**account.attributes, **account.model_dump(exclude={"attributes"})}
    try:
        features, warnings = build_account_features(
            state.config,
            state.models.spec("conversion"),
            row,
            [e.model_dump() for e in events or []],
            [c.model_dump() for c in communications or []],
            pd.Timestamp(moment),
            table_features,
        )
    except (AccountDataError, InputError, ValueError, KeyError) as exc:
        raise InvalidArgument(str(exc)) from exc
    try:
        scored = score_feature_records(
            state.models, [features], top_k=top_k, explain_all=explain_all
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
        warnings=[*scored["warnings"], *warnings, *state.ranges.warnings(features)],
    )
    return AccountScore.model_validate(scored)
