"""The ``table`` feature family: columns of a company's own feature table.

Many companies keep per-account trial features in their warehouse (a dbt model:
hours to first report, executions in week 1, seats...). ``[sources.features]``
brings such a table in; this module turns its validated rows into feature
columns named ``table_<column>`` (``[feature_table].prefix``), point in time:

- with an ``as_of`` column, a snapshot at moment ``T`` takes each account's
  latest table row with ``as_of <= T`` (the row describes the account as known
  at its ``as_of``), and training snapshots are the table's own rows;
- without one, the single row per account describes the whole trial, so the
  only honest snapshot is at trial end: the model is a trial-end model
  (``trial_end_only``) and scoring a running trial with it is refused unless
  the user says otherwise.

Which columns, their types, reason labels and units are frozen in the
``FeatureSpec`` (``table_columns``), so serving needs no config to word reasons.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from features.config import CompanyConfig
from features.event_index import NAT_SECONDS, SECONDS_PER_DAY, to_seconds
from features.naming import unique_slugs

if TYPE_CHECKING:
    from features.build import FeatureBuilder
    from features.families import FamilyInputs
    from features.spec import FeatureSpec
    from features.tables import Tables

FAMILY = "table"
#: Column-name prefix of the features taken from the table.
PREFIX = "table_"
END = "end"
#: Bits for the time part of the (account, time) search key: 2**33 s is ~272 years.
_TIME_BITS = 33


@dataclass(frozen=True)
class TableColumn:
    """One feature column taken from the table.

    Attributes:
        feature: the model's column name (``table_hours_to_first_report``).
        source: the column in the feature table.
        type: ``numeric``, ``categorical`` or ``boolean``.
        label: words for reasons ("hours to first report").
        unit: printed after the value ("h"); may be empty.
        levels: categorical levels seen in training (others score as missing).
    """

    feature: str
    source: str
    type: str
    label: str
    unit: str = ""
    levels: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "type": self.type,
            "label": self.label,
            "unit": self.unit,
            "levels": list(self.levels),
        }

    @classmethod
    def from_dict(cls, feature: str, data: Mapping[str, Any]) -> TableColumn:
        return cls(
            feature=feature,
            source=str(data["source"]),
            type=str(data["type"]),
            label=str(data["label"]),
            unit=str(data.get("unit", "")),
            levels=tuple(data.get("levels", ())),
        )


def not_features(config: CompanyConfig) -> list[str]:
    """Feature-table columns that never become features: the account columns, the
    conversion flag (the label) and ``[feature_table].exclude_columns``."""
    flag = [] if config.trial.conversion_flag is None else [config.trial.conversion_flag]
    ft = config.feature_table
    return list(dict.fromkeys([*ft.account_columns, *flag, *ft.exclude_columns]))


def key_columns(table: pd.DataFrame) -> list[str]:
    """The key columns present in a validated feature table."""
    return ["account_id", *(["as_of"] if "as_of" in table.columns else [])]


def fit_table_columns(table: pd.DataFrame, config: CompanyConfig) -> list[TableColumn]:
    """The table's feature columns with their types, words and levels.

    Declared columns (``[feature_table.columns]``) keep their declared type, label
    and unit; without declarations every non-key, non-account column is used,
    numeric when its values are numbers and categorical otherwise.
    """
    cfg = config.feature_table
    skip = {*key_columns(table), *not_features(config)}
    if cfg.columns:
        declared = [(name, c.type, c.label or name.replace("_", " "), c.unit)
                    for name, c in cfg.columns.items()]  # fmt: skip
    else:
        declared = [
            (
                str(name),
                "numeric" if pd.api.types.is_numeric_dtype(table[name].dtype) else "categorical",
                str(name).replace("_", " "),
                "",
            )
            for name in table.columns
            if name not in skip
        ]
    slugs = unique_slugs([name for name, *_ in declared])
    out = []
    for (name, kind, label, unit), slug in zip(declared, slugs, strict=True):
        levels: tuple[str, ...] = ()
        if kind == "categorical":
            levels = tuple(sorted({str(v) for v in table[name].dropna()}))
        out.append(TableColumn(PREFIX + slug, name, kind, label, unit, levels))
    return out


def spec_table_columns(spec: FeatureSpec | None) -> list[TableColumn]:
    """The table columns a feature spec froze (none for event-only models)."""
    if spec is None:
        return []
    return [TableColumn.from_dict(k, v) for k, v in spec.table_columns.items()]


def trial_end_only(spec: FeatureSpec | None) -> bool:
    """Whether a model built with ``spec`` is only valid at trial end.

    True for a feature table without ``as_of``: its values describe the whole
    trial, so a running trial's row is not what the model learned from.
    """
    return spec is not None and bool(spec.table_columns) and spec.table_as_of is False


TRIAL_END_ONLY_NOTE = (
    "trial-end model: the feature table has no as_of column, so its values describe "
    "whole trials and scores are only meaningful once a trial has ended"
)


# --------------------------------------------------------------------------- lookup
def table_rows(
    table: pd.DataFrame, account_ids: pd.Index, rows_acc: np.ndarray, as_of: np.ndarray
) -> np.ndarray:
    """For each (account position, ``as_of`` seconds) the table row to use, or -1.

    Without ``as_of`` in the table: the account's only row. With it: the latest
    row with ``table.as_of <= as_of`` (rows from later moments are never used).
    """
    pos = account_ids.get_indexer(pd.Index(table["account_id"].astype(str)))
    n = len(table)
    if "as_of" not in table.columns:
        lut = np.full(len(account_ids) + 1, -1, dtype=np.int64)
        lut[np.where(pos >= 0, pos, len(account_ids))] = np.arange(n)
        lut[-1] = -1
        return lut[rows_acc]
    t = to_seconds(table["as_of"])
    known = pos >= 0
    if not known.any():
        return np.full(len(rows_acc), -1, dtype=np.int64)
    rows = np.flatnonzero(known)
    tmin = int(t[rows].min())
    keys = (pos[rows].astype(np.int64) << _TIME_BITS) + (t[rows] - tmin)
    order = np.argsort(keys, kind="stable")
    keys, rows = keys[order], rows[order]
    rel = np.asarray(as_of, dtype=np.int64) - tmin
    query = (np.asarray(rows_acc, dtype=np.int64) << _TIME_BITS) + np.clip(
        rel, 0, (1 << _TIME_BITS) - 1
    )
    at = np.searchsorted(keys, query, side="right") - 1
    ok = (at >= 0) & (rel >= 0)
    same = np.zeros(len(query), dtype=bool)
    same[ok] = (keys[at[ok]] >> _TIME_BITS) == np.asarray(rows_acc, dtype=np.int64)[ok]
    return np.where(same, rows[np.maximum(at, 0)], -1)


def compute_table_features(inputs: FamilyInputs) -> dict[str, Any]:
    """``table_<column>`` values for each (account, ``as_of``) row of ``inputs``.

    Accounts without a usable row (no row yet at that moment) get missing values.
    """
    columns = spec_table_columns(inputs.spec)
    if not columns:
        return {}
    n = len(inputs.rows_acc)
    table = inputs.tables.features
    if table is None:
        rows = np.full(n, -1, dtype=np.int64)
    else:
        rows = table_rows(table, inputs.index.account_ids, inputs.rows_acc, inputs.as_of)
    found = rows >= 0
    take = np.maximum(rows, 0)
    out: dict[str, Any] = {}
    for col in columns:
        if table is None or col.source not in table.columns:
            if col.type == "categorical":
                out[col.feature] = pd.Series(pd.Categorical([None] * n, categories=col.levels))
            else:
                out[col.feature] = np.full(n, np.nan)
            continue
        src = table[col.source]
        if col.type == "categorical":
            values = src.astype(object).where(src.notna(), None).to_numpy(dtype=object)
            picked = (
                np.where(found, values[take], np.array(None, dtype=object))
                if len(values)
                else [None] * n
            )
            out[col.feature] = pd.Series(pd.Categorical(picked, categories=list(col.levels)))
        else:
            arr = src.to_numpy(dtype=np.float64, na_value=np.nan)
            out[col.feature] = (
                np.where(found, arr[take], np.nan) if len(arr) else np.full(n, np.nan)
            )
    return out


def describe_table_feature(
    name: str, value: Any, features: Mapping[str, Any], context: Any
) -> str | None:
    """ "<label>: <value> <unit>" in the company's words (``[feature_table.columns]``)."""
    meta = getattr(context, "table_columns", {}).get(name)
    if meta is None:
        return None
    label, unit = meta
    raw = features.get(name)
    if raw is None or (isinstance(raw, float) and np.isnan(raw)):
        return f"{label}: unknown"
    if isinstance(raw, str):
        return f"{label}: {raw}"
    number = float(raw)
    shown = f"{number:,.0f}" if number.is_integer() else f"{number:,.2f}".rstrip("0").rstrip(".")
    return f"{label}: {shown}{(' ' + unit) if unit else ''}"


