"""Ranking and calibration metrics, overall and per snapshot.

Sales use the ranking (who to call first: ROC AUC, PR AUC, lift, capture);
finance uses the probabilities themselves (log loss, Brier, calibration error).

Calibration error (ECE) uses **15 equal-mass bins**: predictions are sorted and
cut into 15 groups of (nearly) equal size, and ECE is the size-weighted mean of
``|observed rate - mean prediction|``. Equal-mass bins keep every bin populated
when probabilities crowd near 0, as trial conversion probabilities do.

Top-k metrics (lift, capture) count ties fairly: rows tied at the cut-off score
count fractionally, as the expectation over a random order among them. A
heuristic with seven distinct scores is therefore not flattered (or punished)
by row order.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score

ECE_BINS = 15
EPS = 1e-15
METRICS = (
    "roc_auc",
    "pr_auc",
    "log_loss",
    "brier",
    "ece",
    "lift_top10",
    "capture_top30",
)


def _arrays(y: np.ndarray | pd.Series, p: np.ndarray | pd.Series) -> tuple[np.ndarray, np.ndarray]:
    yy = np.asarray(y, dtype=np.float64)
    pp = np.asarray(p, dtype=np.float64)
    if yy.shape != pp.shape:
        raise ValueError(f"labels {yy.shape} and predictions {pp.shape} differ in shape")
    return yy, pp


def roc_auc(y: np.ndarray | pd.Series, p: np.ndarray | pd.Series) -> float:
    """ROC AUC; NaN when only one class is present."""
    yy, pp = _arrays(y, p)
    if len(np.unique(yy)) < 2:
        return float("nan")
    return float(roc_auc_score(yy, pp))


def pr_auc(y: np.ndarray | pd.Series, p: np.ndarray | pd.Series) -> float:
    """Area under the precision-recall curve (average precision); NaN without positives."""
    yy, pp = _arrays(y, p)
    if yy.sum() == 0 or len(np.unique(yy)) < 2:
        return float("nan")
    return float(average_precision_score(yy, pp))


def log_loss(y: np.ndarray | pd.Series, p: np.ndarray | pd.Series) -> float:
    """Mean negative log-likelihood (natural log), probabilities clipped to [1e-15, 1-1e-15]."""
    yy, pp = _arrays(y, p)
    pp = np.clip(pp, EPS, 1 - EPS)
    return float(-np.mean(yy * np.log(pp) + (1 - yy) * np.log1p(-pp)))


def brier(y: np.ndarray | pd.Series, p: np.ndarray | pd.Series) -> float:
    """Mean squared error of the probabilities."""
    yy, pp = _arrays(y, p)
    return float(np.mean((pp - yy) ** 2))


def expected_calibration_error(
    y: np.ndarray | pd.Series, p: np.ndarray | pd.Series, n_bins: int = ECE_BINS
) -> float:
    """ECE over ``n_bins`` equal-mass bins (see the module docstring)."""
    yy, pp = _arrays(y, p)
    if len(yy) == 0:
        return float("nan")
    order = np.argsort(pp, kind="mergesort")
    total = 0.0
    for chunk in np.array_split(order, min(n_bins, len(order))):
        total += len(chunk) * abs(yy[chunk].mean() - pp[chunk].mean())
    return float(total / len(yy))


def reliability_table(
    y: np.ndarray | pd.Series, p: np.ndarray | pd.Series, n_bins: int = ECE_BINS
) -> pd.DataFrame:
    """Per equal-mass bin: rows, mean prediction and observed rate (the reliability curve)."""
    yy, pp = _arrays(y, p)
    order = np.argsort(pp, kind="mergesort")
    rows = [
        {"n": len(c), "mean_pred": pp[c].mean(), "observed": yy[c].mean()}
        for c in np.array_split(order, min(n_bins, max(len(order), 1)))
        if len(c)
    ]
    return pd.DataFrame(rows, columns=["n", "mean_pred", "observed"])


def top_share_positives(
    y: np.ndarray | pd.Series, p: np.ndarray | pd.Series, fraction: float
) -> tuple[float, float]:
    """Expected positives among the top ``fraction`` of rows by score, and that row count.

    The row count is ``ceil(fraction * n)``; rows tied at the cut-off score are
    counted fractionally (expectation over a random order among ties).
    """
    yy, pp = _arrays(y, p)
    n = len(yy)
    k = int(np.ceil(fraction * n - 1e-9))
    if n == 0 or k == 0:
        return 0.0, float(k)
    threshold = np.sort(pp)[::-1][k - 1]
    above = pp > threshold
    tied = pp == threshold
    room = k - int(above.sum())
    tied_pos = yy[tied].sum()
    expected = yy[above].sum() + room * tied_pos / tied.sum()
    return float(expected), float(k)


def lift_top_decile(y: np.ndarray | pd.Series, p: np.ndarray | pd.Series) -> float:
    """Positive rate in the top 10% by score divided by the overall rate (NaN if no positives)."""
    yy, _ = _arrays(y, p)
    rate = yy.mean() if len(yy) else 0.0
    if rate == 0:
        return float("nan")
    pos, k = top_share_positives(y, p, 0.10)
    return float((pos / k) / rate)


def capture_top30(y: np.ndarray | pd.Series, p: np.ndarray | pd.Series) -> float:
    """Share of all positives that fall in the top 30% by score (NaN if no positives)."""
    yy, _ = _arrays(y, p)
    if yy.sum() == 0:
        return float("nan")
    pos, _ = top_share_positives(y, p, 0.30)
    return float(pos / yy.sum())


def evaluate_binary(y: np.ndarray | pd.Series, p: np.ndarray | pd.Series) -> dict[str, float]:
    """All metrics of one set of predictions, plus ``n``, ``positives``, ``rate``, ``mean_pred``."""
    yy, pp = _arrays(y, p)
    return {
        "n": float(len(yy)),
        "positives": float(yy.sum()),
        "rate": float(yy.mean()) if len(yy) else float("nan"),
        "mean_pred": float(pp.mean()) if len(pp) else float("nan"),
        "roc_auc": roc_auc(yy, pp),
        "pr_auc": pr_auc(yy, pp),
        "log_loss": log_loss(yy, pp) if len(yy) else float("nan"),
        "brier": brier(yy, pp) if len(yy) else float("nan"),
        "ece": expected_calibration_error(yy, pp),
        "lift_top10": lift_top_decile(yy, pp),
        "capture_top30": capture_top30(yy, pp),
    }


def snapshot_order(names: list[str] | np.ndarray | pd.Index) -> list[str]:
    """Snapshot names in natural order: d1, d3, d7, d14, p50, p75, end, then m1, m2, ..."""

    def key(name: str) -> tuple[int, int, str]:
        match = re.fullmatch(r"([a-z]+)(\d+)", name)
        if name == "end":
            return (2, 0, name)
        if match:
            group = {"d": 0, "p": 1}.get(match.group(1), 3)
            return (group, int(match.group(2)), name)
        return (4, 0, name)

    return sorted({str(n) for n in names}, key=key)


def evaluate_predictions(
    frame: pd.DataFrame,
    prob_col: str,
    *,
    label_col: str = "label",
    group_col: str = "snapshot",
    min_rows: int = 0,
) -> pd.DataFrame:
    """Metrics overall (``segment = "all"``) and per snapshot, one row per segment.

    Rows where ``prob_col`` is missing are left out (a ceiling known only for
    some snapshots is scored where it is known). A snapshot segment with fewer
    than ``min_rows`` rows keeps its counts but gets no metrics (NaN): an AUC of
    1.000 on 3 rows says nothing.

    Returns:
        Columns ``segment``, ``n``, ``positives``, ``rate``, ``mean_pred`` and the
        metrics in ``METRICS``.
    """
    usable = frame[frame[prob_col].notna()]
    rows = [{"segment": "all", **evaluate_binary(usable[label_col], usable[prob_col])}]
    if group_col in usable.columns:
        groups = usable[group_col].astype(str)
        for name in snapshot_order(groups.unique()):
            part = usable[groups == name]
            scores = evaluate_binary(part[label_col], part[prob_col])
            if len(part) < min_rows:
                keep = ("n", "positives", "rate", "mean_pred")
                scores = {k: (v if k in keep else float("nan")) for k, v in scores.items()}
            rows.append({"segment": name, **scores})
    return pd.DataFrame(rows)


def evaluate_models(
    frame: pd.DataFrame,
    prob_cols: dict[str, str],
    *,
    label_col: str = "label",
    group_col: str = "snapshot",
    min_rows: int = 0,
) -> pd.DataFrame:
    """``evaluate_predictions`` for several prediction columns, stacked with a ``model`` column."""
    parts = []
    for model, col in prob_cols.items():
        table = evaluate_predictions(
            frame, col, label_col=label_col, group_col=group_col, min_rows=min_rows
        )
        table.insert(0, "model", model)
        parts.append(table)
    return pd.concat(parts, ignore_index=True)
