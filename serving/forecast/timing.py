"""When conversions land: the timing of conversion among converters, learned from history.

Trials have different lengths (14, 30 days...) and conversions spread over the
trial and the window after it (many land after the trial ends). Time is put on
one scale, the *normalised conversion time*::

    tau = day / L              during the trial (0 <= tau < 1)
    tau = 1 + (day - L) / W    after it, within the window (1 <= tau < 2)

with ``L`` the trial length and ``W`` the conversion window (days after trial end).
The empirical distribution of ``tau`` among converters of closed cohorts (whose
window ended before ``as_of``, so late converters are not censored away) then
gives, for an account still open at day ``d`` of its trial,
``P(converts in month m | converts, not before d)``: the mass of ``tau`` in the
month's span divided by the survival ``P(tau >= tau(d))``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

SECONDS_PER_DAY = 86_400.0
#: Fewer converters than this and timing falls back to uniform over the window.
MIN_CONVERTERS = 20


@dataclass(frozen=True)
class ConversionTiming:
    """Empirical normalised conversion times of past converters.

    Attributes:
        tau: sorted normalised conversion times (empty: uniform fallback).
        window_days: the conversion window ``W`` after trial end.
        fitted_at: the ``as_of`` the history was cut at.
    """

    tau: np.ndarray
    window_days: float
    fitted_at: pd.Timestamp | None = None

    @property
    def n_converters(self) -> int:
        """How many past conversions the timing is learned from."""
        return len(self.tau)

    def below(self, tau: np.ndarray) -> np.ndarray:
        """``P(T < tau)`` among converters (uniform on [0, 2) in the fallback)."""
        t = np.asarray(tau, dtype=np.float64)
        if len(self.tau) < MIN_CONVERTERS:
            return np.clip(t / 2.0, 0.0, 1.0)
        return np.searchsorted(self.tau, t, side="left") / len(self.tau)

    def survival(self, tau: np.ndarray) -> np.ndarray:
        """``P(T >= tau)`` among converters."""
        return 1.0 - self.below(tau)


def compute_tau(days: np.ndarray, trial_len: np.ndarray, window_days: float) -> np.ndarray:
    """Normalised conversion time of ``days`` after trial start (see module docstring)."""
    d = np.asarray(days, dtype=np.float64)
    length = np.asarray(trial_len, dtype=np.float64)
    if window_days <= 0:
        return np.clip(d / length, 0.0, 1.0)
    after = 1.0 + (d - length) / window_days
    return np.clip(np.where(d < length, d / length, after), 0.0, 2.0)


def fit_conversion_timing(
    accounts: pd.DataFrame, *, as_of: pd.Timestamp, window_days: float
) -> ConversionTiming:
    """Learn the timing from trials whose conversion window closed before ``as_of``.

    Args:
        accounts: ``trial_start``, ``trial_end``, ``converted_at`` (NaT if not).
        as_of: only what was known then is used (conversions at or after it are
            ignored, and only closed cohorts count).
        window_days: the conversion window after trial end.
    """
    moment = pd.Timestamp(as_of)
    start = pd.to_datetime(accounts["trial_start"])
    end = pd.to_datetime(accounts["trial_end"])
    conv = pd.to_datetime(accounts["converted_at"])
    window = pd.Timedelta(days=window_days)
    closed = (end + window) <= moment
    converted = conv.notna() & (conv < moment) & (conv < end + window) & closed
    days = ((conv - start)[converted] / pd.Timedelta(days=1)).to_numpy(dtype=np.float64)
    length = ((end - start)[converted] / pd.Timedelta(days=1)).to_numpy(dtype=np.float64)
    tau = np.sort(compute_tau(days, length, window_days))
    return ConversionTiming(tau=tau, window_days=float(window_days), fitted_at=moment)


def compute_open_probability(
    p: np.ndarray,
    timing: ConversionTiming,
    *,
    day_scored: np.ndarray,
    day_now: np.ndarray,
    trial_len: np.ndarray,
) -> np.ndarray:
    """Update ``P(convert)`` scored at ``day_scored`` for still being open at ``day_now``.

    Bayes with the timing: staying unconverted from ``day_scored`` to ``day_now``
    is evidence against converting; ``p' = p r / (1 - p + p r)`` with
    ``r = S(day_now) / S(day_scored)`` the converters' chance to still be open.
    """
    w = timing.window_days
    s_then = timing.survival(compute_tau(day_scored, trial_len, w))
    s_now = timing.survival(compute_tau(day_now, trial_len, w))
    ratio = np.where(s_then > 0, np.minimum(s_now / np.where(s_then > 0, s_then, 1.0), 1.0), 0.0)
    pa = np.asarray(p, dtype=np.float64)
    denom = 1.0 - pa + pa * ratio
    return np.where(denom > 0, pa * ratio / np.where(denom > 0, denom, 1.0), 0.0)


def build_month_weights(
    trial_start: pd.Series,
    trial_len_days: np.ndarray,
    as_of: pd.Timestamp,
    timing: ConversionTiming,
) -> pd.DataFrame:
    """``P(conversion lands in month m | converts, still open at as_of)`` per account.

    Returns:
        Long frame: ``row`` (position in the input), ``month`` (month start) and
        ``weight``; weights of a row sum to 1 over the months it can still convert in.
    """
    moment = pd.Timestamp(as_of)
    w = timing.window_days
    start_s = pd.to_datetime(trial_start).to_numpy().astype("datetime64[s]").astype(np.float64)
    length = np.asarray(trial_len_days, dtype=np.float64)
    now_s = moment.to_datetime64().astype("datetime64[s]").astype(np.float64)
    d_now = (now_s - start_s) / SECONDS_PER_DAY
    horizon = length + w
    n_months = int(np.ceil(max(float(np.max(horizon - d_now, initial=0.0)), 0.0) / 28.0)) + 2
    first = moment.to_period("M").start_time
    edges = pd.date_range(first, periods=n_months + 1, freq="MS")
    edge_s = edges.to_numpy().astype("datetime64[s]").astype(np.float64)
    lo = np.maximum(edge_s[None, :-1], now_s)
    days_lo = np.clip((lo - start_s[:, None]) / SECONDS_PER_DAY, d_now[:, None], horizon[:, None])
    days_hi = np.clip(
        (edge_s[None, 1:] - start_s[:, None]) / SECONDS_PER_DAY, d_now[:, None], horizon[:, None]
    )
    surv = timing.survival(compute_tau(d_now, length, w))
    tau_lo = compute_tau(days_lo, length[:, None], w)
    tau_hi = compute_tau(days_hi, length[:, None], w)
    # The last month takes the window's end: conversions at tau exactly 2 are excluded
    # by construction (before L + W), so below(2) == 1.
    mass = timing.below(tau_hi) - timing.below(tau_lo)
    mass[:, -1] += np.where(days_hi[:, -1] >= horizon, 1.0 - timing.below(tau_hi[:, -1]), 0.0)
    remaining = np.maximum(horizon - d_now, 1e-9)
    uniform = (days_hi - days_lo) / remaining[:, None]
    has_mass = surv > 1e-12
    weight = np.where(has_mass[:, None], mass / np.where(has_mass, surv, 1.0)[:, None], uniform)
    rows, cols = np.nonzero(weight > 0)
    return pd.DataFrame(
        {"row": rows, "month": edges[:-1][cols], "weight": weight[rows, cols]}
    ).sort_values(["row", "month"], ignore_index=True)
