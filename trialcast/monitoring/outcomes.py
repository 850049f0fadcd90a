"""Outcomes so far: expected vs realised conversions per weekly cohort, and a sequential test.

The test must not cry wolf when run every week on the same, growing data.
Under the champion (H0) trial ``i`` has converted by ``as_of`` with chance
``q_i``; under a shift of the conversion log-odds by ``delta`` from cohort ``s``
on, trials of cohorts ``>= s`` have chance ``q_i(delta) = sigmoid(logit p_i +
delta) * q_i / p_i`` (same timing law, fewer or more conversions). The log
likelihood ratio of everything seen so far, ``L(s, delta)``, is the full-path
likelihood ratio of the conversions landed by ``as_of``; the statistic is its
largest value over the candidate start cohorts (the last ``MAX_STARTS``) and
the shifts in ``DELTAS`` (both ways): a CUSUM over cohorts, with the shift's
size estimated.

The alarm threshold is simulated, not a union bound: ``SIMULATIONS`` outcome
sets are drawn under H0 from the monitored trials' own ``q`` (seeded, so a
rerun gives the same threshold), the statistic (largest over starts and
shifts) is computed on each, and the threshold is its ``1 - ALPHA`` quantile.
So each weekly run rings falsely with chance ``ALPHA`` = 0.25% (if the
champion and timing law are right): about one false alarm in 400 weekly runs,
the in-control average run length a CUSUM is designed by. A champion is never
exactly right, and a young cohort's chance excess lingers for a few runs, so
on the benchmark's generated companies false alarms come about twice as often
(docs/benchmarks.md, "Model health, session 6"); at 0.5% a run the onboarding
change (behaviour mix moves, outcome law does not) rang once in 80 runs. (The
previous test bounded the chance of *ever* ringing, over all runs, at 5% by
Ville's inequality, split over 12 starts by Bonferroni and averaged over four
shifts: a threshold of 5.5 on the mixture where this one is about 5-6 on the
largest ratio, without the mixture's log(4) penalty; it saw a
-0.8 price change weeks later.) The start cohort of the largest ratio is the
"since" of the alert.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

#: Log-odds shifts the test looks for (a price change of +/-0.8 is one of them).
DELTAS = (-1.2, -0.8, -0.5, 0.5, 0.8, 1.2)
#: False-alarm chance of one weekly run (see module docstring).
ALPHA = 0.0025
#: Candidate start cohorts (the last twelve weekly cohorts).
MAX_STARTS = 12
#: Outcome paths simulated under H0 for the threshold.
SIMULATIONS = 8000
#: Seed of those paths (fixed: the same data give the same threshold).
SEED = 20
#: Below this many conversions expected so far, outcomes cannot tell yet.
MIN_EXPECTED = 8.0


@dataclass(frozen=True)
class OutcomeTest:
    """The sequential test's result.

    Attributes:
        log_lr: the largest log likelihood ratio over start cohorts and shifts.
        threshold: the alarm level, simulated under H0 (module docstring).
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

    def evidence(self, events: str = "conversions") -> str:
        """'since 2025-07-28: 38 conversions vs 61.0 expected so far (p = 0.002)'
        (``events``: what was counted, "churns" for the churn model)."""
        if self.since is None:
            return f"no cohort since the model was trained: no {events} to judge yet"
        day = self.since.date().isoformat()
        if not self.enough:
            return (
                f"since {day}: {self.realised} {events} vs {self.expected:.1f} expected so "
                f"far, under the {MIN_EXPECTED:.0f} needed to tell"
            )
        return (
            f"since {day}: {self.realised} {events} vs {self.expected:.1f} expected so far "
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


@dataclass(frozen=True)
class _Design:
    """What the statistic needs, for observed and simulated outcomes alike."""

    starts: list[pd.Timestamp]
    member: np.ndarray  # (n, S): trial in a cohort at or after start s
    weight: np.ndarray  # (R, n, S * D): log-ratio gain of a conversion, per start and shift
    base: np.ndarray  # (R, S * D): the ratio with no conversion at all
    eligible: np.ndarray  # (R, S * D): enough expected from the start at that run


def _design(
    p: np.ndarray,
    shares: np.ndarray,
    when: np.ndarray,
    starts: list,
    deltas: tuple[float, ...] = DELTAS,
) -> _Design:
    logit = np.log(p / (1.0 - p))
    member = np.column_stack([when >= np.datetime64(s) for s in starts]).astype(np.float64)
    p_d = 1.0 / (1.0 + np.exp(-(logit[:, None] + np.asarray(deltas)[None, :])))  # (n, D)
    a = np.log(p_d / p[:, None])  # a conversion
    q = np.clip(p[:, None] * shares, 0.0, 1 - 1e-12)  # (n, R)
    q_d = np.clip(p_d[:, None, :] * shares[:, :, None], 0.0, 1 - 1e-12)  # (n, R, D)
    b = np.log1p(-q_d) - np.log1p(-q)[:, :, None]  # no conversion (yet)
    n, r, d = b.shape
    s = member.shape[1]
    gain = (a[:, None, :] - b).transpose(1, 0, 2)  # (R, n, D)
    weight = (member[None, :, :, None] * gain[:, :, None, :]).reshape(r, n, s * d)
    base = np.einsum("is,ird->rsd", member, b).reshape(r, s * d)
    expected = q.T @ member  # (R, S)
    eligible = np.repeat(expected >= MIN_EXPECTED / 2, d, axis=1)
    return _Design(starts, member, weight, base, eligible)


def _statistic(design: _Design, y: np.ndarray, run: int) -> np.ndarray:
    """Log ratio per start and shift at weekly run ``run`` for outcome rows ``y`` (N, n)."""
    out = design.base[run] + y @ design.weight[run]
    return np.where(design.eligible[run], out, -np.inf)


def null_maxima(design: _Design, p: np.ndarray, share: np.ndarray) -> np.ndarray:
    """The statistic (largest over starts and shifts) on ``SIMULATIONS`` outcome sets under H0."""
    rng = np.random.default_rng(SEED)
    q = p * share
    out = np.empty(SIMULATIONS)
    for chunk in np.array_split(np.arange(SIMULATIONS), max(1, SIMULATIONS * len(p) // 2_000_000)):
        y = (rng.random((len(chunk), len(p))) < q[None, :]).astype(np.float64)
        out[chunk] = _statistic(design, y, 0).max(axis=1)
    return out


def simulated_threshold(design: _Design, p: np.ndarray, share: np.ndarray) -> float:
    """The ``1 - ALPHA`` quantile of ``null_maxima`` (0 when no start has enough expected)."""
    if not design.eligible[0].any():
        return 0.0
    return max(float(np.quantile(null_maxima(design, p, share), 1 - ALPHA)), 0.0)


def run_outcome_test(frame: pd.DataFrame) -> OutcomeTest:
    """Run the sequential test on the monitored trials of ``frame`` (see module docstring)."""
    keep = frame["monitored"].to_numpy(dtype=bool)
    order = np.argsort(frame["cohort"].to_numpy()[keep], kind="mergesort")
    data = frame[keep].iloc[order]
    if data.empty:
        return OutcomeTest(0.0, 0.0, False, None, "fewer", 0.0, 0, 1.0, False)
    p = np.clip(data["p"].to_numpy(dtype=np.float64), 1e-9, 1 - 1e-9)
    q, y = data["q"].to_numpy(dtype=np.float64), data["y"].to_numpy()
    share = np.clip(q / p, 0.0, 1.0)
    when = data["cohort"].to_numpy()
    starts = data["cohort"].drop_duplicates().to_list()[-MAX_STARTS:]
    design = _design(p, share[:, None], when, starts)
    threshold = simulated_threshold(design, p, share)
    stat = _statistic(design, y[None, :].astype(np.float64), 0)[0]
    if not np.isfinite(stat).any():  # nothing expected yet: the counts so far, no test
        realised = int(y.sum())
        return OutcomeTest(
            0.0, threshold, False, pd.Timestamp(starts[0]), "fewer", float(q.sum()), realised,
            poisson_binomial_p(q, realised, fewer=True), bool(q.sum() >= MIN_EXPECTED),
        )  # fmt: skip
    best = int(np.argmax(stat))
    log_lr = float(stat[best])
    since = starts[best // len(DELTAS)]
    fewer = DELTAS[best % len(DELTAS)] < 0
    m = when >= np.datetime64(since)
    expected, realised = float(q[m].sum()), int(y[m].sum())
    return OutcomeTest(
        log_lr=max(log_lr, 0.0),
        threshold=threshold,
        alarm=bool(log_lr >= threshold and log_lr > 0),
        since=pd.Timestamp(since),
        direction="fewer" if fewer else "more",
        expected=expected,
        realised=realised,
        p_value=poisson_binomial_p(q[m], realised, fewer=fewer),
        enough=bool(q.sum() >= MIN_EXPECTED),
    )
