"""The distribution of a sum of independent ``Bernoulli(p_i) x value_i`` terms, exactly.

Finance wants P10 / P50 / P90 of "revenue = sum over accounts of converts x deal
value". The sum of independent, non-identical Bernoulli x value terms has no
closed form, and a normal approximation is poor where few trials carry the
revenue (a handful of big deals, a small segment, one month). Two exact methods:

- **Enumeration** (at most ``MAX_ENUMERATE`` uncertain terms): all ``2^n`` outcomes,
  the exact distribution. No error.
- **Lattice** (any n): values are rounded to a grid of step ``h``; the rounded sum
  lives on integers and its distribution is computed exactly by a tree of FFT
  convolutions (accounts sorted by value, leaves of 8 accounts enumerated, pairs
  merged level by level). Each node's array is cut to ``mean +/- w`` with ``w`` from
  Bernstein's inequality at ``WINDOW_EPS`` per node, so the dropped mass ``eta``
  is provably below ``nodes x WINDOW_EPS`` (and measured).

Error bound of the lattice method (stated per result, ``quantile_bounds``): write
``S = S_h + mu_E + D`` where ``S_h`` is the rounded sum, ``mu_E = sum p_i e_i`` the
mean rounding error (added back exactly) and ``D = sum (B_i - p_i) e_i`` with
``|e_i| <= h/2``. Bernstein gives ``P(|D| >= t) <= delta`` for
``t = b L/3 + sqrt((b L/3)^2 + 2 L sigma_E^2)``, ``L = ln(2/delta)``,
``b = max|e_i|``, ``sigma_E^2 = sum p_i (1-p_i) e_i^2``. With ``F'`` the computed
CDF (``F' <= F <= F' + eta``) the true quantile satisfies::

    q'(alpha - eta - delta) - t  <=  q_alpha(S)  <=  q'(alpha + delta) + t

The grid step is chosen so that ``t <= tolerance x sd(S)`` (default 5% of the
standard deviation, i.e. about 2% of the P10-P90 width; pass a smaller
``tolerance`` for more, at proportional cost). Quantiles are lower
quantiles: ``q_alpha = min{x : P(S <= x) >= alpha}``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.fft as sfft

#: Up to this many uncertain terms, all 2^n outcomes are enumerated (exact).
MAX_ENUMERATE = 16
#: Accounts per enumerated leaf of the lattice tree (2^LEAF outcomes each).
LEAF = 8
#: Accounts per batch subtree (leaves merged level by level as 2-D arrays).
CHUNK = LEAF * 512
#: Leaf cells per batch subtree (memory cap when values are large on the lattice).
CHUNK_CELLS = 1 << 22
#: Bernstein tail mass allowed outside each node's window.
WINDOW_EPS = 1e-13
#: Probability that the rounding error exceeds its bound ``t``.
DELTA = 1e-4
#: Default accuracy: quantile error bound at most this fraction of sd(S).
TOLERANCE = 0.05
#: Allowance for floating-point round-off of the FFTs, per cell and merge level.
FP_EPS = 1e-15


@dataclass(frozen=True)
class SumDistribution:
    """A computed distribution of ``S = sum_i B_i v_i``.

    Attributes:
        values: atom locations (currency), sorted ascending.
        probs: their probabilities (sum ``1 - missing_mass`` up to round-off).
        mean: exact ``E[S] = sum p_i v_i``.
        sd: exact standard deviation ``sqrt(sum p_i (1 - p_i) v_i^2)``.
        step: the lattice step ``h`` (0 when enumerated exactly).
        rounding_bound: ``t``: ``|S - (S_h + mu_E)| < t`` except with probability ``delta``.
        delta: see ``rounding_bound``.
        missing_mass: ``eta``, an upper bound on probability dropped by windowing
            (plus FFT round-off allowance).
        method: ``"exact"``, ``"lattice"`` or ``"certain"``.
        n_terms: number of uncertain terms (0 < p < 1).
    """

    values: np.ndarray
    probs: np.ndarray
    mean: float
    sd: float
    step: float
    rounding_bound: float
    delta: float
    missing_mass: float
    method: str
    n_terms: int
    #: Mixtures over a shared log-odds shift (``serving.forecast.mixture``): atom
    #: weights whose CDFs bracket the true one from above / below (quadrature error).
    probs_cdf_high: np.ndarray | None = None
    probs_cdf_low: np.ndarray | None = None
    #: sd of independent deal-value noise added to the sum (normal approximation).
    smooth_sd: float = 0.0

    def _quantile_raw(self, level: float, probs: np.ndarray | None = None) -> float:
        weights = self.probs if probs is None else probs
        if self.smooth_sd > 0:
            from serving.forecast.mixture import smoothed_quantile

            return smoothed_quantile(self.values, weights, self.smooth_sd, level)
        cum = np.cumsum(weights)
        i = int(np.searchsorted(cum, level - 1e-12, side="left"))
        return float(self.values[min(max(i, 0), len(self.values) - 1)])

    def quantile(self, alpha: float) -> float:
        """The lower ``alpha``-quantile of the computed distribution (the point estimate)."""
        return self._quantile_raw(alpha)

    def quantile_bounds(self, alpha: float) -> tuple[float, float]:
        """A rigorous bracket ``[lo, hi]`` containing the true ``alpha``-quantile.

        For a mixture, the bracket holds the quadrature error too: the CDF bounds
        ``probs_cdf_high`` / ``probs_cdf_low`` give the smallest / largest quantile.
        """
        if self.method != "lattice" and self.probs_cdf_high is None:
            q = self.quantile(alpha)
            return q, q
        slack = self.delta if self.rounding_bound > 0 else 0.0
        lo = self._quantile_raw(alpha - self.missing_mass - slack, self.probs_cdf_high)
        hi = self._quantile_raw(alpha + slack, self.probs_cdf_low)
        return lo - self.rounding_bound, hi + self.rounding_bound

    def error_bound(self, alphas: tuple[float, ...]) -> float:
        """Largest distance from a reported quantile to the edge of its bracket."""
        worst = 0.0
        for a in alphas:
            q = self.quantile(a)
            lo, hi = self.quantile_bounds(a)
            worst = max(worst, q - lo, hi - q)
        return worst

    def cdf(self, x: float) -> float:
        """``P(S <= x)`` of the computed distribution."""
        return float(self.probs[self.values <= x + 1e-9].sum())


def _moments(p: np.ndarray, v: np.ndarray) -> tuple[float, float]:
    return float(p @ v), math.sqrt(max(float((p * (1 - p)) @ (v * v)), 0.0))


def _certain(total: float) -> SumDistribution:
    return SumDistribution(
        values=np.array([total]),
        probs=np.array([1.0]),
        mean=total,
        sd=0.0,
        step=0.0,
        rounding_bound=0.0,
        delta=0.0,
        missing_mass=0.0,
        method="certain",
        n_terms=0,
    )


def enumerate_distribution(p: np.ndarray, v: np.ndarray, shift: float = 0.0) -> SumDistribution:
    """The exact distribution by enumerating all ``2^n`` outcomes (small ``n`` only)."""
    values = np.zeros(1)
    probs = np.ones(1)
    for pi, vi in zip(p, v, strict=True):
        values = np.concatenate([values, values + vi])
        probs = np.concatenate([probs * (1 - pi), probs * pi])
    order = np.argsort(values, kind="stable")
    mean, sd = _moments(p, v)
    return SumDistribution(
        values=values[order] + shift,
        probs=probs[order],
        mean=mean + shift,
        sd=sd,
        step=0.0,
        rounding_bound=0.0,
        delta=0.0,
        missing_mass=0.0,
        method="exact",
        n_terms=len(p),
    )


def _bernstein_halfwidth(var: np.ndarray, kmax: np.ndarray, eps: float) -> np.ndarray:
    big_l = math.log(2.0 / eps)
    return kmax * big_l / 3.0 + np.sqrt((kmax * big_l / 3.0) ** 2 + 2.0 * big_l * var)


def _window(
    full: np.ndarray, offset: np.ndarray, mean: np.ndarray, var: np.ndarray, kmax: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Cut each row of ``full`` to where its mass lies; returns (pmf, new offset).

    A row keeps the cells inside its Bernstein window (tail mass at most
    ``WINDOW_EPS`` each side, a priori), further trimmed where the measured tail
    mass is at most ``WINDOW_EPS`` (so the window is tight even where Bernstein is
    loose). Rows share one width (the widest).
    """
    width_full = full.shape[1]
    hw = _bernstein_halfwidth(var, kmax, WINDOW_EPS)
    start = np.clip(np.floor(mean - hw).astype(np.int64) - offset, 0, width_full - 1)
    end = np.clip(np.ceil(mean + hw).astype(np.int64) - offset + 1, 1, width_full)
    if width_full > 64:
        head = np.cumsum(full, axis=1)
        start = np.maximum(start, (head <= WINDOW_EPS).sum(axis=1))
        tail = head[:, -1:] - head  # mass strictly right of each cell
        end = np.minimum(end, width_full - (tail[:, ::-1] <= WINDOW_EPS).sum(axis=1) + 1)
        end = np.maximum(end, start + 1)
    width = int(max(1, (end - start).max()))
    if width >= width_full:
        return full, offset
    start = np.minimum(start, width_full - width)
    cols = start[:, None] + np.arange(width)[None, :]
    return np.take_along_axis(full, cols, axis=1), offset + start


