"""The oracle floor: the same cohort forecast from the truth, apart from the shipping path."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from company_factory import make_company

from features.demo.latent import DemoConversionLags
from serving.forecast.deal import value_variance
from serving.forecast.distribution import compute_mixture_distribution
from trialcast.backtest import evaluate_cohort, summarise_backtest
from trialcast.backtest_oracle import OracleTruth, OracleTruthError, expected_abs_deviation

COHORT, ORIGIN = "2026-01", pd.Timestamp("2026-02-01")


@pytest.fixture(scope="module")
def company(tmp_path_factory):
    """Renamed vocabulary, 14-day trials, conversions spread up to 30 days after the trial."""
    return make_company(
        tmp_path_factory.mktemp("oracle14"),
        n_accounts=2_500,
        seed=21,
        trial_days=14,
        window_days=30,
        lags=DemoConversionLags(in_trial_share=0.2, a_after=1.3, b_after=1.6),
    )


def test_oracle_sits_beside_the_unchanged_shipping_forecast(company):
    oracle = OracleTruth.read(company.root / "truth.parquet")
    plain = evaluate_cohort(company.tables, company.config, COHORT, ORIGIN)
    row = evaluate_cohort(company.tables, company.config, COHORT, ORIGIN, oracle=oracle)
    # The truth never reaches the shipping path: its numbers are the same without it.
    for key in ("forecast", "p10", "p90", "expected_conversions", "actual"):
        assert row[key] == pytest.approx(plain[key])
    assert not any(k.startswith("oracle_") for k in plain)
    # The oracle's expected conversions are the truth's, recomputed independently here.
    truth = company.demo.truth.set_index(company.demo.truth["account_id"].astype(str))
    acc = company.tables.accounts.set_index(company.tables.accounts["account_id"].astype(str))
    in_cohort = acc["trial_start"].dt.to_period("M").astype(str) == COHORT
    open_now = in_cohort & ~(acc["converted_at"] < ORIGIN).fillna(False)
    open_now &= acc["trial_end"] + pd.Timedelta(days=30) > ORIGIN
    ids = acc.index[open_now]
    days = ((ORIGIN - acc.loc[ids, "trial_start"]).dt.total_seconds() / 86_400).to_numpy()
    lags = DemoConversionLags(in_trial_share=0.2, a_after=1.3, b_after=1.6)
    s = lags.survival(days, np.full(len(ids), 14.0), 30.0)
    p = truth.loc[ids, "p_convert"].to_numpy()
    expected = float((p * s / (1 - p + p * s)).sum())
    assert row["oracle_expected_conversions"] == pytest.approx(expected, rel=1e-6)
    assert row["oracle_p10"] < row["oracle_forecast"] < row["oracle_p90"]
    assert np.isfinite(row["oracle_error_pct"])
    summary = summarise_backtest(pd.DataFrame([row]))
    assert summary["oracle_mape"] == pytest.approx(abs(row["oracle_error_pct"]))
    assert summary["oracle_coverage"] in (0.0, 100.0)
    assert (
        0 < summary["oracle_expected_mape"] == pytest.approx(row["oracle_expected_abs_error_pct"])
    )


def test_truth_without_expected_deal_values_is_a_clear_error(company, tmp_path):
    old = company.demo.truth.drop(columns=["deal_value_expected"])
    old.to_parquet(tmp_path / "truth.parquet")
    (tmp_path / "demo_meta.json").write_text((company.root / "demo_meta.json").read_text())
    with pytest.raises(OracleTruthError, match="deal_value_expected"):
        OracleTruth.read(tmp_path / "truth.parquet")
    with pytest.raises(OracleTruthError, match=r"demo_meta\.json"):
        OracleTruth.read(tmp_path / "missing" / "truth.parquet")


@pytest.mark.parametrize("value_sd", [0.0, 0.3])
def test_expected_abs_deviation_matches_monte_carlo(value_sd):
    rng = np.random.default_rng(4)
    p = rng.uniform(0.05, 0.5, 300)
    v = rng.lognormal(8.5, 0.8, 300)
    var = value_variance(v, np.full(300, value_sd))
    dist = compute_mixture_distribution(p, v, 0.0, value_var=var)
    draws = 20_000
    hit = rng.random((draws, 300)) < p
    vals = v * np.exp(value_sd * rng.standard_normal((draws, 300)) - value_sd**2 / 2)
    sums = (hit * vals).sum(axis=1)
    mc = np.abs(sums - sums.mean()).mean()
    assert expected_abs_deviation(dist) == pytest.approx(mc, rel=0.04)


def test_phase_table_and_honesty_scores_come_with_the_oracle(company):
    from rich.console import Console

    from trialcast.backtest_phases import phase_table
    from trialcast.backtest_report import (
        print_honesty,
        print_phase_table,
        print_segments,
        print_value_bands,
    )
    from trialcast.backtest_values import segment_table, value_band_table

    oracle = OracleTruth.read(company.root / "truth.parquet")
    row = evaluate_cohort(company.tables, company.config, COHORT, ORIGIN, oracle=oracle)
    phases = row.pop("_phases")
    # Expected, true-expected and actual conversions per phase add up to the cohort's.
    assert phases["p"].sum() == pytest.approx(row["expected_conversions"])
    assert phases["oracle"].sum() == pytest.approx(row["oracle_expected_conversions"])
    assert phases["won"].sum() == row["actual_conversions"]
    assert set(phases["length"]) == {14}
    table = phase_table(phases)
    total = table[table["phase"] == "all"].iloc[0]
    assert total["vs_oracle_pct"] == pytest.approx(row["count_vs_oracle_pct"])
    # By band of deal value: the revenue columns add up to the cohort's open revenue.
    bands = value_band_table(phases)
    everything = bands[bands["band"] == "all"].iloc[0]
    assert everything["expected_value"] == pytest.approx(row["expected_open_value"])
    assert everything["oracle"] == pytest.approx(row["oracle_expected_conversions"])
    # By forecast segment (size band, firmographics): each segment's values add up.
    segments = segment_table(phases)
    assert "company_size_band" in set(segments["segment"])
    for _, part in segments.groupby("segment"):
        assert part["trials"].sum() == len(phases)
        assert part["oracle"].sum() == pytest.approx(row["oracle_expected_conversions"])
    # Value error against the truth's expected deal values, beside the count error.
    assert row["oracle_expected_open_value"] > 0 and np.isfinite(row["value_vs_oracle_pct"])
    # PIT and standardised error of both forecasts.
    for prefix in ("", "oracle_"):
        assert 0.0 <= row[f"{prefix}pit"] <= 1.0 and np.isfinite(row[f"{prefix}z"])
    sd = (row["p90"] - row["p10"]) / (2 * 1.2815515655446004)
    assert row["z"] == pytest.approx((row["actual"] - row["forecast"]) / sd)
    summary = summarise_backtest(pd.DataFrame([row]))
    assert summary["rms_z"] == pytest.approx(abs(row["z"]))
    console = Console(record=True, width=160)
    print_phase_table(phases, console)
    print_honesty(summary, console)
    print_value_bands(phases, console)
    print_segments(phases, console)
    text = console.export_text()
    assert "past end" in text and "vs oracle" in text and "RMS of standardised errors" in text
    assert "revenue vs oracle" in text and "Open trials by segment" in text
