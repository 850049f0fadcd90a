"""Dask scores open trials at as_of through the shipping function: same numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from company_factory import make_company

from features.build import FeatureBuilder
from features.demo.latent import DemoConversionLags
from serving.batch import predict_open_trials
from trialcast.backtest import fit_cohort_model
from trialcast.dask_jobs import run_open_trials_dask


@pytest.mark.parametrize(
    ("trial_days", "window_days", "seed"), [(10, 20, 21), (30, 14, 22)], ids=["10d", "30d"]
)
def test_dask_open_trials_equal_the_shipping_path(tmp_path, trial_days, window_days, seed):
    company = make_company(
        tmp_path / "data",
        n_accounts=700,
        seed=seed,
        trial_days=trial_days,
        window_days=window_days,
        lags=DemoConversionLags(in_trial_share=0.3, a_after=1.2, b_after=2.0),
    )
    builder = FeatureBuilder.from_tables(company.tables, company.config)
    model, _valid, _rows = fit_cohort_model(builder, company.config, company.tables.export_time())
    model.save(tmp_path / "model")
    as_of = company.tables.export_time().normalize() - pd.Timedelta(days=3)
    result = run_open_trials_dask(
        company.config, tmp_path / "model", tmp_path / "scored", n_workers=2, as_of=as_of
    )
    got = pd.read_parquet(result["path"]).set_index("account_id").sort_index()
    local = predict_open_trials(builder, model, as_of)
    want = pd.Series(local.p_convert, index=local.features.index.astype(str)).sort_index()
    assert result["rows"] == len(want) > 0 and result["closed"] == len(local.closed) > 0
    assert got.index.tolist() == want.index.tolist()
    np.testing.assert_allclose(got["p_convert"].to_numpy(), want.to_numpy(), atol=1e-12)
    assert (got["as_of"] == as_of).all() and got["past_end"].any()
