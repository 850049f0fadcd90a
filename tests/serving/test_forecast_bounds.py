"""Honest ranges: the stated bound holds the quadrature error; deal values are estimates."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit, logit

from serving.forecast.deal import DealValueError, estimate_deal_values
from serving.forecast.distribution import compute_mixture_distribution


@pytest.mark.parametrize(("n", "sd", "seed"), [(3000, 0.8, 0), (400, 0.4, 1)])
def test_mixture_quantiles_within_stated_bound_of_monte_carlo(n, sd, seed):
    rng = np.random.default_rng(seed)
    p = rng.beta(1.0, 8.0, n)
    v = rng.lognormal(7.5, 0.6, n)
    dist = compute_mixture_distribution(p, v, sd)
    bound = dist.error_bound((0.1, 0.5, 0.9))
    draws = 8_000
    z = rng.normal(0.0, sd, draws)
    base = logit(p)
    sums = np.array([(rng.random(n) < expit(base + zi)) @ v for zi in z])
    for q in (0.1, 0.5, 0.9):
        mc = np.quantile(sums, q)
        # Monte Carlo's own error: 4 standard errors of a quantile estimate.
        spread = (np.quantile(sums, q + 0.02) - np.quantile(sums, q - 0.02)) / 0.04
        mc_se = np.sqrt(q * (1 - q) / draws) * spread
        assert abs(dist.quantile(q) - mc) <= bound + 4 * mc_se, (q, dist.quantile(q), mc)
        lo, hi = dist.quantile_bounds(q)
        assert lo <= dist.quantile(q) <= hi
    assert dist.mean == pytest.approx(sums.mean(), rel=0.02)


def test_value_spread_widens_the_range_but_keeps_the_mean():
    rng = np.random.default_rng(3)
    p = rng.uniform(0.05, 0.4, 500)
    v = rng.lognormal(8, 0.5, 500)
    known = compute_mixture_distribution(p, v, 0.0)
    noisy = compute_mixture_distribution(p, v, 0.0, value_var=(0.5 * v) ** 2)
    assert noisy.mean == pytest.approx(known.mean)
    assert noisy.quantile(0.9) - noisy.quantile(0.1) > known.quantile(0.9) - known.quantile(0.1)


def _accounts(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    true = rng.lognormal(9, 0.5, n)
    start = pd.Timestamp("2026-01-01") + pd.to_timedelta(rng.uniform(0, 150, n), unit="D")
    won = rng.random(n) < 0.4
    return pd.DataFrame(
        {
            "account_id": [f"a{i}" for i in range(n)],
            "converted_at": pd.Series(start + pd.Timedelta(days=20)).where(won),
            "deal_value": np.where(won, true, np.nan),
            "quote": true * 1.2 * np.exp(0.3 * rng.standard_normal(n)),
            "plan": rng.choice(["a", "b"], n),
            "true": true,
        }
    )


def test_deal_estimates_use_only_deals_won_before_as_of():
    acc = _accounts(2000, 0)
    as_of = pd.Timestamp("2026-04-01")
    open_ids = acc.loc[acc["converted_at"].isna(), "account_id"]
    est = estimate_deal_values(acc, open_ids, as_of)
    later = acc.copy()
    late = later["converted_at"] >= as_of
    later.loc[late, "deal_value"] *= 10  # deals won after as_of must not move anything
    pd.testing.assert_frame_equal(est, estimate_deal_values(later, open_ids, as_of))
    assert (est["deal_value_source"] == "quote").all()
    truth = acc.set_index("account_id").loc[open_ids, "true"]
    # The optimistic quotes (x1.2) are corrected on average.
    assert est["deal_value"].sum() / truth.sum() == pytest.approx(1.0, abs=0.08)
    no_quote = acc.drop(columns="quote")
    by_group = estimate_deal_values(no_quote, open_ids, as_of)
    assert (by_group["deal_value_source"] == "group").all()
    assert (by_group["deal_value_log_sd"] > 0).all()


def test_no_won_deal_and_no_quote_is_a_clear_error():
    acc = _accounts(50, 1).drop(columns="quote")
    with pytest.raises(DealValueError, match="no deal was won before"):
        estimate_deal_values(acc, acc["account_id"], pd.Timestamp("2025-01-01"))
