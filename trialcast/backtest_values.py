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

The rows are ``trialcast.backtest_phases.phase_rows`` with the backtest's
``deal_value`` column; this module only groups them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: How many bands of equal trial count (quarters).
N_BANDS = 4


def _band_labels(edges: np.ndarray) -> list[str]:
    names = []
    for k in range(len(edges) - 1):
        low, high = edges[k], edges[k + 1]
        names.append(f"Q{k + 1} {low:,.0f}-{high:,.0f}")
    return names


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
    part = rows.loc[usable]
    v = value[usable]
    edges = np.quantile(v, np.linspace(0.0, 1.0, n_bands + 1))
    band = np.clip(np.searchsorted(edges[1:-1], v, side="right"), 0, n_bands - 1)
    labels = np.asarray(_band_labels(edges), dtype=object)
    frame = pd.DataFrame(
        {
            "band": labels[band],
            "order": band,
            "p": part["p"].to_numpy(dtype=np.float64),
            "oracle": part["oracle"].to_numpy(dtype=np.float64),
            "won": part["won"].to_numpy(dtype=np.float64),
            "value": v,
        }
    )
    frame["p_value"] = frame["p"] * frame["value"]
    frame["oracle_value"] = frame["oracle"] * frame["value"]
    frame["won_value"] = frame["won"] * frame["value"]

    def aggregate(group: pd.DataFrame) -> dict[str, float]:
        return {
            "trials": float(len(group)),
            "expected": float(group["p"].sum()),
            "oracle": float(group["oracle"].sum(min_count=1)),
            "actual": float(group["won"].sum()),
            "expected_value": float(group["p_value"].sum()),
            "oracle_value": float(group["oracle_value"].sum(min_count=1)),
            "actual_value": float(group["won_value"].sum()),
        }

    records = [
        {"band": name, **aggregate(group)}
        for (_, name), group in frame.groupby(["order", "band"], sort=True)
    ]
    records.append({"band": "all", **aggregate(frame)})
    table = pd.DataFrame(records)
    table["trials"] = table["trials"].astype(int)
    table["vs_oracle_pct"] = 100.0 * (table["expected"] / table["oracle"] - 1.0)
    table["value_vs_oracle_pct"] = 100.0 * (table["expected_value"] / table["oracle_value"] - 1.0)
    table["value_vs_actual_pct"] = 100.0 * (table["expected_value"] / table["actual_value"] - 1.0)
    return table
