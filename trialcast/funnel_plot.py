"""The funnel's picture: the funnel by motion, the cohorts x stages heat map (changes
marked) and the paid share by cohort with the champion's expectation for cohorts
still deciding."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure


def pooled_funnel(table: pd.DataFrame, dimension: str) -> pd.DataFrame:
    """Share reaching each stage per segment of ``dimension``, pooled over the cohorts
    whose cell is finished (every trial had its whole chance), in stage order."""
    done = table[(table["dimension"] == dimension) & table["finished"]]
    sums = done.groupby(["segment", "stage_order", "stage"], sort=True)[["reached", "trials"]].sum()
    sums["share"] = sums["reached"] / sums["trials"]
    return sums.reset_index()


def _funnel_panel(ax: plt.Axes, table: pd.DataFrame) -> None:
    dimension = "motion" if (table["dimension"] == "motion").any() else "total"
    pooled = pooled_funnel(table, dimension)
    segments = list(dict.fromkeys(pooled["segment"]))
    stages = list(dict.fromkeys(pooled.sort_values("stage_order")["stage"]))
    height = 0.8 / max(len(segments), 1)
    y = np.arange(len(stages))
    for i, segment in enumerate(segments):
        part = pooled[pooled["segment"] == segment].set_index("stage").reindex(stages)
        ax.barh(y + i * height, part["share"].fillna(0), height=height, label=segment)
    ax.set_yticks(y + height * (len(segments) - 1) / 2, stages, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of trials reaching the stage (finished cohorts)")
    ax.set_title("Funnel" + (" by motion" if dimension == "motion" else ""))
    ax.legend(fontsize=8, loc="lower right")


def _heat_panel(ax: plt.Axes, table: pd.DataFrame) -> None:
    total = table[table["dimension"] == "total"]
    grid = total.pivot_table(index="cohort", columns="stage_order", values="share", sort=True)
    names = total.drop_duplicates("stage_order").set_index("stage_order")["stage"]
    ax.imshow(grid.to_numpy(), aspect="auto", cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(grid.shape[1]), [names[c] for c in grid.columns], rotation=60,
                  ha="right", fontsize=7)  # fmt: skip
    step = max(1, len(grid) // 20)
    ax.set_yticks(range(0, len(grid), step), list(grid.index[::step]), fontsize=7)
    flags = total[total["flagged"]]
    rows = {c: i for i, c in enumerate(grid.index)}
    cols = {c: i for i, c in enumerate(grid.columns)}
    ax.scatter([cols[s] for s in flags["stage_order"]], [rows[c] for c in flags["cohort"]],
               marker="x", color="#dc2626", s=30, label="changed")  # fmt: skip
    ax.set_title("Share reaching each stage, by signup cohort")
    if len(flags):
        ax.legend(fontsize=8, loc="upper right")


def _paid_panel(ax: plt.Axes, table: pd.DataFrame) -> None:
    paid = table[(table["dimension"] == "total") & (table["stage_kind"] == "paid")]
    paid = paid.sort_values("cohort").reset_index(drop=True)
    x = np.arange(len(paid))
    ax.plot(x, paid["share"], color="#1f3a5f", label="paid so far")
    if "expected_share" in paid.columns and paid["expected_share"].notna().any():
        e = paid[paid["expected_share"].notna()]
        low = (e["expected_share"] - e["expected_p10"]).clip(lower=0)
        high = (e["expected_p90"] - e["expected_share"]).clip(lower=0)
        ax.errorbar(e.index, e["expected_share"], yerr=[low, high], fmt="o", color="#dc2626",
                    ms=3, label="expected by the champion (P10-P90)")  # fmt: skip
    step = max(1, len(paid) // 12)
    ax.set_xticks(x[::step], list(paid["cohort"][::step]), rotation=60, ha="right", fontsize=7)
    ax.set_ylim(0, None)
    ax.set_ylabel("paid share")
    ax.set_title("Paid by signup cohort")
    ax.legend(fontsize=8)


def plot_funnel(table: pd.DataFrame, *, title: str | None = None) -> Figure:
    """Three panels: the funnel by motion, the cohort heat map, paid by cohort."""
    fig, axes = plt.subplots(1, 3, figsize=(18, 6), gridspec_kw={"width_ratios": [1, 1.2, 1]})
    _funnel_panel(axes[0], table)
    _heat_panel(axes[1], table)
    _paid_panel(axes[2], table)
    if title:
        fig.suptitle(title)
    # fixed margins: tight_layout would draw the whole figure once more (half the time)
    fig.subplots_adjust(left=0.14, right=0.98, bottom=0.3, top=0.9, wspace=0.55)
    return fig
