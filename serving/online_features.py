"""Features of one account from its raw rows, built by the training feature code.

``/score_events`` receives the account's row, its events and (optionally) its
communications in the data contract's columns. They go through the same
validation (``features.validation.validate_tables``) and the same
``FeatureBuilder`` as training, with the model's frozen ``FeatureSpec``, so the
service cannot compute a feature differently from the model's training data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from features.build import FeatureBuilder
from features.config import CompanyConfig
from features.event_index import timestamp_seconds
from features.spec import FeatureSpec
from features.validation import validate_tables

EVENT_COLUMNS = ["account_id", "event", "timestamp", "user_id"]
COMMUNICATION_COLUMNS = [
    "account_id",
    "timestamp",
    "direction",
    "channel",
    "user_id",
    "sentiment",
    "text",
]


class AccountDataError(ValueError):
    """The account's rows cannot give features (the message says which field and why)."""


def build_account_features(
    config: CompanyConfig,
    spec: FeatureSpec | None,
    account: Mapping[str, Any],
    events: Sequence[Mapping[str, Any]],
    communications: Sequence[Mapping[str, Any]],
    as_of: pd.Timestamp,
) -> tuple[dict[str, Any], list[str]]:
    """Feature values of one account at ``as_of`` (data strictly before it).

    Args:
        config: the company config.
        spec: the model's feature spec (top event types, categorical levels).
        account: the accounts-table row (contract columns plus firmographics).
        events: the account's events (``event``, ``timestamp``, ``user_id``).
        communications: the account's messages (contract columns).
        as_of: the cutoff (timezone-naive UTC).

    Returns:
        The feature mapping (NaN as ``None``) and warnings (rows set aside by
        validation, with the reason).

    Raises:
        AccountDataError: the account row itself is unusable.
    """
    account_id = str(account["account_id"])
    acc = pd.DataFrame([dict(account)])
    ev = pd.DataFrame(
        [{**e, "account_id": account_id} for e in events], columns=EVENT_COLUMNS
    ).astype({"account_id": object, "event": object, "user_id": object})
    ev["timestamp"] = pd.to_datetime(ev["timestamp"])
    comm = (
        pd.DataFrame(
            [{**c, "account_id": account_id} for c in communications],
            columns=COMMUNICATION_COLUMNS,
        )
        if communications
        else None
    )
    tables, report = validate_tables(ev, acc, comm, rules=config.validation)
    if len(tables.accounts) != 1:
        reasons = sorted(
            {
                f"{p.column or 'row'}: {p.check} ({p.example})"
                for p in report.problems
                if p.table == "accounts"
            }
        ) or ["rejected by validation"]
        raise AccountDataError(f"account: {'; '.join(reasons)}")
    warnings = [
        f"{p.table}.{p.column or 'row'}: {p.rows} row(s) {p.action} ({p.check})"
        for p in report.problems
    ]
    builder = FeatureBuilder.from_tables(tables, config, spec)
    seconds = np.array([timestamp_seconds(as_of)], dtype=np.int64)
    frame = builder.build(np.array([0], dtype=np.int64), seconds)
    record = {
        str(k): (None if isinstance(v, float) and np.isnan(v) else v)
        for k, v in frame.drop(columns=["as_of"]).iloc[0].to_dict().items()
    }
    for key, value in list(record.items()):
        if value is not None and not isinstance(value, str | float | int):
            record[key] = None if pd.isna(value) else str(value)
    return record, warnings
