"""The monitor's parts on small seeded data: the test, the estimate, drift, data checks."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from features.demo.generator import generate_demo_data
from features.demo.scenarios import apply_scenario
from training.metrics import roc_auc
from trialcast.monitoring.data_checks import check_accounts, check_event_types
from trialcast.monitoring.drift import PSI_SHIFTED, compute_drift, psi
from trialcast.monitoring.estimation import estimate_auc, estimation_summary
from trialcast.monitoring.outcomes import poisson_binomial_p, run_outcome_test
from trialcast.monitoring.verdict import Verdict, decide_verdict, input_alerts


def cohort_frame(seed: int, *, shift: float = 0.0, shift_from_week: int = 0) -> pd.DataFrame:
    """12 weekly cohorts of 150 trials; outcomes so far drawn from q (log-odds shifted later)."""
    rng = np.random.default_rng(seed)
    n = 12 * 150
    week = np.repeat(np.arange(12), 150)
    p = rng.beta(1.2, 3.5, n).clip(0.01, 0.97)
    share = np.clip((12 - week) / 4.0, 0.05, 1.0)  # newer cohorts have seen less of their outcome
    p_true = np.where(week >= shift_from_week, 1 / (1 + np.exp(-(np.log(p / (1 - p)) + shift))), p)
    return pd.DataFrame(
        {
            "cohort": pd.Timestamp("2026-01-05") + pd.to_timedelta(7 * week, unit="D"),
            "p": p,
            "q": p * share,
            "y": (rng.random(n) < p_true * share).astype(np.int8),
            "matured": share >= 1.0,
            "monitored": True,
        }
    )


def test_poisson_binomial_p_matches_brute_force():
    q = np.array([0.1, 0.5, 0.3, 0.8, 0.05])
    outcomes = np.array(list(itertools.product([0, 1], repeat=len(q))))
    prob = np.prod(np.where(outcomes == 1, q, 1 - q), axis=1)
    sums = outcomes.sum(axis=1)
    for k in range(len(q) + 1):
        assert poisson_binomial_p(q, k, fewer=True) == pytest.approx(prob[sums <= k].sum())
        assert poisson_binomial_p(q, k, fewer=False) == pytest.approx(prob[sums >= k].sum())


def test_outcome_test_quiet_when_calibrated():
    # Invariant: outcomes drawn from the model's own q ring the alarm rarely (alpha = 5%).
    alarms = sum(run_outcome_test(cohort_frame(seed)).alarm for seed in range(20))
    assert alarms <= 2


def test_outcome_test_rings_on_a_price_change_and_dates_it():
    test = run_outcome_test(cohort_frame(1, shift=-0.8, shift_from_week=6))
    assert test.alarm and test.direction == "fewer"
    assert abs(test.since - pd.Timestamp("2026-02-16")) <= pd.Timedelta(weeks=2)
    assert test.realised < test.expected and test.p_value < 0.01
    assert "conversions vs" in test.evidence()


def test_outcome_evidence_says_when_there_is_nothing_to_judge_yet():
    nothing = run_outcome_test(cohort_frame(2).iloc[:0])
    assert not nothing.alarm and nothing.since is None
    assert "no cohort since the model was trained" in nothing.evidence()
    few = run_outcome_test(cohort_frame(2).iloc[:20].assign(q=0.05))
    assert not few.enough and not few.alarm
    assert "needed to tell" in few.evidence() and "alarm at" not in few.evidence()


def test_estimated_auc_tracks_the_realised_one_when_calibrated():
    rng = np.random.default_rng(0)
    p = rng.beta(1.2, 3.5, 4000)
    y = rng.random(4000) < p
    est, low, high = estimate_auc(p)
    assert low < est < high
    assert abs(est - roc_auc(y, p)) < 0.02


def test_estimation_summary_sets_the_error_beside_its_sampling_noise():
    # 16 weekly cohorts of 125 calibrated trials: a weekly cohort's error is about its
    # sampling noise (~0.04); months and the pooled trials are judged more sharply.
    rng = np.random.default_rng(2)
    week = np.repeat(np.arange(16), 125)
    p = rng.beta(1.2, 3.5, len(week))
    frame = pd.DataFrame(
        {
            "cohort": pd.Timestamp("2026-01-05") + pd.to_timedelta(7 * week, unit="D"),
            "p": p,
            "y": (rng.random(len(week)) < p).astype(np.int8),
            "matured": week < 15,  # the last cohort is still open
        }
    )
    out = estimation_summary(frame)
    assert out["weekly_cohorts"] == 15 and out["pooled_trials"] == 15 * 125
    assert out["monthly_cohorts"] == 3  # January, February, March (April is still open)
    assert 0.02 < out["weekly_noise_mean_abs"] < 0.06
    assert out["weekly_mean_abs"] < 1.6 * out["weekly_noise_mean_abs"]
    assert out["monthly_noise_mean_abs"] < out["weekly_noise_mean_abs"]
    assert out["pooled_noise"] < out["monthly_noise_mean_abs"]
    assert abs(out["pooled_error"]) < 3 * out["pooled_noise"]
    assert estimation_summary(frame.iloc[:0]) == {}


def test_psi_is_small_for_the_same_population_and_large_for_a_moved_one():
    rng = np.random.default_rng(0)
    ref = pd.Series(rng.gamma(2.0, 3.0, 3000))
    assert psi(ref, pd.Series(rng.gamma(2.0, 3.0, 800))) < 0.05
    assert psi(ref, pd.Series(rng.gamma(2.0, 3.0, 800) * 1.8)) > PSI_SHIFTED
    cats = pd.Series(rng.choice(["a", "b", "c"], 3000))
    assert psi(cats, pd.Series(rng.choice(["a", "b", "c"], 800, p=[0.8, 0.1, 0.1]))) > PSI_SHIFTED


def test_drift_counts_only_features_the_model_uses():
    rng = np.random.default_rng(1)
    ref = pd.DataFrame({"used": rng.normal(0, 1, 2000), "unused": rng.normal(0, 1, 2000)})
    cur = pd.DataFrame({"used": rng.normal(0, 1, 500), "unused": rng.normal(2, 1, 500)})
    p_ref, p_cur = rng.beta(2, 5, 2000), rng.beta(2, 5, 500)
    report = compute_drift(
        ref, cur, {"used": 99.0, "unused": 1.0}, p_reference=p_ref, p_recent=p_cur
    )
    assert not report.shifted  # a big move in a feature the model ignores is harmless
    cur["used"] += 2.0
    moved = compute_drift(
        ref, cur, {"used": 99.0, "unused": 1.0}, p_reference=p_ref, p_recent=p_cur
    )
    assert moved.shifted and moved.material["feature"].tolist() == ["used"]


def test_near_copies_share_their_importance():
    """The booster splits gain among inputs that say the same thing; their shift is
    material when their gain together reaches the bar, not one by one."""
    rng = np.random.default_rng(2)
    base, other = rng.gamma(2.0, 3.0, 3000), rng.normal(0, 1, 3000)
    ref = pd.DataFrame(
        {
            "per_day": base,
            "per_usual_day": base * rng.uniform(0.95, 1.05, 3000),  # a near-copy
            "alone": other,
            "big": rng.normal(0, 1, 3000),
        }
    )
    shifted = rng.gamma(2.0, 3.0, 800) * 1.8
    cur = pd.DataFrame(
        {
            "per_day": shifted,
            "per_usual_day": shifted * rng.uniform(0.95, 1.05, 800),
            "alone": rng.normal(2.0, 1, 800),
            "big": rng.normal(0, 1, 800),
        }
    )
    gains = {"per_day": 3.0, "per_usual_day": 3.0, "alone": 3.0, "big": 91.0}
    p_ref, p_cur = rng.beta(2, 5, 3000), rng.beta(2, 5, 800)
    report = compute_drift(ref, cur, gains, p_reference=p_ref, p_recent=p_cur)
    table = report.features.set_index("feature")
    assert table.loc["per_day", "importance"] == pytest.approx(0.03)
    assert table.loc["per_day", "group_importance"] == pytest.approx(0.06)
    assert table.loc["alone", "group_importance"] == pytest.approx(0.03)
    assert table.loc["big", "group_importance"] == pytest.approx(0.91)
    assert sorted(report.material["feature"]) == ["per_day", "per_usual_day"]
    assert report.shifted
    # one by one, no input reaches the bar: the shared signal's move is not seen
    lone = compute_drift(
        ref[["per_day", "alone", "big"]],
        cur[["per_day", "alone", "big"]],
        {"per_day": 3.0, "alone": 3.0, "big": 91.0},
        p_reference=p_ref,
        p_recent=p_cur,
    )
    assert lone.material.empty and not lone.shifted
    alerts = input_alerts("conversion", report)
    assert any("6% with the inputs that move with it" in a.evidence for a in alerts)


@pytest.fixture(scope="module")
def small_demo():
    return generate_demo_data(1500, seed=5, start="2025-09-01", export_time="2026-02-01")


@pytest.mark.parametrize(
    "as_of", ["2026-01-12", "2026-01-17 00:00", "2026-01-18 03:00", "2026-01-19 08:00"]
)
def test_no_event_check_fires_on_ordinary_days(small_demo, as_of):
    # Nights and weekends are quiet, not broken: every weekday and hour compared like for like.
    moment = pd.Timestamp(as_of)
    ev = small_demo.tables.events
    alerts, _ = check_event_types(ev[ev["timestamp"] < moment], moment)
    alerts += check_accounts(small_demo.tables.accounts, ev[ev["timestamp"] < moment], moment)
    assert alerts == []


@pytest.mark.parametrize("event", ["Pipeline Run Succeeded", "Login"])
def test_a_stopped_event_type_is_named_with_its_date(small_demo, event):
    broken = apply_scenario(small_demo, "tracking", since="2026-01-10", event=event)
    moment = pd.Timestamp("2026-01-13")
    ev = broken.tables.events
    alerts, _ = check_event_types(ev[ev["timestamp"] < moment], moment)
    assert [a.subject for a in alerts] == [f"event {event!r}"]
    assert (
        alerts[0].since == "2026-01-10" and "stopped arriving on 2026-01-10" in alerts[0].evidence
    )


def test_scenarios_change_only_what_they_say_from_their_date(small_demo):
    since = pd.Timestamp("2025-12-01")
    acc = small_demo.tables.accounts
    after = (acc["trial_start"] >= since).to_numpy()
    priced = apply_scenario(small_demo, "pricing", since=since).tables.accounts
    before_conv = acc["converted_at"].notna().to_numpy()
    now_conv = priced["converted_at"].notna().to_numpy()
    assert (now_conv[~after] == before_conv[~after]).all()
    assert now_conv[after].sum() < 0.9 * before_conv[after].sum()
    onboarded = apply_scenario(small_demo, "onboarding", since=since).tables.accounts
    kept = set(onboarded["account_id"].astype(str))
    assert set(acc.loc[~after, "account_id"].astype(str)) <= kept
    assert len(kept) < len(acc)
    assert apply_scenario(small_demo, "none", since=since) is small_demo
    with pytest.raises(ValueError, match="unknown scenario"):
        apply_scenario(small_demo, "flood", since=since)


def test_verdict_order_and_exit_codes():
    from trialcast.monitoring.alerts import Alert, AlertKind

    data = Alert(AlertKind.DATA, "event 'x'", "2026-01-01", "stopped")
    outcome = Alert(AlertKind.OUTCOMES, "conversion model", "2026-01-01", "fewer")
    assert decide_verdict([outcome, data], enough_outcomes=True) is Verdict.DATA_BROKEN
    assert decide_verdict([outcome], enough_outcomes=True) is Verdict.OUTCOMES_SHIFTED
    assert decide_verdict([], enough_outcomes=False) is Verdict.TOO_EARLY
    assert Verdict.HEALTHY.exit_code == 0 and Verdict.TOO_EARLY.exit_code == 0
    assert Verdict.DATA_BROKEN.exit_code == 1
