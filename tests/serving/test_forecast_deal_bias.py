"""Deal estimates are unbiased plan by plan, on companies that differ from the demo.

The quote line is fitted on past wins; a single line pooled over plans pulled every
quote towards the overall typical deal (small plans valued too high, big ones too
low), and without company size the big companies of a plan (bigger deals, lower
chance) came out too low once weighed by their chance to convert. The check compares the estimate with the generator's own expected deal value
(``deal_value_expected``: plan, size and quote known exactly), which carries no
outcome noise, so a few thousand accounts measure a bias of a few percent.
"""

from __future__ import annotations

import pandas as pd
import pytest

from features.demo.generator import DemoData, DemoQuotes, generate_demo_data
from features.demo.latent import DemoConversionLags
from features.demo.variants import event_mapping, rename_events
from serving.forecast.deal import estimate_deal_values
from trialcast.backtest import truncate_tables


def _fourteen_day_company() -> DemoData:
    """14-day trials, most conversions spread up to 30 days after the trial."""
    lags = DemoConversionLags(in_trial_share=0.2, a_after=1.3, b_after=1.6)
    return generate_demo_data(
        3_000, seed=11, trial_days=(14,), conversion_lags=lags, export_time="2026-06-01"
    )


def _renamed_company() -> DemoData:
    """Another vocabulary, 21-day trials, a 10-day window, pessimistic noisier quotes."""
    demo = generate_demo_data(
        3_000,
        seed=12,
        trial_days=(21,),
        conversion_window_days=10,
        quotes=DemoQuotes(bias=0.85, error_sd=0.4),
        export_time="2026-06-01",
    )
    return rename_events(demo, event_mapping(demo, prefix="ev_"))


@pytest.mark.parametrize("make", [_fourteen_day_company, _renamed_company])
def test_quote_estimates_are_unbiased_within_each_plan(make):
    demo = make()
    as_of = pd.Timestamp("2026-03-01")
    known = truncate_tables(demo.tables, as_of).accounts
    open_ids = known.loc[known["converted_at"].isna(), "account_id"].astype(str)
    est = estimate_deal_values(known, open_ids, as_of, size_column="company_size")
    truth = demo.truth.assign(account_id=demo.truth["account_id"].astype(str))
    truth = truth.set_index("account_id").loc[est.index]
    plan = known.set_index(known["account_id"].astype(str)).loc[est.index, "plan"]
    quoted = est["deal_value_source"] == "quote"
    assert quoted.sum() > 1_000
    # Revenue weighs each deal by its chance to convert: compare p-weighted sums.
    p = truth.loc[quoted, "p_convert"]
    frame = pd.DataFrame(
        {
            "plan": plan[quoted],
            "est": p * est.loc[quoted, "deal_value"],
            "true": p * truth.loc[quoted, "deal_value_expected"],
        }
    )
    sums = frame.groupby("plan")[["est", "true"]].sum()
    ratio = sums["est"] / sums["true"]
    assert set(ratio.index) == {"starter", "team", "business"}
    # Within 8% in every plan (one line pooled over plans: starter +15-24%, business -5-11%).
    assert ratio.between(0.92, 1.08).all(), ratio.round(3).to_dict()
