"""Diagnostic plots logged with every run: reliability, ROC / PR, lift, SHAP summary.

Drawn with matplotlib's Agg backend (no display needed, safe in jobs).
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.metrics import precision_recall_curve, roc_curve

from training.metrics import reliability_table
from training.model import TrialcastModel


def _usable(frame: pd.DataFrame, col: str) -> tuple[np.ndarray, np.ndarray]:
    part = frame[frame[col].notna()]
    return part["label"].to_numpy(dtype=float), part[col].to_numpy(dtype=float)


def build_reliability_plot(frame: pd.DataFrame, prob_cols: dict[str, str], title: str) -> Figure:
    """Observed rate vs mean prediction per equal-mass bin, one line per model."""
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfect")
    for name, col in prob_cols.items():
        y, p = _usable(frame, col)
        table = reliability_table(y, p)
        ax.plot(table["mean_pred"], table["observed"], marker="o", markersize=3, label=name)
    ax.set(xlabel="mean predicted probability", ylabel="observed rate", title=title)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    return fig


def build_roc_pr_plot(frame: pd.DataFrame, prob_cols: dict[str, str], title: str) -> Figure:
    """ROC and precision-recall curves side by side."""
    fig, (roc_ax, pr_ax) = plt.subplots(1, 2, figsize=(10, 4.5))
    roc_ax.plot([0, 1], [0, 1], color="grey", linestyle=":")
    for name, col in prob_cols.items():
        y, p = _usable(frame, col)
        if len(np.unique(y)) < 2:
            continue
        fpr, tpr, _ = roc_curve(y, p)
        roc_ax.plot(fpr, tpr, label=name)
        precision, recall, _ = precision_recall_curve(y, p)
        pr_ax.plot(recall, precision, label=name)
    roc_ax.set(xlabel="false positive rate", ylabel="true positive rate", title=f"{title}: ROC")
    pr_ax.set(xlabel="recall", ylabel="precision", title=f"{title}: precision-recall")
    roc_ax.legend(fontsize=8)
    pr_ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def build_lift_plot(frame: pd.DataFrame, prob_cols: dict[str, str], title: str) -> Figure:
    """Cumulative gains: share of positives captured when working the top x% of accounts."""
    fig, ax = plt.subplots(figsize=(5.5, 5))
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
        ax.plot(share, gains, label=name)
    ax.axvline(0.3, color="grey", linewidth=0.5)
    ax.set(xlabel="share of rows worked (by score)", ylabel="share of positives", title=title)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


def build_shap_summary_plot(
    model: TrialcastModel, frame: pd.DataFrame, *, sample: int = 2000, seed: int = 0
) -> Figure:
    """SHAP summary (``shap.TreeExplainer`` on a sample), in calibrated log-odds.

    Values are the booster's TreeSHAP values times the Platt slope ``a``, the same
    contributions the model reports.
    """
    import shap

    part = frame.sample(n=min(sample, len(frame)), random_state=seed) if len(frame) else frame
    X = model.prepare(part)
    values = model.a * np.asarray(shap.TreeExplainer(model.booster).shap_values(X))
    shown = X.copy()
    for col in model.categories:
        shown[col] = X[col].cat.codes.astype(float).where(X[col].notna())
    plt.figure(figsize=(8, 7))
    shap.summary_plot(values, shown, show=False, max_display=20)
    fig = plt.gcf()
    fig.suptitle(f"{model.kind}: feature contributions (calibrated log-odds)", fontsize=10)
    fig.tight_layout()
    return fig
