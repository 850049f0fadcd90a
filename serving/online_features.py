"""Features of one account from its raw rows, built by the training feature code.

``/score_events`` receives the account's row, its events and (optionally) its
communications in the data contract's columns. They go through the same
validation (``features.validation.validate_tables``) and the same
``FeatureBuilder`` as training, with the model's frozen ``FeatureSpec``, so the
service cannot compute a feature differently from the model's training data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from features.build import FeatureBuilder
from features.config import CompanyConfig
from features.event_index import timestamp_seconds
from features.feature_table import spec_table_columns
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
    table_row: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """Feature values of one account at ``as_of`` (data strictly before it).

    Args:
        config: the company config.
        spec: the model's feature spec (top event types, categorical levels).
        account: the accounts-table row (contract columns plus firmographics).
        events: the account's events (``event``, ``timestamp``, ``user_id``).
        communications: the account's messages (contract columns).
        as_of: the cutoff (timezone-naive UTC).
        table_row: the account's row of the company's own feature table
            (``[sources.features]``, by its source column names) for a model that
            uses one; columns left out score as missing, with a warning each.

    Returns:
        The feature mapping (NaN as ``None``) and warnings (rows set aside by
        validation, with the reason).

    Raises:
        AccountDataError: the account row itself is unusable, or ``table_row``
            names a column the model's feature table does not have.
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
    table, table_warnings = account_table_row(spec, account_id, table_row or {})
    warnings += table_warnings
    if table is not None:
        tables = replace(tables, features=table)
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


def account_table_row(
    spec: FeatureSpec | None, account_id: str, row: Mapping[str, Any]
) -> tuple[pd.DataFrame | None, list[str]]:
    """The account's feature-table row as a one-row table, and warnings.

    Values are read as the model's table columns were typed at training
    (numbers and booleans as numbers, categories as text); a value that is not a
    number where one is expected scores as missing with a warning. ``None`` when
    the model uses no feature table.

    Raises:
        AccountDataError: a key is not a column of the model's feature table.
    """
    columns = spec_table_columns(spec)
    if not columns:
        if row:
            raise AccountDataError(
                "table_features: this model uses no feature table; send events instead"
            )
        return None, []
    by_source = {c.source: c for c in columns}
    unknown = sorted(set(row) - set(by_source))
    if unknown:
        raise AccountDataError(
            f"table_features.{unknown[0]}: not a column of the model's feature table "
            f"(its columns: {', '.join(sorted(by_source))})"
        )
    warnings: list[str] = []
    values: dict[str, Any] = {"account_id": account_id}
    for source, col in by_source.items():
        value = row.get(source)
        if value is None:
            warnings.append(f"table_features.{source}: not given; scored as missing")
        elif col.type != "categorical":
            number = pd.to_numeric(pd.Series([value]), errors="coerce").iloc[0]
            if isinstance(value, bool):
                number = float(value)
            if pd.isna(number):
                warnings.append(f"table_features.{source}: {value!r} is not a number; missing")
            value = None if pd.isna(number) else float(number)
        else:
            value = str(value)
        values[source] = value
    frame = pd.DataFrame([values])
    for source, col in by_source.items():
        if col.type != "categorical":
            frame[source] = frame[source].astype("float64")
    return frame, warnings