# --------------------------------------------------------------------------- snapshots
def table_snapshot_plan(
    builder: FeatureBuilder, now: int, known: np.ndarray
) -> Iterator[tuple[str, float, np.ndarray, np.ndarray]]:
    """Training snapshots of a run with a feature table (see ``trial_snapshot_plan``).

    Without ``as_of``: one snapshot per trial, at trial end (the only moment the
    whole-trial values are true). With ``as_of``: every table row inside its
    trial, before conversion; rows are named after the configured snapshot day
    they fall in (``d0`` before the first, ``end`` at trial end).
    """
    idx = builder.index
    start, end, conv = idx.trial_start, idx.trial_end, idx.converted_at
    table = builder.tables.features
    assert table is not None
    if "as_of" not in table.columns:
        has_row = np.zeros(len(start), dtype=bool)
        pos = idx.account_ids.get_indexer(pd.Index(table["account_id"].astype(str)))
        has_row[pos[pos >= 0]] = True
        ok = known & has_row & ((conv == NAT_SECONDS) | (conv >= end)) & (end <= now)
        positions = np.flatnonzero(ok)
        yield END, float("nan"), positions, end[positions]
        return
    pos = idx.account_ids.get_indexer(pd.Index(table["account_id"].astype(str)))
    t = to_seconds(table["as_of"])
    inside = pos >= 0
    p = np.where(inside, pos, 0)
    ok = (
        inside
        & known[p]
        & (t > start[p])
        & (t <= end[p])
        & ((conv[p] == NAT_SECONDS) | (conv[p] >= t))
        & (t <= now)
    )
    p, t = p[ok], t[ok]
    day = (t - start[p]) / SECONDS_PER_DAY
    days = np.asarray(builder.config.trial.snapshot_days, dtype=np.float64)
    bucket = np.searchsorted(days, day, side="right") - 1
    names = np.where(t >= end[p], END, np.where(bucket >= 0, "d" + days.astype(int)[np.maximum(bucket, 0)].astype(str), "d0"))  # fmt: skip
    # A build takes each account once: rows of one account in one bucket go to
    # successive builds (its 1st row, its 2nd row...), under the same snapshot name.
    nth = pd.Series(p).groupby([names, p]).cumcount().to_numpy()
    for name in dict.fromkeys(names.tolist()):
        for k in range(int(nth[names == name].max()) + 1):
            sel = (names == name) & (nth == k)
            yield str(name), float("nan"), p[sel], t[sel]


def table_summary(tables: Tables) -> str | None:
    """One line on the feature table for reports (``None`` without a table)."""
    table = tables.features
    if table is None:
        return None
    if "as_of" in table.columns:
        return (
            f"feature table: {len(table):,} rows of {table['account_id'].nunique():,} accounts "
            "with as_of: point-in-time snapshots from its rows"
        )
    return f"feature table: {len(table):,} accounts, no as_of column; {TRIAL_END_ONLY_NOTE}"
