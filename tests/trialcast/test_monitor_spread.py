"""The estimate's re-spread at the scoring day (``trialcast.monitoring.spread``) on seeded data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from trialcast.monitoring.estimation import estimation_summary
from trialcast.monitoring.spread import (
    MIN_TRIALS,
    PRIOR_TRIALS,
    respread_for_estimate,
    spread_weight,
)


def spread_frame(seed: int, *, temperature: float, n_fit: int = 1500) -> pd.DataFrame:
    """Out-of-sample trials then 16 weekly monitored cohorts of 125, matured; the model's
    log-odds are the truth's times ``temperature`` (> 1: too spread, < 1: too narrow)."""
    rng = np.random.default_rng(seed)
    n = n_fit + 16 * 125
    true_logit = rng.normal(-1.6, 1.1, n)
    y = (rng.random(n) < 1 / (1 + np.exp(-true_logit))).astype(np.int8)
    p = 1 / (1 + np.exp(-(temperature * (true_logit + 1.6) - 1.6)))
    week = np.concatenate([np.full(n_fit, -1), np.repeat(np.arange(16), 125)])
    return pd.DataFrame(
        {
            "cohort": pd.Timestamp("2026-01-05") + pd.to_timedelta(7 * week, unit="D"),
            "p": p,
            "p_champion": p,
            "y": y,
            "matured": True,
            "out_of_sample": week < 0,
            "monitored": week >= 0,
        }
    )


@pytest.mark.parametrize("temperature", [1.5, 0.7])
def test_respread_removes_the_estimates_bias_from_a_mis_spread_model(temperature):
    # Invariant: the estimated AUC is right when the spread is right; a too spread model
    # over-estimates, a too narrow one under-estimates, and the out-of-sample fit moves
    # the estimate towards the truth in both cases.
    biased, fixed = [], []
    for seed in range(4):
        frame = respread_for_estimate(spread_frame(seed, temperature=temperature))
        fit = frame.attrs["estimate_calibration"]
        assert fit["trials"] == 1500
        assert fit["fitted_a"] == pytest.approx(1 / temperature, rel=0.25)
        weight = spread_weight(1500)
        assert fit["weight"] == pytest.approx(weight)
        assert fit["a"] == pytest.approx(1 + weight * (fit["fitted_a"] - 1))
        mon = frame[frame["monitored"]]
        fixed.append(estimation_summary(mon)["pooled_error"])
        biased.append(estimation_summary(mon.assign(p_estimate=mon["p"]))["pooled_error"])
    sign = 1 if temperature > 1 else -1
    assert sign * np.mean(biased) > 0.02
    # Taken part of the way: the bias shrinks, keeping its sign (no overshoot).
    weight = spread_weight(1500)
    assert 0 < sign * np.mean(fixed) < (1 - weight / 2) * sign * np.mean(biased)


def test_the_weight_grows_with_the_never_fitted_trials():
    # Invariant: a precision weight n / (n + n0): half at n0, towards 1 with more trials,
    # and the fit on more trials moves the estimate further.
    assert spread_weight(int(PRIOR_TRIALS)) == pytest.approx(0.5)
    weights = [spread_weight(n) for n in (300, 1200, 1800, 6000, 24000)]
    assert weights == sorted(weights) and 0 < weights[0] < 0.5 < weights[-1] < 1
    assert spread_weight(6000) == pytest.approx(0.8)
    small = respread_for_estimate(spread_frame(0, temperature=1.5, n_fit=600))
    large = respread_for_estimate(spread_frame(0, temperature=1.5, n_fit=6000))
    assert small.attrs["estimate_calibration"]["weight"] == pytest.approx(600 / 2100)
    assert large.attrs["estimate_calibration"]["weight"] == pytest.approx(0.8)


def test_respread_keeps_the_champions_probabilities_for_everything_else():
    frame = respread_for_estimate(spread_frame(0, temperature=1.5))
    assert (frame["p"] == frame["p_champion"]).all()  # served / outcome-test p unchanged
    assert not np.allclose(frame["p_estimate"], frame["p"])
    # The ranking is the champion's: the realised AUC does not move.
    assert (frame["p_estimate"].rank() == frame["p"].rank()).all()


def test_too_few_out_of_sample_trials_leave_the_estimate_on_the_champion():
    frame = respread_for_estimate(spread_frame(0, temperature=1.5, n_fit=MIN_TRIALS - 1))
    assert frame.attrs["estimate_calibration"] == {}
    assert (frame["p_estimate"] == frame["p"]).all()
    plain = respread_for_estimate(spread_frame(0, temperature=1.5).drop(columns="out_of_sample"))
    assert (plain["p_estimate"] == plain["p"]).all()
