"""Forecast runs are kept by as_of; forecast vs actual once the outcomes land."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.config import load_demo_config
from trialcast.forecast_job import ForecastInputs, ForecastOptions, run_forecast


def _scores(acc: pd.DataFrame, as_of: pd.Timestamp, seed: int) -> pd.DataFrame:
    open_ = acc[(acc["trial_start"] < as_of) & (acc["trial_end"] + pd.Timedelta(days=30) > as_of)]
    open_ = open_[open_["converted_at"].isna() | (open_["converted_at"] >= as_of)]
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "account_id": open_["account_id"].astype(str).to_numpy(),
            "as_of": as_of,
            "p_convert": rng.uniform(0.05, 0.4, len(open_)),
            "deal_value": rng.uniform(1_000, 5_000, len(open_)),
            "deal_value_log_sd": 0.3,
            "trial_days_elapsed": (
                (as_of - open_["trial_start"]) / pd.Timedelta(days=1)
            ).to_numpy(),
            "trial_length_days": (
                (open_["trial_end"] - open_["trial_start"]) / pd.Timedelta(days=1)
            ).to_numpy(),
            "persona": "Silent Successes",
        }
    )


def test_runs_are_kept_by_as_of_and_compared_with_what_happened(demo_small, tmp_path):
    config = load_demo_config()
    acc = demo_small.tables.accounts
    export = pd.Timestamp("2026-11-01")
    origins = [pd.Timestamp("2026-03-01"), pd.Timestamp("2026-04-01"), pd.Timestamp("2026-10-20")]
    for i, as_of in enumerate([*origins, origins[0]]):  # the first one twice: idempotent
        result = run_forecast(
            config,
            _scores(acc, as_of, i),
            tmp_path,
            as_of=as_of,
            inputs=ForecastInputs(history=acc, export_time=export),
            options=ForecastOptions(model_version=f"m{i}", pictures=i == 3),
        )
    assert result.recurring is None and result.recurring_reason
    runs = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert runs == ["2026-03-01T000000", "2026-04-01T000000", "2026-10-20T000000"]
    past = pd.read_csv(tmp_path / "forecast_history.csv", parse_dates=["as_of"])
    assert past["as_of"].tolist() == origins
    assert past["model_version"].tolist() == ["m3", "m1", "m2"]  # the rerun replaced m0
    assert past["complete"].tolist() == [True, True, False]
    # The actual of a run is what its open trials really brought in after as_of.
    first = _scores(acc, origins[1], 1)
    rows = acc.set_index(acc["account_id"].astype(str)).loc[first["account_id"]]
    won = (rows["converted_at"] >= origins[1]) & (
        rows["converted_at"] < rows["trial_end"] + pd.Timedelta(days=30)
    )
    assert past["actual_count"].iloc[1] == int(won.sum()) > 0
    assert past["actual"].iloc[1] == np.float64(rows.loc[won, "deal_value"].sum())
    assert (tmp_path / "forecast_history.png").read_bytes()[:4] == b"\x89PNG"
