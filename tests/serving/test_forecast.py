"""Forecast math: exact quantiles against brute force, exact expectations, tidy frames."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from serving.forecast.distribution import compute_mixture_distribution, compute_sum_distribution
from serving.forecast.revenue import (
    build_account_forecast,
    compute_size_band,
    forecast_new_revenue,
    forecast_recurring_revenue,
    prepare_open_trials,
)
from serving.forecast.timing import (
    ConversionTiming,
    build_month_weights,
    compute_open_probability,
    compute_tau,
    fit_conversion_timing,
)

LEVELS = (0.1, 0.5, 0.9)


def brute_force_quantiles(p: np.ndarray, v: np.ndarray) -> dict[float, float]:
    """Lower quantiles over all 2^n outcomes (independent of the library code)."""
    outcomes = []
    for bits in itertools.product((0, 1), repeat=len(p)):
        b = np.array(bits)
        prob = float(np.prod(np.where(b == 1, p, 1 - p)))
        outcomes.append((float(b @ v), prob))
    outcomes.sort(key=lambda t: t[0])
    out, cum = {}, 0.0
    it = iter(outcomes)
    value, prob = next(it)
    cum = prob
    for a in LEVELS:
        while cum < a - 1e-12:
            value, prob = next(it)
            cum += prob
        out[a] = value
    return out


@pytest.mark.parametrize("seed", range(8))
def test_exact_quantiles_match_brute_force(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 13))
    p = rng.random(n)
    v = np.round(rng.lognormal(8, 1.2, n), 2)
    dist = compute_sum_distribution(p, v)
    truth = brute_force_quantiles(p, v)
    assert dist.method == "exact"
    for a in LEVELS:
        assert dist.quantile(a) == pytest.approx(truth[a], abs=1e-6)
        assert dist.error_bound(LEVELS) == 0.0


@pytest.mark.parametrize("seed", range(6))
def test_lattice_bounds_contain_brute_force(seed):
    rng = np.random.default_rng(100 + seed)
    n = 12
    p = rng.uniform(0.02, 0.98, n)
    v = rng.lognormal(7, 1.0, n)
    dist = compute_sum_distribution(p, v, method="lattice")
    truth = brute_force_quantiles(p, v)
    assert dist.method == "lattice" and dist.step > 0
    for a in LEVELS:
        lo, hi = dist.quantile_bounds(a)
        assert lo - 1e-6 <= truth[a] <= hi + 1e-6
        assert hi - lo <= 2 * dist.error_bound(LEVELS) + 1e-9
    # The stated accuracy: bound within the tolerance of the spread (5% of sd + level slack).
    assert dist.error_bound(LEVELS) <= 0.08 * dist.sd


def test_lattice_on_integer_values_is_exact():
    rng = np.random.default_rng(3)
    p = rng.random(12)
    v = rng.integers(1, 40, 12).astype(float) * 100.0
    dist = compute_sum_distribution(p, v, method="lattice")
    truth = brute_force_quantiles(p, v)
    assert dist.rounding_bound == 0.0
    for a in LEVELS:
        assert dist.quantile(a) == pytest.approx(truth[a], abs=1e-6)


def test_expectation_is_exact_and_mass_is_one():
    rng = np.random.default_rng(5)
    p = rng.beta(0.5, 1.5, 5000)
    v = rng.lognormal(8.5, 1.1, 5000)
    dist = compute_sum_distribution(p, v)
    assert dist.mean == pytest.approx(float(p @ v), rel=1e-12)
    assert dist.sd == pytest.approx(float(np.sqrt((p * (1 - p)) @ (v * v))), rel=1e-12)
    assert dist.probs.sum() == pytest.approx(1.0, abs=1e-8)
    assert dist.missing_mass < 1e-6
    # The lattice distribution's own mean matches the exact one closely.
    assert float(dist.values @ dist.probs) == pytest.approx(dist.mean, rel=1e-4)
    q10, q50, q90 = (dist.quantile(a) for a in LEVELS)
    assert q10 < q50 < q90


def test_certain_and_zero_terms():
    dist = compute_sum_distribution([1.0, 0.0, 1.0], [100.0, 50.0, 25.0])
    assert dist.method == "certain"
    assert dist.quantile(0.1) == dist.quantile(0.9) == 125.0
    with pytest.raises(ValueError):
        compute_sum_distribution([0.5], [-1.0])


def test_calibration_mixture_widens_but_keeps_mean_close():
    rng = np.random.default_rng(9)
    p = rng.uniform(0.1, 0.5, 400)
    v = rng.lognormal(8, 0.5, 400)
    plain = compute_sum_distribution(p, v)
    mixed = compute_mixture_distribution(p, v, 0.2)
    assert mixed.sd > plain.sd
    assert mixed.quantile(0.9) - mixed.quantile(0.1) > plain.quantile(0.9) - plain.quantile(0.1)
    assert mixed.mean == pytest.approx(plain.mean, rel=0.02)


def _history() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 400
    start = pd.Timestamp("2025-01-01") + pd.to_timedelta(rng.integers(0, 120, n), unit="D")
    conv_day = np.where(rng.random(n) < 0.4, rng.uniform(0, 14, n), rng.uniform(14, 44, n))
    converted = rng.random(n) < 0.3
    return pd.DataFrame(
        {
            "trial_start": start,
            "trial_end": start + pd.Timedelta(days=14),
            "converted_at": pd.Series(start + pd.to_timedelta(conv_day, unit="D")).where(converted),
        }
    )


def test_timing_is_learned_from_closed_cohorts_only():
    hist = _history()
    as_of = pd.Timestamp("2025-04-01")
    timing = fit_conversion_timing(hist, as_of=as_of, window_days=30)
    closed = hist["trial_end"] + pd.Timedelta(days=30) <= as_of
    assert timing.n_converters == int((hist["converted_at"].notna() & closed).sum())
    assert np.all((timing.tau >= 0) & (timing.tau < 2))
    np.testing.assert_allclose(
        compute_tau(np.array([7.0, 14.0, 29.0]), np.full(3, 14.0), 30), [0.5, 1.0, 1.5]
    )


def test_month_weights_sum_to_one_and_respect_open_day():
    timing = fit_conversion_timing(_history(), as_of=pd.Timestamp("2025-08-01"), window_days=30)
    as_of = pd.Timestamp("2025-08-20")
    starts = pd.Series(pd.to_datetime(["2025-08-01", "2025-08-15", "2025-07-10"]))
    w = build_month_weights(starts, np.array([14.0, 14.0, 14.0]), as_of, timing)
    sums = w.groupby("row")["weight"].sum()
    np.testing.assert_allclose(sums.to_numpy(), 1.0, atol=1e-9)
    assert (w["month"] >= pd.Timestamp("2025-08-01")).all()
    # The trial started 2025-07-10 can only convert until 2025-08-23 (day 44).
    assert set(w.loc[w["row"] == 2, "month"]) == {pd.Timestamp("2025-08-01")}


def test_open_probability_falls_as_days_pass():
    timing = ConversionTiming(tau=np.linspace(0.05, 1.95, 200), window_days=30)
    p = np.array([0.5, 0.5])
    out = compute_open_probability(
        p,
        timing,
        day_scored=np.array([14.0, 14.0]),
        day_now=np.array([14.0, 30.0]),
        trial_len=np.array([14.0, 14.0]),
    )
    assert out[0] == pytest.approx(0.5)
    assert out[1] < 0.5


def _scores(n: int = 300, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "account_id": [f"a{i}" for i in range(n)],
            "p_convert": rng.beta(1, 2, n),
            "deal_value": np.round(rng.lognormal(8, 1, n), 2),
            "trial_days_elapsed": rng.uniform(0, 40, n),
            "persona": rng.choice(["Golden Leads", "Fizzlers"], n),
            "plan": rng.choice(["starter", "team"], n),
            "company_size": rng.integers(1, 3000, n),
        }
    )


def test_forecast_breakdown_is_tidy_and_adds_up():
    scores = _scores()
    as_of = pd.Timestamp("2025-08-20")
    timing = fit_conversion_timing(_history(), as_of=as_of, window_days=30)
    out = forecast_new_revenue(scores, timing, as_of=as_of)
    expected_total = float((scores["p_convert"] * scores["deal_value"]).sum())
    total = out[out["dimension"] == "total"].iloc[0]
    assert total["expected"] == pytest.approx(expected_total, rel=1e-9)
    for dim in ("month", "persona", "plan", "company_size_band"):
        part = out[out["dimension"] == dim]
        assert part["expected"].sum() == pytest.approx(expected_total, rel=1e-9), dim
        assert (part["p10"] <= part["p50"]).all() and (part["p50"] <= part["p90"]).all()
    assert set(out.loc[out["dimension"] == "month", "segment"]) <= {"2025-08", "2025-09", "2025-10"}


def test_converted_rows_are_certain_revenue():
    scores = _scores(20).assign(converted_at=pd.NaT)
    scores.loc[0, "converted_at"] = pd.Timestamp("2025-08-05")
    as_of = pd.Timestamp("2025-08-20")
    timing = ConversionTiming(tau=np.array([]), window_days=30)
    out = forecast_new_revenue(scores, timing, as_of=as_of, segments=())
    total = out.iloc[0]
    assert total["certain"] == pytest.approx(scores.loc[0, "deal_value"])
    assert total["p10"] >= scores.loc[0, "deal_value"]
    accounts = build_account_forecast(prepare_open_trials(scores, as_of=as_of), timing, as_of=as_of)
    assert accounts.loc[0, "p_convert"] == 1.0
    assert accounts.loc[0, "expected_month"] == pd.Timestamp("2025-08-01")


def test_recurring_revenue_retained_plus_lost_is_mrr():
    rng = np.random.default_rng(2)
    customers = pd.DataFrame(
        {
            "account_id": [f"c{i}" for i in range(200)],
            "mrr": rng.uniform(50, 2000, 200).round(2),
            "p_churn": rng.uniform(0.01, 0.4, 200),
            "plan": rng.choice(["team", "business"], 200),
        }
    )
    out = forecast_recurring_revenue(customers, horizon_days=180, model_horizon_days=90)
    total = out[out["dimension"] == "total"].set_index("measure")
    assert total.loc["retained", "expected"] + total.loc["lost", "expected"] == pytest.approx(
        customers["mrr"].sum()
    )
    p180 = 1 - (1 - customers["p_churn"]) ** 2
    assert total.loc["lost", "expected"] == pytest.approx(float((p180 * customers["mrr"]).sum()))
    assert total.loc["lost", "p10"] <= total.loc["lost", "p90"]


def test_size_band():
    bands = compute_size_band(pd.Series([1, 10, 11, 5000, None]))
    assert bands.tolist() == ["1-10", "1-10", "11-50", "1000+", "unknown"]
