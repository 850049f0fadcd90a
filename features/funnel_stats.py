"""The statistics of the funnel: Wilson intervals, a two-proportion test and
Benjamini-Hochberg control of false alarms over many cells."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import ndtr

#: z of a two-sided 95% interval.
Z95 = 1.959963984540054


def wilson_interval(
    reached: ArrayLike, trials: ArrayLike, z: float = Z95
) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of ``reached / trials`` (NaN where ``trials`` is 0).

    Unlike the normal interval it stays inside [0, 1] and is honest at 0 and 1.
    """
    k = np.asarray(reached, dtype=np.float64)
    n = np.asarray(trials, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n
        denom = 1 + z * z / n
        centre = (p + z * z / (2 * n)) / denom
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    low = np.where(n > 0, np.clip(centre - half, 0.0, 1.0), np.nan)
    high = np.where(n > 0, np.clip(centre + half, 0.0, 1.0), np.nan)
    return low, high


def two_proportion_p(k1: ArrayLike, n1: ArrayLike, k2: ArrayLike, n2: ArrayLike) -> np.ndarray:
    """Two-sided p-value that ``k1/n1`` and ``k2/n2`` share one rate (pooled z-test);
    1 where the pooled rate is 0 or 1 (no variation to test), NaN where a count is 0."""
    a1, m1, a2, m2 = (np.asarray(x, dtype=np.float64) for x in (k1, n1, k2, n2))
    with np.errstate(invalid="ignore", divide="ignore"):
        pooled = (a1 + a2) / (m1 + m2)
        se = np.sqrt(pooled * (1 - pooled) * (1 / m1 + 1 / m2))
        z = (a1 / m1 - a2 / m2) / se
        p = 2 * ndtr(-np.abs(z))
    p = np.where(se > 0, p, 1.0)
    return np.where((m1 > 0) & (m2 > 0), p, np.nan)


def benjamini_hochberg(p_values: ArrayLike, q: float) -> np.ndarray:
    """Which hypotheses Benjamini-Hochberg rejects at false discovery rate ``q``
    (NaN p-values are not tested and never rejected).

    Under no change at all, the chance of any flag is at most ``q``; with real
    changes, at most a share ``q`` of the flags are expected to be false.
    """
    p = np.asarray(p_values, dtype=np.float64)
    tested = np.flatnonzero(~np.isnan(p))
    out = np.zeros(len(p), dtype=bool)
    m = len(tested)
    if m == 0:
        return out
    order = tested[np.argsort(p[tested], kind="stable")]
    below = p[order] <= q * np.arange(1, m + 1) / m
    if below.any():
        last = int(np.flatnonzero(below)[-1])
        out[order[: last + 1]] = True
    return out
