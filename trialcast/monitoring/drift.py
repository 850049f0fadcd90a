"""Input and prediction drift against the training window, weighted by what the model uses.

Each feature's drift is its population stability index (PSI) between the
reference trials (scored in the training window, ``monitoring.scoring``) and
the recent ones, over ten bins at the reference's deciles (a bin of its own
for missing values; categories are their own bins). The usual reading, which
is also the threshold here: below 0.1 no real change, 0.1-0.25 a moderate one,
above 0.25 the population moved. Harmless drift is told from harmful drift by
weight: a feature counts as a *material* move only when the model leans on it
(at least ``MATERIAL_IMPORTANCE`` of the total gain), and the predictions'
own PSI says whether the score the business reads moved.

A feature's weight is that of its near-copies together (``group_importance``:
the gain of every input whose rank correlation with it on the reference is at
least ``GROUP_CORRELATION``). The booster splits its gain among inputs that say
the same thing (events per day and per usual day, say), so each copy alone can
fall below the bar while the signal they share carries a large part of the
model: counted one by one, adding such inputs hid a real input shift from the
monitor (docs/benchmarks.md, session 10).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

BINS = 10
#: A bin's share never drops below this (keeps the log finite).
FLOOR = 1e-4
PSI_MODERATE = 0.1
PSI_SHIFTED = 0.25
#: Share of the model's total gain a feature needs for its move to be material.
MATERIAL_IMPORTANCE = 0.05
#: Fewer recent trials than this and drift is not judged.
MIN_ROWS = 100
#: Inputs whose rank correlation on the reference reaches this share their importance.
GROUP_CORRELATION = 0.9


@dataclass(frozen=True)
class DriftReport:
    """Per-feature PSI (sorted by importance-weighted PSI) and the prediction drift.

    Attributes:
        features: ``feature``, ``psi``, ``importance`` (share of gain),
            ``group_importance`` (share of gain with its near-copies),
            ``weighted`` (psi x importance), ``material``.
        prediction_psi: PSI of the probabilities.
        n_reference, n_recent: rows compared.
    """

    features: pd.DataFrame
    prediction_psi: float
    n_reference: int
    n_recent: int

    @property
    def judged(self) -> bool:
        """Enough rows on both sides to judge drift."""
        return self.n_reference >= MIN_ROWS and self.n_recent >= MIN_ROWS

    @property
    def material(self) -> pd.DataFrame:
        """The features whose move counts (important and shifted)."""
        return self.features[self.features["material"]]

    @property
    def shifted(self) -> bool:
        """Inputs shifted materially: an important feature or the predictions moved."""
        return self.judged and (not self.material.empty or self.prediction_psi >= PSI_SHIFTED)


def psi(reference: pd.Series, recent: pd.Series) -> float:
    """Population stability index of ``recent`` against ``reference``."""
    if not pd.api.types.is_numeric_dtype(reference.dtype) or pd.api.types.is_bool_dtype(
        reference.dtype
    ):
        ref = reference.astype(str).fillna("<missing>")
        cur = recent.astype(str).fillna("<missing>")
        levels = pd.Index(ref.unique()).union(pd.Index(cur.unique()))
        a = ref.value_counts().reindex(levels, fill_value=0).to_numpy(dtype=np.float64)
        b = cur.value_counts().reindex(levels, fill_value=0).to_numpy(dtype=np.float64)
    else:
        r = pd.to_numeric(reference, errors="coerce").to_numpy(dtype=np.float64)
        c = pd.to_numeric(recent, errors="coerce").to_numpy(dtype=np.float64)
        finite = r[np.isfinite(r)]
        inner = np.linspace(0, 1, BINS + 1)[1:-1]
        edges = np.unique(np.quantile(finite, inner)) if len(finite) else np.zeros(0)
        a, b = _binned(r, edges), _binned(c, edges)
    if a.sum() == 0 or b.sum() == 0:
        return float("nan")
    pa = np.maximum(a / a.sum(), FLOOR)
    pb = np.maximum(b / b.sum(), FLOOR)
    return float(np.sum((pb - pa) * np.log(pb / pa)))


def _binned(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts per bin (right-closed at the reference's quantiles) plus one for missing."""
    finite = np.isfinite(values)
    counts = np.bincount(
        np.searchsorted(edges, values[finite], side="left"), minlength=len(edges) + 1
    ).astype(np.float64)
    return np.append(counts, float((~finite).sum()))


def _rank_correlations(reference: pd.DataFrame, names: list[str]) -> np.ndarray:
    """Spearman correlations of the numeric ``names`` on the reference (0 elsewhere).

    Missing values take the column's mean rank (they add no correlation); a
    constant or non-numeric column correlates only with itself.
    """
    k = len(names)
    out = np.eye(k)
    numeric = [
        i
        for i, name in enumerate(names)
        if pd.api.types.is_numeric_dtype(reference[name].dtype)
        and not pd.api.types.is_bool_dtype(reference[name].dtype)
    ]
    if len(numeric) < 2 or len(reference) < 3:
        return out
    ranks = np.column_stack(
        [
            pd.to_numeric(reference[names[i]], errors="coerce").rank().to_numpy(np.float64)
            for i in numeric
        ]
    )
    finite = np.isfinite(ranks)
    means = np.where(finite, ranks, 0.0).sum(axis=0) / np.maximum(finite.sum(axis=0), 1)
    ranks = np.where(finite, ranks, means[None, :])
    centred = ranks - ranks.mean(axis=0)
    norms = np.sqrt((centred * centred).sum(axis=0))
    varying = norms > 0
    cols = np.asarray(numeric)[varying]
    unit = centred[:, varying] / norms[varying]
    out[np.ix_(cols, cols)] = np.clip(unit.T @ unit, -1.0, 1.0)
    np.fill_diagonal(out, 1.0)
    return out


def compute_drift(
    reference: pd.DataFrame,
    recent: pd.DataFrame,
    importance: dict[str, float],
    *,
    p_reference: np.ndarray,
    p_recent: np.ndarray,
) -> DriftReport:
    """PSI of every model feature and of the predictions (see the module docstring)."""
    total = sum(max(v, 0.0) for v in importance.values()) or 1.0
    names = [n for n in importance if n in reference.columns and n in recent.columns]
    shares = np.array([max(importance[n], 0.0) / total for n in names], dtype=np.float64)
    near = np.abs(_rank_correlations(reference, names)) >= GROUP_CORRELATION
    group_shares = near.astype(np.float64) @ shares
    rows = []
    for name, share, group_share in zip(names, shares, group_shares, strict=True):
        value = psi(reference[name], recent[name]) if len(recent) and len(reference) else np.nan
        rows.append(
            {
                "feature": name,
                "psi": value,
                "importance": float(share),
                "group_importance": float(group_share),
                "weighted": (0.0 if np.isnan(value) else value) * float(share),
                "material": bool(
                    np.isfinite(value)
                    and value >= PSI_SHIFTED
                    and group_share >= MATERIAL_IMPORTANCE
                ),
            }
        )
    columns = ["feature", "psi", "importance", "group_importance", "weighted", "material"]
    table = pd.DataFrame(rows, columns=columns)
    table = table.sort_values("weighted", ascending=False, kind="mergesort", ignore_index=True)
    pred = (
        psi(pd.Series(p_reference), pd.Series(p_recent))
        if len(p_reference) and len(p_recent)
        else float("nan")
    )
    return DriftReport(
        features=table,
        prediction_psi=pred,
        n_reference=len(reference),
        n_recent=len(recent),
    )
