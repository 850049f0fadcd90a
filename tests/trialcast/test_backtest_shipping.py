"""The backtest measures the path that ships: it calls ``serving.batch.predict_open_trials``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from factories import fast_demo_config

import serving.batch as batch
import trialcast.backtest as backtest

COHORT, ORIGIN = "2026-03", pd.Timestamp("2026-04-01")


@pytest.fixture(scope="module")
def config():
    return fast_demo_config(150)


def test_backtest_calls_the_shipping_scoring_function(demo_small, config, monkeypatch):
    # The very object, not a copy of its logic.
    assert backtest.predict_open_trials is batch.predict_open_trials
    calls = []
    shipping = batch.predict_open_trials

    def recording(builder, model, as_of):
        out = shipping(builder, model, as_of)
        calls.append((builder, model, pd.Timestamp(as_of), out))
        return out

    monkeypatch.setattr(backtest, "predict_open_trials", recording)
    row = backtest.evaluate_cohort(demo_small.tables, config, COHORT, ORIGIN)
    assert len(calls) == 1
    builder, model, as_of, _out = calls[0]
    assert as_of == ORIGIN
    # Scoring again with the shipping function gives the backtest's numbers exactly.
    again = shipping(builder, model, ORIGIN)
    acc = builder.tables.accounts
    cohort_ids = set(
        acc.loc[acc["trial_start"].dt.to_period("M").astype(str) == COHORT, "account_id"].astype(
            str
        )
    )
    keep = np.asarray(again.features.index.astype(str).isin(list(cohort_ids)))
    assert row["n_open"] == int(keep.sum()) > 0
    assert row["expected_conversions"] == pytest.approx(float(again.p_convert[keep].sum()))
    assert row["expected_past_end"] == pytest.approx(
        float(again.p_convert[keep & again.past_end].sum())
    )
    assert row["n_past_end"] > 0 and row["expected_closed"] == 0.0
    # The per-phase table is built from the same shipping scores.
    phases = row["_phases"]
    assert phases["p"].sum() == pytest.approx(row["expected_conversions"])
    assert (phases["phase"] == "past end").sum() == row["n_past_end"]
    assert phases["won"].sum() == row["actual_conversions"]
    # Count and value errors are reported apart.
    assert np.isfinite(row["count_error_pct"]) and np.isfinite(
        row["value_per_conversion_error_pct"]
    )


def test_backtest_hides_deal_values_not_won_by_the_origin(demo_small):
    cut = backtest.truncate_tables(demo_small.tables, ORIGIN)
    acc = cut.accounts
    assert acc.loc[acc["converted_at"].isna(), "deal_value"].isna().all()
    assert acc.loc[acc["converted_at"].notna(), "deal_value"].notna().all()
