"""Rolling-origin backtest: point-in-time correct, and a planted future event changes nothing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from factories import fast_demo_config

from features.tables import Tables
from trialcast.backtest import list_cohorts, run_rolling_backtest, truncate_tables

COHORTS = ["2026-03", "2026-05"]
LAST_ORIGIN = pd.Timestamp("2026-06-01")


@pytest.fixture(scope="module")
def config():
    return fast_demo_config(200)


@pytest.fixture(scope="module")
def baseline(demo_small, config):
    return run_rolling_backtest(demo_small.tables, config, cohorts=COHORTS)


def _planted(tables: Tables, *, conversion: bool = False) -> Tables:
    """Future rows after the last origin: many events of a new type, a message and,
    with ``conversion``, a late conversion of a cohort trial."""
    acc = tables.accounts
    cohort = acc[acc["trial_start"].dt.to_period("M").astype(str) == "2026-05"]
    ids = cohort["account_id"].astype(str).head(40).tolist()
    moment = LAST_ORIGIN + pd.Timedelta(days=3)
    extra = pd.DataFrame(
        {
            "account_id": np.repeat(ids, 50),
            "event": "Planted Future Event",
            "timestamp": moment + pd.to_timedelta(np.arange(len(ids) * 50), unit="s"),
        }
    )
    events = tables.events.copy()
    for col in ("account_id", "event"):
        events[col] = events[col].astype(str)
    for col in events.columns.difference(extra.columns):
        extra[col] = None
    events = pd.concat([events, extra[events.columns]], ignore_index=True)
    events = events.sort_values("timestamp", kind="stable", ignore_index=True)
    comms = tables.communications
    if comms is not None:
        row = comms.iloc[[0]].copy()
        row["account_id"] = ids[0]
        row["timestamp"] = moment
        comms = pd.concat([comms.astype({"account_id": str}), row.astype({"account_id": str})])
    accounts = acc.copy()
    unconverted = accounts.index[
        accounts["account_id"].astype(str).isin(ids) & accounts["converted_at"].isna()
    ]
    if conversion:
        accounts.loc[unconverted[:1], "converted_at"] = moment
        # A won deal has its value (the demo only knows values of deals won by export).
        accounts.loc[unconverted[:1], "deal_value"] = 5_000.0
    return Tables(events=events, accounts=accounts, communications=comms)


def test_backtest_reports_each_cohort(baseline):
    cohorts = baseline.cohorts
    assert cohorts["cohort"].tolist() == COHORTS
    assert (cohorts["p10"] <= cohorts["forecast"]).all()
    assert (cohorts["forecast"] <= cohorts["p90"]).all()
    assert (cohorts["certain"] <= cohorts["p10"]).all()
    assert (cohorts["actual"] > 0).all()
    # The forecast is in the right range (3000-account demo: ~200 trials a cohort).
    assert cohorts["error_pct"].abs().max() < 35
    assert {"mape", "coverage", "mape_500", "coverage_500"} <= set(baseline.summary)


def test_planted_future_event_changes_nothing(demo_small, config, baseline):
    planted = _planted(demo_small.tables)
    assert len(planted.events) > len(demo_small.tables.events)
    again = run_rolling_backtest(planted, config, cohorts=COHORTS)
    pd.testing.assert_frame_equal(again.cohorts, baseline.cohorts)


def test_truncation_hides_the_future(demo_small):
    origin = pd.Timestamp("2026-03-01")
    cut = truncate_tables(demo_small.tables, origin)
    assert cut.events["timestamp"].max() < origin
    assert (cut.accounts["trial_start"] < origin).all()
    assert not (cut.accounts["converted_at"] >= origin).any()
    assert cut.accounts.loc[cut.accounts["converted_at"].isna(), "mrr"].isna().all()


def test_cohorts_are_listed_only_when_closed(demo_small):
    plan = list_cohorts(
        demo_small.tables.accounts, window_days=30, export_time=pd.Timestamp("2026-06-15")
    )
    months = [c for c, _ in plan]
    assert "2026-03" in months and "2026-05" not in months
    origin = dict(plan)["2026-03"]
    assert origin == pd.Timestamp("2026-04-01")


def test_weekly_cohorts_end_on_mondays_and_close_like_monthly_ones(demo_small):
    weeks = list_cohorts(
        demo_small.tables.accounts,
        window_days=30,
        export_time=pd.Timestamp("2026-06-15"),
        period="week",
    )
    months = list_cohorts(
        demo_small.tables.accounts, window_days=30, export_time=pd.Timestamp("2026-06-15")
    )
    assert len(weeks) >= 4 * len(months) - 4
    for label, origin in weeks:
        first, last = (pd.Timestamp(x) for x in label.split("/"))
        assert first.day_of_week == 0 and origin == last + pd.Timedelta(days=1)
        assert origin.day_of_week == 0


def test_planted_future_conversion_moves_only_the_actual(demo_small, config, baseline):
    again = run_rolling_backtest(
        _planted(demo_small.tables, conversion=True), config, cohorts=COHORTS
    )
    forecast_cols = ["n_trials", "n_open", "certain", "forecast", "p10", "p50", "p90", "logit_sd"]
    pd.testing.assert_frame_equal(again.cohorts[forecast_cols], baseline.cohorts[forecast_cols])
    assert again.cohorts["actual"].iloc[1] > baseline.cohorts["actual"].iloc[1]
