"""Which motion (self-serve or sales-assisted) and segment each trial belongs to.

The motion comes from an accounts column (``[funnel].motion_column``) or, without
one, from the communications: an outbound touch on a sales channel (a call or a
meeting by default) during the trial and before ``as_of`` makes the trial
sales-assisted. Segments are accounts columns as text (``[funnel].segments``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.config import CompanyConfig, ConfigError
from features.tables import Tables

SELF_SERVE = "self-serve"
SALES_ASSISTED = "sales-assisted"
UNKNOWN = "unknown"
#: The dimension of the whole funnel (every trial), and of the motion breakdown.
TOTAL, MOTION = "total", "motion"


def _column(tables: Tables, column: str, key: str) -> pd.Series:
    accounts = tables.accounts
    if column not in accounts.columns:
        known = ", ".join(c for c in accounts.columns if c != "account_id")
        raise ConfigError(
            f"[funnel].{key}: column {column!r} is not in the accounts table (columns: {known})"
        )
    return accounts.set_index(accounts["account_id"].astype(str))[column]


def _motion_from_column(values: pd.Series) -> pd.Series:
    """Text values as they are; true/false or 1/0 as sales-assisted / self-serve."""
    if pd.api.types.is_bool_dtype(values) or set(values.dropna().unique()) <= {
        0,
        1,
    }:  # True == 1, False == 0
        mapped = values.map(
            lambda v: UNKNOWN if pd.isna(v) else (SALES_ASSISTED if bool(v) else SELF_SERVE)
        )
        return mapped.astype(str)
    return values.astype("string").fillna(UNKNOWN).astype(str)


def _motion_from_touches(
    tables: Tables, trials: pd.DataFrame, as_of: pd.Timestamp, channels: list[str]
) -> pd.Series:
    """Sales-assisted when an outbound touch on ``channels`` falls inside the trial, before ``as_of``."""
    comms = tables.communications
    motion = pd.Series(SELF_SERVE, index=trials.index, dtype=object)
    if comms is None or comms.empty:
        return motion
    touch = comms[
        (comms["direction"].astype(str) == "outbound")
        & comms["channel"].astype(str).isin(channels)
        & (comms["timestamp"] < as_of)
    ]
    ids = touch["account_id"].astype(str)
    start = trials["trial_start"].reindex(ids).to_numpy()
    end = trials["trial_end"].reindex(ids).to_numpy()
    when = touch["timestamp"].to_numpy()
    inside = (when >= start) & (when < end)  # NaT (unknown account) compares False
    motion[motion.index.isin(ids[inside].unique())] = SALES_ASSISTED
    return motion


def trial_segments(
    tables: Tables, trials: pd.DataFrame, config: CompanyConfig, as_of: pd.Timestamp
) -> pd.DataFrame:
    """Per trial (``trials``' index), its value of every breakdown dimension.

    Columns: ``total`` (always ``all``), ``motion`` (when a motion column or a
    communications table exists) and one column per ``[funnel].segments`` entry.

    Raises:
        ConfigError: a configured column is not in the accounts table.
    """
    settings = config.funnel
    out = pd.DataFrame({TOTAL: np.full(len(trials), "all", dtype=object)}, index=trials.index)
    if settings.motion_column is not None:
        values = _column(tables, settings.motion_column, "motion_column")
        out[MOTION] = _motion_from_column(values).reindex(trials.index).fillna(UNKNOWN)
    elif tables.communications is not None:
        out[MOTION] = _motion_from_touches(tables, trials, as_of, list(settings.sales_channels))
    for column in settings.segments:
        values = _column(tables, column, "segments").astype("string").fillna(UNKNOWN).astype(str)
        out[column] = values.reindex(trials.index).fillna(UNKNOWN)
    return out
