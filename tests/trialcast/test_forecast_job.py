"""The forecast and backtest job functions write their files and return results."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.config import SegmentSpec, load_demo_config
from features.quarantine import InputError
from trialcast.forecast_job import ForecastInputs, ForecastOptions, run_backtest, run_forecast


def _open_scores(acc: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """Made-up chances for the trials open at ``as_of``, with the accounts' columns."""
    open_ = acc[
        (acc["trial_start"] < as_of) & (acc["trial_start"] >= as_of - pd.Timedelta(days=40))
    ]
    open_ = open_[open_["converted_at"].isna() | (open_["converted_at"] >= as_of)]
    rng = np.random.default_rng(0)
    scores = pd.DataFrame(
        {
            "account_id": open_["account_id"].astype(str).to_numpy(),
            "p_convert": rng.uniform(0.05, 0.6, len(open_)),
            "deal_value": open_["deal_value"].to_numpy(),
            "trial_days_elapsed": (
                (as_of - open_["trial_start"]) / pd.Timedelta(days=1)
            ).to_numpy(),
            "trial_length_days": (
                (open_["trial_end"] - open_["trial_start"]) / pd.Timedelta(days=1)
            ).to_numpy(),
            "plan": open_["plan"].to_numpy(),
            "company_size": open_["company_size"].to_numpy(),
            "persona": "Silent Successes",
        }
    )
    scores.loc[0, "deal_value"] = np.nan  # filled from the plan's won deals
    return scores


def test_run_forecast_writes_outputs(demo_small, tmp_path):
    config = load_demo_config()
    acc = demo_small.tables.accounts
    as_of = pd.Timestamp("2026-06-01")
    scores = _open_scores(acc, as_of)
    customers = pd.DataFrame(
        {"account_id": ["c1", "c2"], "mrr": [100.0, 250.0], "p_churn": [0.1, 0.3]}
    )
    history = acc[acc["trial_start"] < as_of].assign(
        converted_at=acc["converted_at"].where(acc["converted_at"] < as_of)
    )
    result = run_forecast(
        config,
        scores,
        tmp_path,
        as_of=as_of,
        inputs=ForecastInputs(history=history, customers=customers),
        options=ForecastOptions(model_version="t1"),
    )
    assert result.timing.n_converters > 100
    for path in result.outputs.values():
        assert path.exists() and path.stat().st_size > 0
    accounts = pd.read_parquet(result.outputs["accounts_parquet"])
    assert len(accounts) == len(scores) and accounts["deal_value"].notna().all()
    assert set(accounts["model_version"]) == {"t1"}
    total = result.breakdown.iloc[0]
    assert total["expected"] == pytest.approx(accounts["expected_value"].sum(), rel=1e-9)
    assert result.recurring is not None
    assert (result.recurring["dimension"] == "total").sum() == 2


def test_an_export_without_firmographics_is_forecast_without_their_breakdowns(demo_small, tmp_path):
    """The default breakdowns (size band, plan, industry...) follow the firmographics
    config; an export that lacks those columns gets the others, not a traceback. A
    breakdown the config names and the data lacks is a clear input error."""
    firmographic = ["company_size", "industry", "country", "plan"]
    acc = demo_small.tables.accounts.drop(columns=firmographic)
    as_of = pd.Timestamp("2026-06-01")
    scores = _open_scores(demo_small.tables.accounts, as_of).drop(columns=["plan", "company_size"])
    scores["deal_value"] = scores["deal_value"].fillna(1000.0)
    history = acc[acc["trial_start"] < as_of].assign(
        converted_at=acc["converted_at"].where(acc["converted_at"] < as_of)
    )
    inputs = ForecastInputs(history=history)
    config = load_demo_config()
    result = run_forecast(config, scores, tmp_path / "a", as_of=as_of, inputs=inputs,
                          options=ForecastOptions(model_version="t1", pictures=False))  # fmt: skip
    assert set(result.breakdown["dimension"]) == {"total", "month", "persona"}
    named = config.model_copy(
        update={"forecast": config.forecast.model_copy(
            update={"segments": [SegmentSpec(column="company_size", bands=[10, 50])]})}
    )  # fmt: skip
    with pytest.raises(InputError, match=r"'company_size'.*\[\[forecast\.segments\]\]"):
        run_forecast(named, scores, tmp_path / "b", as_of=as_of, inputs=inputs,
                     options=ForecastOptions(model_version="t1", pictures=False))  # fmt: skip


def test_run_backtest_writes_pictures(demo_small, tmp_path):
    config = load_demo_config()
    params = {**config.model.lightgbm, "learning_rate": 0.2}
    config = config.model_copy(
        update={
            "model": config.model.model_copy(update={"lightgbm": params, "num_boost_round": 60})
        }
    )
    out = run_backtest(config, demo_small.tables, tmp_path, cohorts=["2026-04"])
    assert out.result.cohorts["cohort"].tolist() == ["2026-04"]
    assert out.outputs["forecast_vs_actual_png"].read_bytes()[:4] == b"\x89PNG"
    assert out.outputs["curves_png"].read_bytes()[:4] == b"\x89PNG"
    assert out.outputs["pit_png"].read_bytes()[:4] == b"\x89PNG"
    phases = pd.read_csv(out.outputs["phases"])
    all_row = phases[phases["phase"] == "all"].iloc[0]
    assert all_row["expected"] == pytest.approx(out.result.cohorts["expected_conversions"].sum())
    open_trials = pd.read_csv(out.outputs["open_trials"])
    assert len(open_trials) == out.result.cohorts["n_open"].sum()
    assert open_trials["p"].sum() == pytest.approx(all_row["expected"])
    assert (open_trials["elapsed"] >= 0).all()  # days since trial start at the origin
    assert 0.0 <= out.result.cohorts["pit"].iloc[0] <= 1.0
    assert out.curves["share_converted"].between(0, 1).all()
