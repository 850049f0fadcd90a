"""Open trials nothing can value: a true message, a configured default, or no revenue."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from serving.forecast.deal import DealValueError, estimate_deal_values


def _won_without_values(n: int, seed: int, win_share: float) -> pd.DataFrame:
    """An export whose won deals carry no deal_value (the CRM column was left out)."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2025-06-01") + pd.to_timedelta(rng.uniform(0, 200, n), unit="D")
    won = rng.random(n) < win_share
    return pd.DataFrame(
        {
            "account_id": [f"s{seed}_{i}" for i in range(n)],
            "converted_at": pd.Series(start + pd.Timedelta(days=18)).where(won),
            "deal_value": np.nan,
        }
    )


COMPANIES = [(600, 0, 0.25), (250, 1, 0.6)]


@pytest.mark.parametrize(("n", "seed", "share"), COMPANIES)
def test_message_counts_the_deals_that_were_won(n, seed, share):
    acc = _won_without_values(n, seed, share)
    as_of = pd.Timestamp("2026-01-10")
    wins = int((acc["converted_at"] < as_of).sum())
    assert wins > 20  # the old message claimed "no deal won before" here
    open_ids = acc.loc[acc["converted_at"].isna(), "account_id"]
    with pytest.raises(DealValueError, match=f"{wins:,} deal\\(s\\) were won before") as exc:
        estimate_deal_values(acc, open_ids, as_of)
    assert "default_deal_value" in str(exc.value)


@pytest.mark.parametrize(("n", "seed", "share"), COMPANIES)
def test_default_value_and_empty_values(n, seed, share):
    acc = _won_without_values(n, seed, share)
    as_of = pd.Timestamp("2026-01-10")
    open_ids = acc.loc[acc["converted_at"].isna(), "account_id"]
    valued = estimate_deal_values(acc, open_ids, as_of, default_value=900.0)
    assert (valued["deal_value"] == 900.0).all()
    assert (valued["deal_value_source"] == "default").all()
    assert (valued["deal_value_log_sd"] == 0).all()
    empty = estimate_deal_values(acc, open_ids, as_of, on_missing="empty")
    assert empty["deal_value"].isna().all() and (empty["deal_value_source"] == "none").all()
    assert "were won before" in empty.attrs["note"]


def test_default_only_fills_what_history_cannot_value():
    acc = _won_without_values(400, 2, 0.4)
    as_of = pd.Timestamp("2026-01-10")
    acc.loc[acc["converted_at"] < as_of, "deal_value"] = 5000.0
    open_ids = acc.loc[acc["converted_at"].isna(), "account_id"]
    est = estimate_deal_values(acc, open_ids, as_of, default_value=1.0)
    assert (est["deal_value"] == 5000.0).all() and (est["deal_value_source"] == "all").all()
    nothing_won = estimate_deal_values(acc, open_ids, pd.Timestamp("2025-06-02"), default_value=7.0)
    assert (nothing_won["deal_value"] == 7.0).all()
