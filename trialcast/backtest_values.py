"""Where the backtest's open-trial probabilities miss money: by band of deal value.

Revenue is the sum of probability x deal value, so a probability that is right
on average but too high on big deals and too low on small ones forecasts the
right number of conversions and the wrong revenue (session 9 found shipping p /
true p of 0.97 on the smallest quarter of deals and 1.12 on the biggest:
docs/benchmarks.md). This table makes that visible in every backtest.

The bands are quarters of the *estimated* deal value of the open trials (what
the forecast multiplies by, known at the origin), pooled over all cohorts. Per
band: expected conversions (shipping), true-expected (oracle, with ``--truth``)
and actual; and the same weighted by the estimated value, so that the value
column isolates the probabilities' error (the value estimate is the same on both
sides).

The same sums per value of each forecast segment (``[forecast] segments``, by
default the size band and the categorical firmographics: ``segment_table``) show
*whose* probabilities are off: on a generated company the biggest companies got
1.3-2.3x their true chance while every other size band sat within 7%.

The rows are ``trialcast.backtest_phases.phase_rows`` with the backtest's
``deal_value`` and segment columns; this module only groups them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.config import CompanyConfig
from serving.forecast.segments import PERSONA, add_segment_columns, configured_segments

#: How many bands of equal trial count (quarters).
N_BANDS = 4
#: Prefix of the segment columns on the backtest's open-trial rows.
SEGMENT_PREFIX = "segment_"


def _band_labels(edges: np.ndarray) -> list[str]:
    names = []
    for k in range(len(edges) - 1):
        low, high = edges[k], edges[k + 1]
        names.append(f"Q{k + 1} {low:,.0f}-{high:,.0f}")
    return names


def _money(rows: pd.DataFrame, value: np.ndarray) -> pd.DataFrame:
    """Per row: ``p``, ``oracle``, ``won`` and each of them times the deal ``value``."""
    p = rows["p"].to_numpy(dtype=np.float64)
    oracle = rows["oracle"].to_numpy(dtype=np.float64)
    won = rows["won"].to_numpy(dtype=np.float64)
    return pd.DataFrame(
        {
            "p": p,
            "oracle": oracle,
            "won": won,
            "p_value": p * value,
            "oracle_value": oracle * value,
            "won_value": won * value,
        }
    )


def _sums(money: pd.DataFrame, keys: np.ndarray) -> pd.DataFrame:
    """Trials and expected / oracle / actual conversions and revenue per key (the
    oracle's sums stay NaN where it has no values)."""

    def oracle_sum(s: pd.Series) -> float:
        return float(s.sum(min_count=1))

    return money.groupby(keys, sort=True).agg(
        trials=("p", "size"),
        expected=("p", "sum"),
        oracle=("oracle", oracle_sum),
        actual=("won", "sum"),
        expected_value=("p_value", "sum"),
        oracle_value=("oracle_value", oracle_sum),
        actual_value=("won_value", "sum"),
    )


def _errors(table: pd.DataFrame) -> pd.DataFrame:
    """The sums' errors in percent: conversions and revenue vs the oracle and the actual."""
    table["vs_oracle_pct"] = 100.0 * (table["expected"] / table["oracle"] - 1.0)
    table["vs_actual_pct"] = 100.0 * (table["expected"] / table["actual"] - 1.0)
    table["value_vs_oracle_pct"] = 100.0 * (table["expected_value"] / table["oracle_value"] - 1.0)
    table["value_vs_actual_pct"] = 100.0 * (table["expected_value"] / table["actual_value"] - 1.0)
    return table


def value_band_table(rows: pd.DataFrame, *, n_bands: int = N_BANDS) -> pd.DataFrame:
    """Expected, true-expected and actual conversions and revenue per band of deal value.

    Returns one row per band and an ``all`` row: ``band``, ``trials``,
    ``expected``, ``oracle``, ``actual`` (conversions), ``expected_value``,
    ``oracle_value``, ``actual_value`` (each probability or outcome times the
    estimated deal value), ``vs_oracle_pct`` and ``value_vs_oracle_pct``. Empty
    when the rows carry no usable deal value.
    """
    if rows.empty or "deal_value" not in rows.columns:
        return pd.DataFrame()
    value = pd.to_numeric(rows["deal_value"], errors="coerce").to_numpy(dtype=np.float64)
    usable = np.isfinite(value)
    if usable.sum() < n_bands:
        return pd.DataFrame()
    v = value[usable]
    edges = np.quantile(v, np.linspace(0.0, 1.0, n_bands + 1))
    band = np.clip(np.searchsorted(edges[1:-1], v, side="right"), 0, n_bands - 1)
    money = _money(rows.loc[usable], v)
    by_band = _sums(money, band)
    by_band.index = np.asarray(_band_labels(edges), dtype=object)[by_band.index]
    everything = _sums(money, np.zeros(len(money), dtype=np.int64)).set_axis(["all"])
    table = pd.concat([by_band, everything]).rename_axis("band").reset_index()
    table["trials"] = table["trials"].astype(int)
    return _errors(table).drop(columns="vs_actual_pct")


def add_backtest_segments(
    rows: pd.DataFrame, accounts: pd.DataFrame, config: CompanyConfig
) -> pd.DataFrame:
    """``rows`` (with ``account_id``) plus a ``segment_<name>`` column per configured
    forecast segment found in the accounts table (persona is assigned at scoring and
    is not an account column: it is left out)."""
    specs = [
        spec
        for spec in configured_segments(config)
        if spec.column != PERSONA and spec.column in accounts.columns
    ]
    if not specs or rows.empty:
        return rows
    with_segments, names = add_segment_columns(rows[["account_id"]], accounts, specs)
    out = rows.copy()
    for name in names:
        out[f"{SEGMENT_PREFIX}{name}"] = with_segments[name].to_numpy(dtype=object)
    return out


def _band_key(value: object) -> tuple[int, float, str]:
    """Size bands in size order (``<=10``, ``10-50``, ..., ``>1000``), then text values."""
    text = str(value)
    number = text.removeprefix("<=").removeprefix(">").split("-")[0]
    try:
        start = float(number)
    except ValueError:
        return (1, 0.0, text)
    if text.startswith("<="):
        start -= 0.5
    elif text.startswith(">"):
        start += 0.5
    return (0, start, text)


def segment_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Expected, true-expected and actual conversions (and revenue at the estimated
    deal values) per value of every ``segment_*`` column of the rows.

    Columns: ``segment``, ``value``, ``trials``, ``expected``, ``oracle``, ``actual``,
    ``vs_oracle_pct``, ``vs_actual_pct``, ``value_vs_oracle_pct``. Empty without
    segment columns.
    """
    columns = [c for c in rows.columns if c.startswith(SEGMENT_PREFIX)]
    if rows.empty or not columns:
        return pd.DataFrame()
    value = (
        pd.to_numeric(rows["deal_value"], errors="coerce").to_numpy(dtype=np.float64)
        if "deal_value" in rows.columns
        else np.full(len(rows), np.nan)
    )
    money = _money(rows, value)
    parts = []
    for col in columns:
        grouped = _sums(money, rows[col].astype(str).to_numpy())
        grouped = grouped.iloc[
            sorted(range(len(grouped)), key=lambda i: _band_key(grouped.index[i]))
        ]
        grouped.insert(0, "segment", col.removeprefix(SEGMENT_PREFIX))
        parts.append(grouped.rename_axis("value").reset_index())
    table = _errors(pd.concat(parts, ignore_index=True))
    return table[
        [
            "segment",
            "value",
            "trials",
            "expected",
            "oracle",
            "actual",
            "vs_oracle_pct",
            "vs_actual_pct",
            "value_vs_oracle_pct",
        ]
    ]
