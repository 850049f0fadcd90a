"""The outcome test's simulated threshold: false alarms at its level, sooner alarms than before.

Weekly runs are replayed on generated weekly cohorts: each
run sees the trials scored so far, their conversions landed so far (a trial's
conversion lands within three weeks of its start) and the model's ``q``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from trialcast.monitoring import outcomes
from trialcast.monitoring.outcomes import MAX_STARTS, run_outcome_test


def weekly_runs(seed: int, *, weeks: int, per_week: int, shift: float = 0.0, shift_from: int = 99):
    """(run, frame) for weekly runs 1..weeks; log-odds ``shift`` for cohorts >= ``shift_from``."""
    rng = np.random.default_rng(seed)
    week = np.repeat(np.arange(weeks), per_week)
    p = rng.beta(1.2, 3.5, len(week)).clip(0.01, 0.97)
    logit = np.log(p / (1 - p))
    p_true = np.where(week >= shift_from, 1 / (1 + np.exp(-(logit + shift))), p)
    converts, lands = rng.random(len(week)) < p_true, rng.random(len(week))
    cohort = pd.Timestamp("2026-01-05") + pd.to_timedelta(7 * week, unit="D")
    for run in range(1, weeks + 1):
        share = np.clip((run - week) / 3.0, 0.0, 1.0)
        m = share > 0
        yield (
            run,
            pd.DataFrame(
                {
                    "cohort": cohort[m],
                    "p": p[m],
                    "q": (p * share)[m],
                    "y": (converts & (lands < share))[m].astype(np.int8),
                    "matured": share[m] >= 1.0,
                    "monitored": True,
                }
            ),
        )


def union_bound_alarm(frame: pd.DataFrame) -> bool:
    """The previous test: mixture over +-0.6/1.2, Bonferroni over 12 starts, Ville at 5%."""
    data = frame.sort_values("cohort", kind="mergesort")
    p = data["p"].to_numpy()
    share = (data["q"] / data["p"]).to_numpy()
    when = data["cohort"].to_numpy()
    starts = data["cohort"].drop_duplicates().to_list()[-MAX_STARTS:]
    deltas = (-1.2, -0.6, 0.6, 1.2)
    design = outcomes._design(p, share[:, None], when, starts, deltas)
    y = data["y"].to_numpy()[None, :].astype(np.float64)
    ratio = outcomes._statistic(design, y, 0).reshape(len(starts), len(deltas))
    mixed = np.logaddexp.reduce(ratio, axis=1) - np.log(len(deltas))
    return bool(mixed.max() >= np.log(MAX_STARTS / 0.05))


def test_simulated_threshold_holds_its_level_on_fresh_null_outcomes():
    # Invariant: outcomes drawn from the model's own q (not the threshold's draws) exceed
    # the threshold at the rate ALPHA.
    _, frame = list(weekly_runs(0, weeks=8, per_week=125))[-1]
    data = frame.sort_values("cohort", kind="mergesort")
    p, q = data["p"].to_numpy(), data["q"].to_numpy()
    share = q / p
    starts = data["cohort"].drop_duplicates().to_list()
    design = outcomes._design(p, share[:, None], data["cohort"].to_numpy(), starts)
    threshold = outcomes.simulated_threshold(design, p, share)
    y = (np.random.default_rng(123).random((20_000, len(p))) < q).astype(np.float64)
    rate = float(np.mean(outcomes._statistic(design, y, 0).max(axis=1) >= threshold))
    assert 0.5 * outcomes.ALPHA <= rate <= 1.6 * outcomes.ALPHA, rate


def test_weekly_runs_under_no_change_rarely_alarm(monkeypatch):
    # 24 companies x 12 weekly runs with outcomes as the model says: at ALPHA = 0.25% a run,
    # about 0.7 alarming runs are expected; the benchmark's bar is 1 in 20 runs a company.
    monkeypatch.setattr(outcomes, "SIMULATIONS", 4000)  # (quicker; the level is the same)
    alarms = [
        sum(run_outcome_test(frame).alarm for _, frame in weekly_runs(s, weeks=12, per_week=80))
        for s in range(24)
    ]
    assert sum(alarms) <= 4 and max(alarms) <= 2, alarms


def test_a_price_change_alarms_sooner_than_with_the_union_bound(monkeypatch):
    monkeypatch.setattr(outcomes, "SIMULATIONS", 4000)
    new, old, off = [], [], []
    for seed in range(12):
        first_new = first_old = 99
        for run, frame in weekly_runs(seed, weeks=12, per_week=125, shift=-0.5, shift_from=4):
            test = run_outcome_test(frame)
            if run > 4 and first_new == 99 and test.alarm:
                first_new = run - 4
                assert test.direction == "fewer" and test.realised < test.expected
                off.append(abs(test.since - pd.Timestamp("2026-02-02")) / pd.Timedelta(weeks=1))
            if run > 4 and first_old == 99 and union_bound_alarm(frame):
                first_old = run - 4
        new.append(first_new)
        old.append(first_old)
    assert sum(new) < sum(old), (new, old)
    assert sum(n > o for n, o in zip(new, old, strict=True)) <= 1, (new, old)
    assert np.median(new) <= 4, new  # a median run 28 days after the change or sooner
    assert np.median(off) <= 1, off  # "since" names the change's week, give or take one
