"""Validate a feature table (``[sources.features]``) and quarantine its bad rows.

The same promise as for the contract tables: every row read is kept (possibly
repaired) or set aside in ``features/quarantine/features.csv`` with its reason,
and rows in = rows kept + rows quarantined. Checks, in order:

- empty rows, missing ``account_id``, unparsable or missing ``as_of`` (when the
  table has that column): quarantined;
- rows repeating an earlier row exactly, and rows repeating an earlier row's key
  (``account_id``, plus ``as_of`` when present) with other values: quarantined
  (the first row wins; two truths for one moment cannot both be used);
- rows of accounts not in the accounts table: quarantined;
- per declared column: numeric values that are not numbers, and boolean values
  that are not true/false, are emptied and reported (the row is kept).

A declared column missing from the table is a fatal ``InputError`` naming the
config key. Without an accounts source, the accounts table (labels included) is
taken from the table's ``[feature_table].account_columns``.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from features.config import CompanyConfig
from features.feature_table import not_features
from features.quarantine import InputError, RowLedger, ValidationReport
from features.row_duplicates import flag_duplicates
from features.tables import Tables
from features.validation import require_columns
from features.value_parsing import (
    as_text,
    missing_mask,
    parse_timestamps,
    to_boolean,
    to_number_read_as_written,
)


def check_declared_columns(raw: pd.DataFrame, config: CompanyConfig) -> None:
    """Raise ``InputError`` if a declared feature or account column is not in the table."""
    found = [str(c) for c in raw.columns]
    cfg = config.feature_table
    for name in cfg.columns:
        if name not in found:
            raise InputError(
                f"features: column {name!r} declared in [feature_table.columns] is not in the "
                f"feature table. Columns found: {', '.join(found)}. Fix the name, or map it "
                f"under [sources.features.columns]"
            )
    for name in cfg.account_columns:
        if name not in found:
            hint = (
                "; if the table only says whether a trial converted (yes/no, 1/0), set "
                "[trial].conversion_flag to that column instead"
                if name == "converted_at"
                else ""
            )
            raise InputError(
                f"features: account column {name!r} listed in [feature_table].account_columns "
                f"is not in the feature table. Columns found: {', '.join(found)}. Map it under "
                f"[sources.features.columns] or remove it from the list{hint}"
            )
    for name in cfg.exclude_columns:
        if name not in found:
            raise InputError(
                f"features: column {name!r} listed in [feature_table].exclude_columns is not "
                f"in the feature table. Columns found: {', '.join(found)}. Fix the name (as "
                "it reads after the [sources.features.columns] mapping) or drop it from the list"
            )


def accounts_from_table(raw: pd.DataFrame, config: CompanyConfig) -> pd.DataFrame:
    """A raw accounts table taken from the feature table's account columns.

    One row per account id (its first row in the table: later rows of an
    ``as_of`` table repeat the same trial); validated like any accounts source.

    Raises:
        InputError: the table lacks ``trial_start`` / ``trial_end`` account columns.
    """
    cols = config.feature_table.account_columns
    need = [c for c in ("trial_start", "trial_end") if c not in cols]
    if need:
        raise InputError(
            "features: without an [sources.accounts] source the accounts (trial dates and "
            f"labels) come from the feature table, but [feature_table].account_columns lacks "
            f"{', '.join(map(repr, need))}. Add an accounts source, or list the table's "
            "trial_start, trial_end and converted_at columns there"
        )
    require_columns("features", raw)
    check_declared_columns(raw, config)  # a listed column missing: say so, not KeyError
    ids = raw["account_id"]
    first = ~as_text(ids).duplicated().to_numpy() & ~missing_mask(ids)
    flag = [c for c in [config.trial.conversion_flag] if c is not None and c in raw.columns]
    return raw.loc[first, ["account_id", *cols, *flag]].reset_index(drop=True)


def validate_feature_table(
    raw: pd.DataFrame, config: CompanyConfig, accounts: pd.DataFrame, fmt: str | None
) -> tuple[RowLedger, pd.DataFrame]:
    """Check a raw feature table against ``accounts``; return its ledger and kept rows.

    Returns:
        The ledger (problems, quarantine) and the kept rows: ``account_id`` as
        text, ``as_of`` parsed (if present), declared numeric / boolean columns
        as float, categorical ones as text; other columns as read.
    """
    require_columns("features", raw)
    check_declared_columns(raw, config)
    ledger = RowLedger("features", raw)
    missing = {c: missing_mask(raw[c]) for c in raw.columns}
    ledger.quarantine(np.logical_and.reduce(list(missing.values())), "empty_row", None)
    ledger.quarantine(missing["account_id"], "missing_value", "account_id")
    canon = raw.copy(deep=False)
    canon["account_id"] = as_text(canon["account_id"])
    if "as_of" in raw.columns:
        ledger.quarantine(missing["as_of"], "missing_value", "as_of")
        canon["as_of"], bad = parse_timestamps(raw["as_of"], fmt)
        ledger.quarantine(bad, "unparsable_timestamp", "as_of")
    flag_duplicates(ledger, canon)
    keys = ["account_id", *(["as_of"] if "as_of" in raw.columns else [])]
    ok = ledger.ok
    dup_key = np.zeros(len(raw), dtype=bool)
    dup_key[np.flatnonzero(ok)] = canon.loc[ok, keys].duplicated().to_numpy()
    ledger.quarantine(dup_key, "duplicate_key", "account_id")
    known = (
        canon["account_id"]
        .astype(object)
        .isin(pd.Index(accounts["account_id"].astype(str)).astype(object))
    )
    ledger.quarantine(~known.to_numpy(), "unknown_account", "account_id")
    for name, col in config.feature_table.columns.items():
        if col.type == "numeric":
            canon[name], bad, reformatted = to_number_read_as_written(raw[name])
            ledger.repaired(reformatted, "number_format", name)
            ledger.repaired(bad, "not_a_number", name)
        elif col.type == "boolean":
            canon[name], bad = to_boolean(raw[name])
            ledger.repaired(bad, "not_a_boolean", name)
        else:
            text = as_text(raw[name])
            canon[name] = text.where(~missing_mask(raw[name]))
    account_cols = [c for c in not_features(config) if c in canon.columns]
    out = canon.loc[ledger.ok].drop(columns=account_cols).reset_index(drop=True)
    return ledger, out


def add_to_report(report: ValidationReport, ledger: RowLedger, kept: pd.DataFrame) -> None:
    """Account for the feature table in the validation report (rows in = kept + quarantined)."""
    report.problems.extend(ledger.problems)
    report.rows_in["features"] = len(ledger.raw)
    report.rows_kept["features"] = len(kept)
    report.quarantine["features"] = ledger.quarantined_frame()
    report.check_balance()


def no_events() -> pd.DataFrame:
    """An empty raw events table, for a company that gives a feature table alone."""
    return pd.DataFrame(
        {
            "account_id": pd.Series([], dtype="str"),
            "event": pd.Series([], dtype="str"),
            "timestamp": pd.Series([], dtype="datetime64[ns]"),
        }
    )


def _export_moment(tables: Tables, kept: pd.DataFrame, config: CompanyConfig) -> pd.Timestamp:
    """The export time of a table-only company: the config's, else the latest moment seen."""
    if config.validation.export_time is not None:
        parsed, bad = parse_timestamps(pd.Series([config.validation.export_time], dtype="str"))
        if not bad.any():
            return pd.Timestamp(parsed.iloc[0])
    acc = tables.accounts
    seen = [acc[c].max() for c in ("trial_start", "converted_at", "churned_at") if c in acc]
    if "as_of" in kept.columns:
        seen.append(kept["as_of"].max())
    latest = max((pd.Timestamp(x) for x in seen if pd.notna(x)), default=None)
    if latest is None:
        raise InputError(
            "features: no dates at all (trial_start is empty); cannot place the export"
        )
    return min(latest, pd.Timestamp.now(tz="UTC").tz_localize(None))


def attach_feature_table(
    tables: Tables,
    report: ValidationReport,
    raw: pd.DataFrame,
    config: CompanyConfig,
    fmt: str | None,
) -> Tables:
    """Validate ``raw`` against the validated accounts and add it to ``tables`` and ``report``."""
    ledger, kept = validate_feature_table(raw, config, tables.accounts, fmt)
    add_to_report(report, ledger, kept)
    export_at = None
    if config.sources.events is None:
        export_at = _export_moment(tables, kept, config)
        report.notes.append(
            f"no event log: features come from the feature table alone; export time {export_at}"
        )
    if config.sources.accounts is None:
        report.notes.append(
            "accounts: taken from the feature table's account columns "
            f"({', '.join(config.feature_table.account_columns)})"
        )
    if "as_of" not in kept.columns:
        report.notes.append(
            "feature table has no as_of column: the model is a trial-end model only "
            "(training snapshots at trial end; running trials are not scored unless told to)"
        )
    return replace(tables, features=kept, export_at=export_at)