def _leaves(p: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Dense pmfs of blocks of ``LEAF`` accounts (rows), by enumerating 2^LEAF outcomes."""
    nb = len(p) // LEAF
    pb, kb = p.reshape(nb, LEAF), k.reshape(nb, LEAF)
    prob = np.ones((nb, 1))
    vals = np.zeros((nb, 1), dtype=np.int64)
    for j in range(LEAF):  # outcomes doubled per account: no exp, no matmul
        pj, kj = pb[:, j : j + 1], kb[:, j : j + 1]
        prob = np.concatenate([prob * (1.0 - pj), prob * pj], axis=1)
        vals = np.concatenate([vals, vals + kj], axis=1)
    width = int(kb.sum(axis=1).max()) + 1
    flat = (np.arange(nb)[:, None] * width + vals).ravel()
    return np.bincount(flat, weights=prob.ravel(), minlength=nb * width).reshape(nb, width)


@dataclass
class _Node:
    offset: int
    pmf: np.ndarray
    mean: float
    var: float
    kmax: int


def _reduce_chunk(p: np.ndarray, k: np.ndarray) -> tuple[_Node, int]:
    """Exact pmf (windowed) of the lattice sum of one chunk; returns it and merge depth."""
    pad = (-len(p)) % LEAF
    p = np.concatenate([p, np.zeros(pad)])
    k = np.concatenate([k, np.zeros(pad, dtype=np.int64)])
    pmf = _leaves(p, k)
    nb = pmf.shape[0]
    kf = k.astype(np.float64)
    mean = (p * kf).reshape(nb, LEAF).sum(1)
    var = (p * (1 - p) * kf * kf).reshape(nb, LEAF).sum(1)
    kmax = k.reshape(nb, LEAF).max(1).astype(np.float64)
    offset = np.zeros(nb, dtype=np.int64)
    depth = 0
    while pmf.shape[0] > 1:
        if pmf.shape[0] % 2:  # pad with a point mass at 0
            pmf = np.vstack([pmf, np.eye(1, pmf.shape[1])])
            offset, mean = np.append(offset, 0), np.append(mean, 0.0)
            var, kmax = np.append(var, 0.0), np.append(kmax, 0.0)
        w = pmf.shape[1]
        n_out = 2 * w - 1
        n_fft = sfft.next_fast_len(n_out, real=True)
        f = sfft.rfft(pmf, n=n_fft, axis=1)
        full = sfft.irfft(f[0::2] * f[1::2], n=n_fft, axis=1)[:, :n_out]
        np.maximum(full, 0.0, out=full)
        offset = offset[0::2] + offset[1::2]
        mean, var = mean[0::2] + mean[1::2], var[0::2] + var[1::2]
        kmax = np.maximum(kmax[0::2], kmax[1::2])
        pmf, offset = _window(full, offset, mean, var, kmax)
        depth += 1
    node = _Node(int(offset[0]), pmf[0], float(mean[0]), float(var[0]), int(kmax[0]))
    return node, depth


def _merge(a: _Node, b: _Node) -> _Node:
    full = sfft.irfft(
        sfft.rfft(a.pmf, n := sfft.next_fast_len(len(a.pmf) + len(b.pmf) - 1, real=True))
        * sfft.rfft(b.pmf, n),
        n,
    )[: len(a.pmf) + len(b.pmf) - 1]
    np.maximum(full, 0.0, out=full)
    mean, var, kmax = a.mean + b.mean, a.var + b.var, max(a.kmax, b.kmax)
    pmf, off = _window(
        full[None, :],
        np.array([a.offset + b.offset]),
        np.array([mean]),
        np.array([var]),
        np.array([float(kmax)]),
    )
    return _Node(int(off[0]), pmf[0], mean, var, kmax)


def _chunks(k_sorted: np.ndarray) -> list[tuple[int, int]]:
    """Consecutive chunks of sorted accounts, at most ``CHUNK`` accounts and about
    ``CHUNK_CELLS`` leaf cells each (big values get small chunks)."""
    out, s, n = [], 0, len(k_sorted)
    while s < n:
        cost = np.arange(1, min(CHUNK, n - s) + 1) * (k_sorted[s : s + CHUNK] + 1)
        e = s + max(LEAF, int(np.searchsorted(cost, CHUNK_CELLS, side="right")))
        out.append((s, min(e, n)))
        s = min(e, n)
    return out


def lattice_pmf(p: np.ndarray, k: np.ndarray) -> tuple[int, np.ndarray, float]:
    """Exact (windowed) pmf of ``sum B_i k_i`` for integer ``k_i >= 0``.

    Returns:
        ``(offset, pmf, eta)``: ``pmf[j] = P(sum = offset + j)`` for the kept
        window, and ``eta`` bounding the probability dropped plus FFT round-off.
    """
    order = np.argsort(k, kind="stable")
    p, k = p[order], k[order]
    nodes: list[_Node] = []
    depth, n_nodes = 0, 0
    for s, e in _chunks(k):
        node, d = _reduce_chunk(p[s:e], k[s:e])
        nodes.append(node)
        depth = max(depth, d)
        n_nodes += 2 * math.ceil((e - s) / LEAF)
    while len(nodes) > 1:
        nodes = [
            _merge(nodes[i], nodes[i + 1]) if i + 1 < len(nodes) else nodes[i]
            for i in range(0, len(nodes), 2)
        ]
        depth += 1
        n_nodes += len(nodes)
    root = nodes[0]
    measured = max(0.0, 1.0 - float(root.pmf.sum()))
    eta = max(measured, n_nodes * WINDOW_EPS) + FP_EPS * len(root.pmf) * (depth + 1)
    return root.offset, root.pmf, eta


def _rounding_bound(p: np.ndarray, e: np.ndarray, delta: float) -> float:
    big_l = math.log(2.0 / delta)
    b = float(np.abs(e).max()) if len(e) else 0.0
    var = float((p * (1 - p)) @ (e * e))
    return b * big_l / 3.0 + math.sqrt((b * big_l / 3.0) ** 2 + 2.0 * big_l * var)


def choose_step(p: np.ndarray, v: np.ndarray, tolerance: float, delta: float = DELTA) -> float:
    """Lattice step whose rounding bound is about ``tolerance x sd(S)``.

    Exact when every value is a multiple of a common unit at least that coarse
    (whole cents are checked): then that unit is used and there is no rounding.
    """
    _, sd = _moments(p, v)
    big_l = math.log(2.0 / delta)
    spq = float((p * (1 - p)).sum())
    # Worst case |e| = h/2; typical rounding errors are ~uniform (E e^2 = h^2/12),
    # so start ~1.7x coarser and refine in `lattice_distribution` if needed.
    h = 1.7 * 2.0 * tolerance * sd / (big_l / 3.0 + math.sqrt(big_l**2 / 9.0 + 2.0 * big_l * spq))
    cents = np.rint(v * 100.0)
    if len(v) and np.allclose(cents, v * 100.0, rtol=0, atol=1e-6) and cents.max() < 2**53:
        unit = float(np.gcd.reduce(cents.astype(np.int64))) / 100.0
        if unit >= h:
            return unit
    return h


def lattice_distribution(
    p: np.ndarray,
    v: np.ndarray,
    *,
    shift: float = 0.0,
    step: float | None = None,
    tolerance: float = TOLERANCE,
    delta: float = DELTA,
) -> SumDistribution:
    """The distribution on a lattice of step ``step`` (chosen from ``tolerance`` if None)."""
    mean, sd = _moments(p, v)
    h = step if step is not None else choose_step(p, v, tolerance, delta)
    for _ in range(4):
        k = np.rint(v / h).astype(np.int64)
        e = v - h * k
        t = _rounding_bound(p, e, delta)
        if step is not None or t <= tolerance * sd or sd == 0:
            break
        h /= 2.0
    offset, pmf, eta = lattice_pmf(p, k)
    values = (offset + np.arange(len(pmf))) * h + float(p @ e) + shift
    return SumDistribution(
        values=values,
        probs=pmf,
        mean=mean + shift,
        sd=sd,
        step=h,
        rounding_bound=t if np.any(e != 0) else 0.0,
        delta=delta,
        missing_mass=eta,
        method="lattice",
        n_terms=len(p),
    )


def compute_sum_distribution(
    p: np.ndarray | list[float],
    values: np.ndarray | list[float],
    *,
    tolerance: float = TOLERANCE,
    method: str = "auto",
    step: float | None = None,
) -> SumDistribution:
    """Distribution of ``sum_i B_i v_i`` with independent ``B_i ~ Bernoulli(p_i)``.

    Terms with ``p = 1`` are a certain shift, ``p = 0`` drop out. The rest are
    enumerated exactly when at most ``MAX_ENUMERATE``, else computed on a lattice
    with a stated bound (see the module docstring).

    Args:
        p: probabilities in [0, 1].
        values: non-negative amounts (deal value, MRR).
        tolerance: lattice accuracy target as a fraction of sd(S).
        method: ``"auto"``, ``"exact"`` or ``"lattice"``.
        step: force the lattice step (tests).
    """
    pa = np.asarray(p, dtype=np.float64)
    va = np.asarray(values, dtype=np.float64)
    if pa.shape != va.shape:
        raise ValueError("p and values must have the same length")
    if np.any(~np.isfinite(pa)) or np.any((pa < 0) | (pa > 1)):
        raise ValueError("probabilities must be finite and within [0, 1]")
    if np.any(~np.isfinite(va)) or np.any(va < 0):
        raise ValueError("values must be finite and non-negative (fill missing deal values)")
    certain = float(va[pa >= 1.0].sum())
    live = (pa > 0) & (pa < 1) & (va > 0)
    pl, vl = pa[live], va[live]
    if len(pl) == 0:
        return _certain(certain)
    if method == "exact" or (method == "auto" and len(pl) <= MAX_ENUMERATE):
        if len(pl) > 24:
            raise ValueError(f"exact enumeration of {len(pl)} terms is too large")
        return enumerate_distribution(pl, vl, shift=certain)
    return lattice_distribution(pl, vl, shift=certain, step=step, tolerance=tolerance)


def compute_mixture_distribution(
    p: np.ndarray,
    values: np.ndarray,
    logit_sd: float,
    *,
    tolerance: float = TOLERANCE,
    value_var: np.ndarray | None = None,
) -> SumDistribution:
    """Sum distribution when every probability shares one uncertain log-odds shift.

    Models calibration uncertainty: the true log-odds are ``logit(p_i) + Z`` with
    one ``Z ~ N(0, logit_sd^2)`` for the whole group (a miscalibrated intercept
    moves every account together, so it does not average out over many trials),
    and optionally deal-value uncertainty (``value_var`` per term). The quadrature
    over ``Z`` and its error bound are in ``serving.forecast.mixture``.
    """
    from serving.forecast.mixture import mix_over_logit_shift

    return mix_over_logit_shift(p, values, logit_sd, tolerance=tolerance, value_var=value_var)
