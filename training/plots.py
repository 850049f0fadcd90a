"""Diagnostic plots logged with every run: reliability, ROC / PR, lift, SHAP summary.

Each figure is a ``matplotlib.figure.Figure`` on its own Agg canvas: no display
needed, safe in jobs and threads, and no ``pyplot`` (its import, its figure
manager and its global list of open figures, which a job would have to close).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.metrics import precision_recall_curve, roc_curve

from training.metrics import reliability_table
from training.model import TrialcastModel
from training.shap_sample import ShapSample, explain_rows, shap_rows


def _figure(width: float, height: float) -> Figure:
    """A figure of ``width`` x ``height`` inches drawn by Agg (``savefig`` writes PNG)."""
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def _usable(frame: pd.DataFrame, col: str) -> tuple[np.ndarray, np.ndarray]:
    """Labels and ``col``'s probabilities of the rows that have one (the two columns
    only: filtering the whole test frame copied every feature column)."""
    p = frame[col].to_numpy(dtype=float, na_value=np.nan)
    known = ~np.isnan(p)
    return frame["label"].to_numpy(dtype=float)[known], p[known]


#: Points drawn per curve: a figure a few hundred pixels wide shows no more, and
#: drawing every one of ten thousand steps is most of a plot's cost.
MAX_CURVE_POINTS = 500


def _thin(*arrays: np.ndarray, max_points: int = MAX_CURVE_POINTS) -> tuple[np.ndarray, ...]:
    """Every array at the same evenly spaced positions (first and last kept)."""
    n = len(arrays[0])
    if n <= max_points:
        return arrays
    keep = np.unique(np.linspace(0, n - 1, max_points).round().astype(np.int64))
    return tuple(a[keep] for a in arrays)


#: Fixed margins of the square plots. ``tight_layout`` measures every text on a
#: draw of its own, a fifth of a plot's cost; these figures' labels do not change.
_SINGLE_MARGINS = {"left": 0.13, "right": 0.97, "bottom": 0.11, "top": 0.93}


def build_reliability_plot(frame: pd.DataFrame, prob_cols: dict[str, str], title: str) -> Figure:
    """Observed rate vs mean prediction per equal-mass bin, one line per model."""
    fig = _figure(5.5, 5)
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfect")
    for name, col in prob_cols.items():
        y, p = _usable(frame, col)
        table = reliability_table(y, p)
        ax.plot(table["mean_pred"], table["observed"], marker="o", markersize=3, label=name)
    ax.set(xlabel="mean predicted probability", ylabel="observed rate", title=title)
    ax.legend(loc="upper left", fontsize=8)
    fig.subplots_adjust(**_SINGLE_MARGINS)
    return fig


def build_roc_pr_plot(frame: pd.DataFrame, prob_cols: dict[str, str], title: str) -> Figure:
    """ROC and precision-recall curves side by side."""
    fig = _figure(10, 4.5)
    roc_ax, pr_ax = fig.subplots(1, 2)
    roc_ax.plot([0, 1], [0, 1], color="grey", linestyle=":")
    for name, col in prob_cols.items():
        y, p = _usable(frame, col)
        if len(np.unique(y)) < 2:
            continue
        fpr, tpr, _ = roc_curve(y, p)
        roc_ax.plot(*_thin(fpr, tpr), label=name)
        precision, recall, _ = precision_recall_curve(y, p)
        pr_ax.plot(*_thin(recall, precision), label=name)
    roc_ax.set(xlabel="false positive rate", ylabel="true positive rate", title=f"{title}: ROC")
    pr_ax.set(xlabel="recall", ylabel="precision", title=f"{title}: precision-recall")
    roc_ax.legend(fontsize=8)
    pr_ax.legend(fontsize=8)
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.12, top=0.92, wspace=0.22)
    return fig


def build_lift_plot(frame: pd.DataFrame, prob_cols: dict[str, str], title: str) -> Figure:
    """Cumulative gains: share of positives captured when working the top x% of accounts."""
    fig = _figure(5.5, 5)
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="random")
    for name, col in prob_cols.items():
        y, p = _usable(frame, col)
        if y.sum() == 0:
            continue
        # Random order among ties, then by score: a fair curve for tied heuristics.
        rng = np.random.default_rng(0)
        order = np.lexsort((rng.random(len(p)), -p))
        gains = np.concatenate([[0.0], np.cumsum(y[order]) / y.sum()])
        share = np.linspace(0, 1, len(gains))
        ax.plot(*_thin(share, gains), label=name)
    ax.axvline(0.3, color="grey", linewidth=0.5)
    ax.set(xlabel="share of rows worked (by score)", ylabel="share of positives", title=title)
    ax.legend(loc="lower right", fontsize=8)
    fig.subplots_adjust(**_SINGLE_MARGINS)
    return fig


def build_shap_summary_plot(
    model: TrialcastModel,
    frame: pd.DataFrame,
    *,
    sample: int = 1000,
    seed: int = 0,
    max_display: int = 20,
    explained: ShapSample | None = None,
) -> Figure:
    """SHAP summary (beeswarm) of a sample, in calibrated log-odds.

    One dot per row and feature: across, the row's contribution (the booster's
    exact TreeSHAP values times the Platt slope ``a``, the same contributions the
    model reports); colour, the feature's value (low to high within the
    feature, grey when missing); features sorted by mean absolute
    contribution. Drawn as one vectorised scatter, so no ``shap`` import or
    per-point layout loop.

    ``explained``: the sample's contributions when already computed
    (``explain_rows(model, shap_rows(frame, sample=sample, seed=seed))``, say in a
    thread while other work runs); used when its rows are the sample's, computed
    here otherwise.
    """
    rows = shap_rows(frame, sample=sample, seed=seed)
    if explained is None or not explained.rows.equals(rows.index):
        explained = explain_rows(model, rows)
    values, X = explained.values, explained.matrix
    fig = _figure(8, 7)
    ax = fig.subplots()
    if values.size == 0:
        ax.text(0.5, 0.5, "no rows to explain", ha="center", va="center")
        return fig
    order = np.argsort(-np.abs(values).mean(axis=0), kind="stable")[:max_display]
    xs, ys, colours = [], [], []
    for rank, j in enumerate(order):
        x = values[:, j]
        xs.append(x)
        ys.append(len(order) - 1 - rank + _beeswarm_offsets(x))
        colours.append(_value_shades(X[:, j]))
    x_all, y_all, c_all = np.concatenate(xs), np.concatenate(ys), np.concatenate(colours)
    missing = np.isnan(c_all)
    ax.axvline(0, color="grey", linewidth=0.8)
    ax.scatter(x_all[missing], y_all[missing], s=6, color="#999999", alpha=0.6, linewidths=0)
    dots = ax.scatter(
        x_all[~missing],
        y_all[~missing],
        s=6,
        c=c_all[~missing],
        cmap="coolwarm",
        vmin=0.0,
        vmax=1.0,
        linewidths=0,
    )
    bar = fig.colorbar(dots, ax=ax, ticks=[0, 1], aspect=40, pad=0.02)
    bar.ax.set_yticklabels(["low", "high"])
    bar.set_label("feature value")
    ax.set_yticks(range(len(order)))
    labels = [model.features[j] for j in order[::-1]]
    ax.set_yticklabels(labels, fontsize=8)
    ax.set_ylim(-0.7, len(order) - 0.3)
    ax.set_xlabel("contribution to the calibrated log-odds")
    ax.set_title(f"{model.kind}: feature contributions (calibrated log-odds)", fontsize=10)
    # Room for the longest feature name (8 pt text: about 0.008 of this figure's
    # width a character), instead of tight_layout's measuring draw.
    left = min(0.6, 0.04 + 0.0082 * max(len(label) for label in labels))
    fig.subplots_adjust(left=left, right=0.93, bottom=0.08, top=0.95)
    return fig


def _beeswarm_offsets(x: np.ndarray, *, bins: int = 100, width: float = 0.4) -> np.ndarray:
    """Vertical offsets that spread dots with similar ``x`` apart (a beeswarm).

    Dots in the same of ``bins`` bins along ``x`` are stacked alternately above
    and below the line, so a crowded value shows as a wide band.
    """
    n = len(x)
    if n == 0:
        return np.zeros(0)
    low, high = float(np.min(x)), float(np.max(x))
    span = high - low if high > low else 1.0
    bin_of = np.minimum(((x - low) / span * bins).astype(np.int64), bins - 1)
    order = np.argsort(bin_of, kind="stable")
    sorted_bins = bin_of[order]
    starts = np.searchsorted(sorted_bins, sorted_bins, side="left")
    rank = np.arange(n) - starts  # position of each dot within its bin
    step = ((rank + 1) // 2) * np.where(rank % 2 == 1, 1.0, -1.0)
    crowd = max(int(np.bincount(bin_of).max()), 1)
    offsets = np.empty(n)
    offsets[order] = step * (width / max(crowd // 2, 1))
    return offsets


def _value_shades(column: np.ndarray) -> np.ndarray:
    """A feature's values scaled to [0, 1] between its 5th and 95th percentiles (NaN kept)."""
    known = column[~np.isnan(column)]
    if len(known) == 0:
        return np.full(len(column), np.nan)
    low, high = np.percentile(known, [5, 95])
    if high <= low:
        low, high = float(known.min()), float(known.max())
    if high <= low:
        return np.where(np.isnan(column), np.nan, 0.5)
    return np.clip((column - low) / (high - low), 0.0, 1.0)
