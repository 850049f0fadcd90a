"""Pictures for finance: forecast vs actual per cohort, and cohort conversion curves.

Functions return a matplotlib ``Figure`` (Agg backend, no display needed);
``save_png`` writes one. ``compute_cohort_curves`` is the pure data step behind
the curves.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure


def compute_cohort_curves(
    accounts: pd.DataFrame, *, max_day: int = 60, as_of: pd.Timestamp | None = None
) -> pd.DataFrame:
    """Share of each monthly cohort converted by each day since trial start.

    Args:
        accounts: ``trial_start`` and ``converted_at``.
        max_day: last day of the curve.
        as_of: only days fully observed by then are kept per cohort (default: the
            latest conversion or trial start seen).

    Returns:
        Long frame ``cohort`` (YYYY-MM), ``day``, ``share_converted``, ``n_trials``.
    """
    start = pd.to_datetime(accounts["trial_start"])
    conv = pd.to_datetime(accounts["converted_at"])
    moment = (
        pd.Timestamp(as_of)
        if as_of is not None
        else max(start.max(), conv.max() if conv.notna().any() else start.max())
    )
    days_to = ((conv - start) / pd.Timedelta(days=1)).to_numpy(dtype=float)
    cohort = start.dt.to_period("M").astype(str).to_numpy()
    grid = np.arange(0, max_day + 1)
    rows = []
    for label in sorted(set(cohort)):
        mask = cohort == label
        last_start = start[mask].max()
        observed = int(np.floor((moment - last_start) / pd.Timedelta(days=1)))
        days = grid[grid <= observed]
        if len(days) == 0:
            continue
        d = days_to[mask]
        share = [(np.nan_to_num(d, nan=np.inf) <= day).mean() for day in days]
        rows.append(
            pd.DataFrame(
                {"cohort": label, "day": days, "share_converted": share, "n_trials": mask.sum()}
            )
        )
    cols = ["cohort", "day", "share_converted", "n_trials"]
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=cols)


def plot_forecast_vs_actual(cohorts: pd.DataFrame, *, title: str | None = None) -> Figure:
    """Forecast (expected) with its P10-P90 band, and the actual, per cohort.

    Args:
        cohorts: ``cohort``, ``forecast``, ``p10``, ``p90`` and optionally ``actual``
            and ``oracle_forecast`` (a backtest's cohorts frame; the oracle line
            shows what a forecast from the truth said, see ``trialcast.backtest_oracle``).
    """
    fig, ax = plt.subplots(figsize=(9, 4.5))
    x = np.arange(len(cohorts))
    ax.fill_between(
        x, cohorts["p10"], cohorts["p90"], alpha=0.25, color="tab:blue", label="P10-P90"
    )
    ax.plot(x, cohorts["forecast"], "o-", color="tab:blue", label="forecast (expected)")
    if "oracle_forecast" in cohorts.columns:  # the backtest's floor, from a generator's truth
        ax.plot(x, cohorts["oracle_forecast"], "s:", color="tab:gray", ms=4, label="oracle (truth)")
    if "actual" in cohorts.columns:
        inside = cohorts.get("inside", pd.Series(True, index=cohorts.index)).astype(bool)
        ax.plot(x, cohorts["actual"], "k--", lw=1, label="actual")
        ax.scatter(x[~inside.to_numpy()], cohorts["actual"][~inside], color="tab:red", zorder=3)
    ax.set_xticks(x, cohorts["cohort"].astype(str), rotation=45, ha="right")
    ax.set_ylabel("new revenue")
    ax.set_title(title or "Cohort revenue: forecast at month end vs actual")
    ax.legend(loc="best")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_forecast_by_month(breakdown: pd.DataFrame, *, title: str | None = None) -> Figure:
    """Expected new revenue per month of conversion with the P10-P90 band."""
    months = breakdown[breakdown["dimension"] == "month"].reset_index(drop=True)
    fig, ax = plt.subplots(figsize=(7, 4))
    x = np.arange(len(months))
    err = np.vstack([months["expected"] - months["p10"], months["p90"] - months["expected"]]).clip(
        min=0
    )
    ax.bar(x, months["expected"], color="tab:blue", alpha=0.7, label="expected")
    ax.errorbar(x, months["expected"], yerr=err, fmt="none", ecolor="k", capsize=4, label="P10-P90")
    ax.set_xticks(x, months["segment"].astype(str))
    ax.set_ylabel("new revenue")
    ax.set_title(title or "Expected new revenue by month of conversion")
    ax.legend(loc="best")
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    return fig


def plot_cohort_curves(curves: pd.DataFrame, *, title: str | None = None) -> Figure:
    """Share converted by days since trial start, one line per cohort."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    labels = sorted(curves["cohort"].unique()) if len(curves) else []
    cmap = plt.get_cmap("viridis")
    for i, label in enumerate(labels):
        part = curves[curves["cohort"] == label]
        ax.plot(part["day"], part["share_converted"], color=cmap(i / max(len(labels) - 1, 1)))
    if labels:
        sm = plt.cm.ScalarMappable(cmap=cmap, norm=plt.Normalize(0, max(len(labels) - 1, 1)))
        bar = fig.colorbar(sm, ax=ax, ticks=[0, max(len(labels) - 1, 1)])
        bar.ax.set_yticklabels([labels[0], labels[-1]])
        bar.set_label("cohort")
    ax.set_xlabel("days since trial start")
    ax.set_ylabel("share converted")
    ax.set_title(title or "Cohort conversion curves")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def save_png(fig: Figure, path: str | Path, *, dpi: int = 120) -> Path:
    """Write ``fig`` as PNG (folder created) and close it."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi, format="png")
    plt.close(fig)
    return out
