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


@dataclass(frozen=True)
class DriftReport:
    """Per-feature PSI (sorted by importance-weighted PSI) and the prediction drift.

    Attributes:
        features: ``feature``, ``psi``, ``importance`` (share of gain),
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
    rows = []
    for name, gain in importance.items():
        if name not in reference.columns or name not in recent.columns:
            continue
        value = psi(reference[name], recent[name]) if len(recent) and len(reference) else np.nan
        share = max(gain, 0.0) / total
        rows.append(
            {
                "feature": name,
                "psi": value,
                "importance": share,
                "weighted": (0.0 if np.isnan(value) else value) * share,
                "material": bool(
                    np.isfinite(value) and value >= PSI_SHIFTED and share >= MATERIAL_IMPORTANCE
                ),
            }
        )
    table = pd.DataFrame(rows, columns=["feature", "psi", "importance", "weighted", "material"])
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
