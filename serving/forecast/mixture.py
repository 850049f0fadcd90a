"""Calibration and deal-value uncertainty around the exact sum distribution, with honest bounds.

Calibration uncertainty is one shared log-odds shift ``Z ~ N(0, s^2)`` for a
whole group, so the revenue distribution is the mixture
``F(x) = E_Z[F_Z(x)]`` of exact sum distributions (``serving.forecast.distribution``).
A few Gauss-Hermite nodes cannot resolve it: with many trials ``F_Z(x)`` is almost
a step in ``Z`` and the quantiles move with the nodes (at n = 3000, s = 0.8 a
7-node rule put P90 at 5.99M where Monte Carlo gives 6.19M).

Here the quadrature error is bounded, not assumed away. ``F_Z(x)`` falls as ``Z``
grows (higher log-odds, stochastically larger sums), so on a grid
``z_0 < ... < z_G`` over ``+/- ZMAX s`` and for ``Z`` in ``[z_{k-1}, z_k]``,
``F_{z_k}(x) <= F_Z(x) <= F_{z_{k-1}}(x)``; the tails beyond the grid are bounded
by the certain minimum and maximum of the sum. Weighting by the normal mass of
each interval gives two CDFs that bracket the true mixture; the point estimate
is their average, and the quantile bracket (``SumDistribution.quantile_bounds``)
holds quadrature, lattice rounding and window error together. The grid is
refined (intervals split where the bracket is widest at P10 / P50 / P90, nodes
reused) until the quadrature part of the bracket is within ``tolerance x sd``
or the grid has more than ``MAX_INTERVALS`` intervals; whatever remains is
still in the stated bound.

Deal-value uncertainty (an open trial's value is an estimate) is independent
across accounts and enters as an independent normal term of variance
``sum p_i var_i`` added to the sum (``smooth_sd``): a normal approximation,
stated as such; the CDF ordering above is kept by the convolution.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
from scipy.special import expit, logit, ndtr

from serving.forecast.distribution import (
    DELTA,
    TOLERANCE,
    SumDistribution,
    compute_sum_distribution,
)

#: The grid covers Z within +/- ZMAX standard deviations (tails bounded exactly).
ZMAX = 4.5
START_INTERVALS = 8
MAX_INTERVALS = 128
CHECKED = (0.1, 0.5, 0.9)


def smoothed_quantile(values: np.ndarray, probs: np.ndarray, sd: float, level: float) -> float:
    """Lower ``level``-quantile of atoms ``values`` / ``probs`` plus an independent N(0, sd^2).

    The lowest atom (no uncertain deal won; a lattice may place it a rounding step
    off 0) stays exact: deal-value noise exists only for deals that happen.
    Smoothing it too made a month whose trials almost surely do not convert
    (expected revenue ~0) show a P50 of 0.005 and a P90 of 39.
    """
    order = np.argsort(values, kind="stable")
    v, w = values[order], probs[order]
    lowest = v <= v[0] + 0.01 * sd  # the no-deal outcome (one atom per lattice / node)
    floor, nothing = float(v[0]), float(w[lowest].sum())
    w = np.where(lowest, 0.0, w)
    cum = np.concatenate([[0.0], np.cumsum(w)])
    reach = 8.0 * sd

    def cdf(x: float) -> float:
        lo = int(np.searchsorted(v, x - reach, side="left"))
        hi = int(np.searchsorted(v, x + reach, side="right"))
        smooth = float(cum[lo] + w[lo:hi] @ ndtr((x - v[lo:hi]) / sd))
        return smooth + (nothing if x >= floor else 0.0)

    if cdf(floor) >= level:
        below = cdf(floor - 1e-9 * max(1.0, abs(floor)))
        if below < level:
            return floor  # the quantile sits on the no-deal atom

    a, b = float(v[0]) - reach, float(v[-1]) + reach
    if level <= 0:
        return a
    for _ in range(80):
        mid = 0.5 * (a + b)
        if cdf(mid) >= level:
            b = mid
        else:
            a = mid
        if b - a <= 1e-9 * max(1.0, abs(b)):
            break
    return b


def _moments_at(base: np.ndarray, inner: np.ndarray, p: np.ndarray, v: np.ndarray, z: float):
    pz = np.where(inner, expit(base + z), p)
    return float(pz @ v), float((pz * (1 - pz)) @ (v * v))


def mix_over_logit_shift(
    p: np.ndarray,
    values: np.ndarray,
    logit_sd: float,
    *,
    tolerance: float = TOLERANCE,
    value_var: np.ndarray | None = None,
) -> SumDistribution:
    """Distribution of ``sum B_i v_i`` with ``logit P(B_i) = logit(p_i) + Z`` and value noise.

    Args:
        p: probabilities (1 = certain revenue, 0 = none).
        values: expected amounts.
        logit_sd: sd of the shared shift ``Z`` (0: no calibration uncertainty).
        tolerance: accuracy target (fraction of the sd) for lattice and quadrature.
        value_var: variance of each amount around its estimate (0 / None: known).
    """
    pa = np.asarray(p, dtype=np.float64)
    va = np.asarray(values, dtype=np.float64)
    vv = np.zeros(len(va)) if value_var is None else np.asarray(value_var, dtype=np.float64)
    if logit_sd <= 0:
        dist = compute_sum_distribution(pa, va, tolerance=tolerance)
        smooth = math.sqrt(max(float(np.clip(pa, 0, 1) @ np.nan_to_num(vv)), 0.0))
        if smooth <= 0:
            return dist
        return replace(dist, smooth_sd=smooth, sd=math.hypot(dist.sd, smooth))
    inner = (pa > 0) & (pa < 1)
    base = logit(np.clip(pa, 1e-12, 1 - 1e-12))
    # Moments of the mixture (smooth in Z: many Gauss-Hermite nodes are exact enough).
    x, w = np.polynomial.hermite_e.hermegauss(60)
    w = w / w.sum()
    mom = [_moments_at(base, inner, pa, va, logit_sd * xi) for xi in x]
    mean = float(sum(wi * m for wi, (m, _) in zip(w, mom, strict=True)))
    second = float(sum(wi * (s2 + m * m) for wi, (m, s2) in zip(w, mom, strict=True)))
    sd_bern = math.sqrt(max(second - mean * mean, 0.0))
    smooth = math.sqrt(max(float(np.clip(pa, 0, 1) @ np.nan_to_num(vv)), 0.0))
    sd_mix = math.hypot(sd_bern, smooth)
    certain = float(va[pa >= 1].sum())
    s_min, s_max = certain, certain + float(va[inner].sum())
    cache: dict[float, SumDistribution] = {}

    def at(z: float) -> SumDistribution:
        key = round(z / logit_sd, 9)
        if key not in cache:
            pz = np.where(inner, expit(base + z), pa)
            _, s2 = _moments_at(base, inner, pa, va, z)
            node_tol = tolerance * sd_mix / max(math.sqrt(s2), 1e-300)
            cache[key] = compute_sum_distribution(pz, va, tolerance=node_tol)
        return cache[key]

    grid = list(np.linspace(-ZMAX, ZMAX, START_INTERVALS + 1))
    while True:
        dist = _bracketed(at, logit_sd, np.array(grid), s_min, s_max, smooth, mean, sd_mix)
        quad = max(
            max(dist._quantile_raw(a, dist.probs_cdf_low) - dist.quantile(a), 0.0)
            + max(dist.quantile(a) - dist._quantile_raw(a, dist.probs_cdf_high), 0.0)
            for a in CHECKED
        )
        if quad <= tolerance * sd_mix or len(grid) > MAX_INTERVALS:
            return dist
        # Refine where the bracket is wide: intervals whose end points' CDFs differ
        # most (weighted by the interval's mass) at the reported quantiles.
        xs = [dist.quantile(a) for a in CHECKED]
        nodes = [at(logit_sd * g) for g in grid]
        mass = np.diff(ndtr(np.array(grid)))
        score = np.array(
            [
                mass[k] * max(nodes[k].cdf(x) - nodes[k + 1].cdf(x) for x in xs)
                for k in range(len(mass))
            ]
        )
        split = np.flatnonzero(score >= 0.25 * score.max())
        if score.max() <= 0 or len(split) == 0:
            split = np.arange(len(mass))
        grid = sorted({*grid, *(0.5 * (grid[k] + grid[k + 1]) for k in split)})


def _bracketed(
    at: object,
    logit_sd: float,
    grid: np.ndarray,
    s_min: float,
    s_max: float,
    smooth: float,
    mean: float,
    sd: float,
) -> SumDistribution:
    """The mixture on a ``grid`` of shifts (in sd units): estimate plus the bracketing CDFs."""
    mass = np.diff(ndtr(grid))
    tail = float(ndtr(-ZMAX))
    parts = [at(logit_sd * g) for g in grid]  # type: ignore[operator]
    high_w = np.append(mass, tail)  # node j bounds interval j+1 from above; last: upper tail
    low_w = np.insert(mass, 0, tail)  # node j bounds interval j from below; first: lower tail
    values = np.concatenate([[s_min], *[d.values for d in parts], [s_max]])
    hi = np.concatenate([[tail], *[wj * d.probs for d, wj in zip(parts, high_w, strict=True)], [0]])
    lo = np.concatenate([[0], *[wj * d.probs for d, wj in zip(parts, low_w, strict=True)], [tail]])
    order = np.argsort(values, kind="stable")
    lattice = [d for d in parts if d.method == "lattice"]
    missing = max(
        float(np.dot(high_w, [d.missing_mass for d in parts])),
        float(np.dot(low_w, [d.missing_mass for d in parts])),
    )
    return SumDistribution(
        values=values[order],
        probs=0.5 * (hi + lo)[order],
        mean=mean,
        sd=sd,
        step=max((d.step for d in parts), default=0.0),
        rounding_bound=max((d.rounding_bound for d in parts), default=0.0),
        delta=DELTA if lattice else 0.0,
        missing_mass=missing,
        method="lattice" if lattice else "exact",
        n_terms=parts[0].n_terms,
        probs_cdf_high=hi[order],
        probs_cdf_low=lo[order],
        smooth_sd=smooth,
    )
