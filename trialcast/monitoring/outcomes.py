"""Outcomes so far: expected vs realised conversions per weekly cohort, and a sequential test.

The test must not cry wolf when run every week on the same, growing data. It
is a likelihood ratio that stays a martingale as outcomes land: under the
champion (H0) trial ``i`` has converted by ``as_of`` with chance ``q_i``; under
a shift of the conversion log-odds by ``delta`` with chance
``q_i(delta) = sigmoid(logit p_i + delta) * q_i / p_i``. The likelihood ratio of
everything seen so far, averaged over a few shifts (``DELTAS``, both ways), is a
non-negative martingale under H0 as weeks add outcomes, so by Ville's
inequality it ever exceeds ``1 / alpha`` with chance at most ``alpha`` over all
weekly runs together. Because a change starts at some cohort, the statistic is
taken from each candidate start cohort on (CUSUM-style) and ``alpha`` is split
over ``MAX_STARTS`` start points (Bonferroni), so the alarm threshold is
``log(MAX_STARTS / alpha)``. The start cohort with the largest ratio is the
"since" of the alert.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

#: Log-odds shifts the test looks for (a price change of +/-0.8 sits inside).
DELTAS = (-1.2, -0.6, 0.6, 1.2)
#: False-alarm budget over all weekly runs of one champion.
ALPHA = 0.05
#: Start cohorts the budget is split over (the last twelve weekly cohorts).
MAX_STARTS = 12
#: Below this many conversions expected so far, outcomes cannot tell yet.
MIN_EXPECTED = 8.0


@dataclass(frozen=True)
class OutcomeTest:
    """The sequential test's result.

    Attributes:
        log_lr: the largest log likelihood ratio over start cohorts.
        threshold: the alarm level ``log(MAX_STARTS / ALPHA)``.
        alarm: ``log_lr >= threshold``.
        since: first cohort of the best start (``None`` with no monitored cohort).
        direction: ``"fewer"`` or ``"more"`` conversions than expected.
        expected: conversions expected so far since ``since``.
        realised: conversions so far since ``since``.
        p_value: one-sided Poisson-binomial p-value of ``realised`` given the
            expectations (a single look; the alarm uses the ratio, not this).
        enough: whether enough conversions were expected to tell at all.
    """

    log_lr: float
    threshold: float
    alarm: bool
    since: pd.Timestamp | None
    direction: str
    expected: float
    realised: int
    p_value: float
    enough: bool

    def evidence(self) -> str:
        """'since 2025-07-28: 38 conversions vs 61.0 expected so far (p = 0.002)'."""
        day = "-" if self.since is None else self.since.date().isoformat()
        return (
            f"since {day}: {self.realised} conversions vs {self.expected:.1f} expected so far "
            f"(p = {self.p_value:.3g}; log likelihood ratio {self.log_lr:.1f}, "
            f"alarm at {self.threshold:.1f})"
        )


def summarise_cohorts(frame: pd.DataFrame) -> pd.DataFrame:
    """Per weekly cohort: trials, expected and realised so far, matured or not."""
    if frame.empty:
        return pd.DataFrame(
            columns=["cohort", "trials", "expected_so_far", "realised_so_far", "matured"]
        )
    grouped = frame.groupby("cohort", sort=True)
    out = pd.DataFrame(
        {
            "trials": grouped.size(),
            "expected_so_far": grouped["q"].sum(),
            "realised_so_far": grouped["y"].sum().astype(int),
            "expected_final": grouped["p"].sum(),
            "matured": grouped["matured"].all(),
        }
    )
    return out.reset_index()


def _log_lr(q: np.ndarray, p: np.ndarray, y: np.ndarray, delta: float) -> float:
    logit = np.log(p / (1.0 - p))
    p_d = 1.0 / (1.0 + np.exp(-(logit + delta)))
    q_d = np.clip(q * p_d / p, 1e-12, 1 - 1e-12)
    q0 = np.clip(q, 1e-12, 1 - 1e-12)
    return float(np.sum(np.where(y > 0, np.log(q_d / q0), np.log((1 - q_d) / (1 - q0)))))


def poisson_binomial_p(q: np.ndarray, realised: int, *, fewer: bool) -> float:
    """One-sided P(S <= realised) (``fewer``) or P(S >= realised), S a sum of Bernoulli(q).

    Exact by dynamic programming up to 4,000 trials; a normal approximation
    with continuity correction beyond.
    """
    q = np.asarray(q, dtype=np.float64)
    q = q[q > 1e-12]
    if len(q) > 4_000:
        mean, sd = q.sum(), float(np.sqrt(np.sum(q * (1 - q)))) or 1.0
        z = (realised + (0.5 if fewer else -0.5) - mean) / sd
        return float(stats.norm.cdf(z) if fewer else stats.norm.sf(z))
    dist = np.zeros(len(q) + 1)
    dist[0] = 1.0
    for i, qi in enumerate(q):
        dist[1 : i + 2] = dist[1 : i + 2] * (1 - qi) + dist[: i + 1] * qi
        dist[0] *= 1 - qi
    k = min(max(realised, 0), len(q))
    return float(min(1.0, dist[: k + 1].sum() if fewer else dist[k:].sum()))


def run_outcome_test(frame: pd.DataFrame) -> OutcomeTest:
    """Run the sequential test on the monitored trials of ``frame`` (see module docstring)."""
    threshold = float(np.log(MAX_STARTS / ALPHA))
    data = frame[frame["monitored"]].sort_values("cohort", kind="mergesort")
    if data.empty:
        return OutcomeTest(0.0, threshold, False, None, "fewer", 0.0, 0, 1.0, False)
    cohorts = data["cohort"].drop_duplicates().to_list()[-MAX_STARTS:]
    p = np.clip(data["p"].to_numpy(dtype=np.float64), 1e-9, 1 - 1e-9)
    q, y = data["q"].to_numpy(dtype=np.float64), data["y"].to_numpy()
    when = data["cohort"].to_numpy()
    best = (-np.inf, cohorts[0], DELTAS[0])
    for start in cohorts:
        m = when >= np.datetime64(start)
        if q[m].sum() < MIN_EXPECTED / 2:
            continue  # too little expected from here on to say anything
        lrs = np.array([_log_lr(q[m], p[m], y[m], d) for d in DELTAS])
        mixed = float(np.logaddexp.reduce(lrs) - np.log(len(DELTAS)))
        if mixed > best[0]:
            best = (mixed, start, DELTAS[int(np.argmax(lrs))])
    log_lr, since, delta = best
    m = when >= np.datetime64(since)
    expected, realised = float(q[m].sum()), int(y[m].sum())
    fewer = delta < 0
    return OutcomeTest(
        log_lr=max(log_lr, 0.0) if np.isfinite(log_lr) else 0.0,
        threshold=threshold,
        alarm=bool(np.isfinite(log_lr) and log_lr >= threshold),
        since=pd.Timestamp(since),
        direction="fewer" if fewer else "more",
        expected=expected,
        realised=realised,
        p_value=poisson_binomial_p(q[m], realised, fewer=fewer),
        enough=bool(q.sum() >= MIN_EXPECTED),
    )
