"""A yes/no conversion flag places conversions at trial end; those dates are not seen
moments, so they must not move the export time ("now"), on the pandas loader and on
the Dask partitions alike. Two generated companies unlike the demo."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from company_factory import SHAPES, make_company

from features.config import load_config
from features.loaders import load_tables


@pytest.mark.parametrize("shape", ["short", "long"])
def test_flagged_conversions_do_not_move_now(tmp_path, shape):
    company = make_company(tmp_path, n_accounts=1200, seed=41, **SHAPES[shape])
    accounts = pd.read_parquet(tmp_path / "accounts.parquet")
    accounts["paid"] = np.where(accounts["converted_at"].notna(), "1", "0")
    accounts.drop(columns="converted_at").to_parquet(tmp_path / "accounts.parquet")
    text = (tmp_path / "trialcast.toml").read_text()
    (tmp_path / "trialcast.toml").write_text(
        text.replace("[trial]\n", '[trial]\nconversion_flag = "paid"\n')
    )
    config = load_config(tmp_path / "trialcast.toml")

    latest_event = company.tables.events["timestamp"].max()
    flagged_end = accounts.loc[accounts["paid"] == "1", "trial_end"]
    assert (flagged_end > latest_event).any()  # a flagged trial still running: the trap

    loaded = load_tables(config)
    assert loaded.tables.export_time() <= latest_event
    assert loaded.tables.export_time() == company.tables.export_time()
    converted = loaded.tables.accounts["converted_at"].notna()
    assert converted.sum() == (accounts["paid"] == "1").sum()
