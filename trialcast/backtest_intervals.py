"""Is the backtest's P10-P90 range honest? PIT values, standardised errors, a histogram.

Coverage of one cohort is a coin flip; judged over a handful of cohorts it
says little. Two finer scores use every cohort's whole distribution:

- the PIT (probability integral transform) ``F(actual)``: uniform on [0, 1]
  for an honest forecast; a U shape means ranges too narrow, a hump too wide,
  a slope a bias;
- the standardised error ``(actual - mean) / sd``, with ``sd`` read from the
  P10-P90 half-width (``/ 1.2816``, the normal's P90): its root mean square is
  1 for honest widths, below 1 for ranges too wide, above 1 too narrow.

``trialcast backtest --period week`` gives ~4x the cohorts of the monthly
default, so both scores rest on 50+ forecasts per company.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy import stats

from serving.forecast.distribution import SumDistribution

#: The standard normal's 90% quantile: P10-P90 half-width / Z90 = sd.
Z90 = 1.2815515655446004
PIT_BINS = 10


def pit_value(dist: SumDistribution, actual: float) -> float:
    """``P(S <= actual)`` of a forecast distribution, with its deal-value smoothing."""
    values = np.asarray(dist.values, dtype=float)
    probs = np.asarray(dist.probs, dtype=float)
    total = probs.sum()
    if total <= 0:
        return float("nan")
    if dist.smooth_sd > 0:
        return float(probs @ stats.norm.cdf((actual - values) / dist.smooth_sd) / total)
    return float(probs[values <= actual + 1e-9].sum() / total)


def interval_scores(
    dist: SumDistribution, actual: float, p10: float, p90: float
) -> dict[str, float]:
    """PIT and standardised error of one cohort forecast."""
    sd = (p90 - p10) / (2.0 * Z90)
    return {
        "pit": pit_value(dist, actual),
        "z": (actual - dist.mean) / sd if sd > 0 else float("nan"),
    }


def summarise_intervals(cohorts: pd.DataFrame, prefix: str = "") -> dict[str, float]:
    """RMS of standardised errors and the PIT spread (``prefix``: ``""`` or ``"oracle_"``)."""
    if f"{prefix}z" not in cohorts.columns:
        return {}
    z = cohorts[f"{prefix}z"].dropna().to_numpy(dtype=float)
    pit = cohorts[f"{prefix}pit"].dropna().to_numpy(dtype=float)
    return {
        f"{prefix}rms_z": float(np.sqrt(np.mean(z**2))) if len(z) else float("nan"),
        f"{prefix}mean_z": float(np.mean(z)) if len(z) else float("nan"),
        f"{prefix}pit_outer_share": (
            float(np.mean((pit < 0.1) | (pit > 0.9))) if len(pit) else float("nan")
        ),
        f"{prefix}n_interval": float(len(z)),
    }


def summarise_vs_oracle(cohorts: pd.DataFrame) -> dict[str, float]:
    """Count and value error of the open trials against the oracle's expectations.

    Per cohort ``count_vs_oracle_pct`` (expected conversions vs the truth's) and
    ``value_vs_oracle_pct`` (expected open revenue vs the truth's expected
    revenue: true probabilities times the generator's expected deal values);
    summarised as the mean absolute value and the total.
    """
    needed = ("oracle_expected_conversions", "oracle_expected_open_value", "expected_open_value")
    if any(c not in cohorts.columns for c in needed):
        return {}
    count = cohorts["expected_conversions"].sum() / cohorts["oracle_expected_conversions"].sum()
    value = cohorts["expected_open_value"].sum() / cohorts["oracle_expected_open_value"].sum()
    return {
        "count_vs_oracle_pct": 100.0 * (float(count) - 1.0),
        "value_vs_oracle_pct": 100.0 * (float(value) - 1.0),
        "count_vs_oracle_mape": float(cohorts["count_vs_oracle_pct"].abs().mean()),
        "value_vs_oracle_mape": float(cohorts["value_vs_oracle_pct"].abs().mean()),
    }


def vs_oracle_columns(row: dict[str, object]) -> dict[str, float]:
    """Per-cohort count and open-value error against the oracle (empty without one)."""
    if "oracle_expected_conversions" not in row:
        return {}

    def pct(ours: object, truth: object) -> float:
        a, b = float(ours), float(truth)  # type: ignore[arg-type]
        return 100.0 * (a / b - 1.0) if b else float("nan")

    return {
        "count_vs_oracle_pct": pct(row["expected_conversions"], row["oracle_expected_conversions"]),
        "value_vs_oracle_pct": pct(row["expected_open_value"], row["oracle_expected_open_value"]),
    }


def plot_pit_histogram(cohorts: pd.DataFrame) -> Figure:
    """PIT histogram of the shipping forecast (and the oracle's, when present)."""
    fig, ax = plt.subplots(figsize=(7, 3.6))
    edges = [k / PIT_BINS for k in range(PIT_BINS + 1)]
    series = [("shipping", "pit", "#1f77b4")]
    if "oracle_pit" in cohorts.columns:
        series.append(("oracle floor", "oracle_pit", "#999999"))
    for label, col, color in series:
        values = cohorts[col].dropna().to_numpy(dtype=float)
        ax.hist(values, bins=edges, histtype="step", linewidth=2, color=color, label=label)
    n = int(cohorts["pit"].notna().sum())
    ax.axhline(n / PIT_BINS, color="black", linestyle=":", linewidth=1, label="honest (flat)")
    ax.set_xlabel("PIT = forecast P(revenue <= actual)")
    ax.set_ylabel("cohorts")
    ax.set_title(f"Interval honesty over {n} cohort forecasts")
    ax.legend(loc="upper center", fontsize=8, ncol=3)
    fig.tight_layout()
    return fig
