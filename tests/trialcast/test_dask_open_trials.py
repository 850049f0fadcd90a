"""Dask scores open trials at as_of through the shipping function: same numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from company_factory import make_company
from factories import save_as_promoted

from features.build import FeatureBuilder
from features.demo.latent import DemoConversionLags
from features.snapshots import build_churn_training_set
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
    save_as_promoted(model, tmp_path / "model")
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


@pytest.mark.parametrize(("trial_days", "seed"), [(14, 31), (30, 32)], ids=["14d", "30d"])
def test_dask_churn_scores_paying_customers_at_as_of(tmp_path, trial_days, seed):
    """`trialcast dask score --config` with a churn model scores the accounts paying at
    as_of on their features at as_of (the one-machine path), not their trial-end rows."""
    from serving.batch import predict_paying_customers
    from trialcast.dask_jobs import run_customers_dask

    company = make_company(
        tmp_path / "data",
        n_accounts=900,
        seed=seed,
        trial_days=trial_days,
        window_days=20,
        lags=DemoConversionLags(in_trial_share=0.3, a_after=1.2, b_after=2.0),
    )
    builder = FeatureBuilder.from_tables(company.tables, company.config)
    origin = company.tables.export_time()
    # A scoring-parity test: any churn model will do. This small company has too few
    # churners for the recipe's guards and purged split, so the model is fitted directly.
    from training.model import FitContext, Rounds, fit_model
    from training.recipe import model_features
    from training.split import build_time_split

    frame = build_churn_training_set(builder, export_time=origin)
    train, valid, _ = build_time_split(
        frame, "churn", valid_fraction=0.2, test_fraction=0.1
    ).frames(frame)
    model = fit_model(
        train,
        valid,
        model_features(frame, "churn"),
        dict(company.config.model.lightgbm),
        ctx=FitContext("churn", builder.spec.to_json(), Rounds(num_boost_round=100)),
    )
    save_as_promoted(model, tmp_path / "churn")
    as_of = origin.normalize() - pd.Timedelta(days=5)
    result = run_customers_dask(
        company.config, tmp_path / "churn", tmp_path / "scored", n_workers=2, as_of=as_of
    )
    got = pd.read_parquet(result["path"]).set_index("account_id").sort_index()
    want = predict_paying_customers(builder, model, as_of).set_index("account_id").sort_index()
    assert result["rows"] == len(want) > 20
    assert got.index.tolist() == want.index.tolist()
    np.testing.assert_allclose(got["p_churn"].to_numpy(), want["p_churn"].to_numpy(), atol=1e-12)
    assert (got["as_of"] == as_of).all()
    # the command picks the churn path from the saved model's kind
    from typer.testing import CliRunner

    from trialcast.cli import app

    args = ["dask", "score", "--model-dir", str(tmp_path / "churn"), "--out"]
    args += [str(tmp_path / "cli"), "-c", str(company.root / "trialcast.toml")]
    ran = CliRunner().invoke(app, [*args, "--as-of", str(as_of), "--workers", "1"])
    assert ran.exit_code == 0, ran.output
    assert f"Scored {len(want):,} paying customers for churn" in ran.output
    cli = pd.read_parquet(tmp_path / "cli").set_index("account_id").sort_index()
    np.testing.assert_allclose(cli["p_churn"].to_numpy(), want["p_churn"].to_numpy(), atol=1e-12)
    with pytest.raises(ValueError, match="churn model"):
        run_open_trials_dask(company.config, tmp_path / "churn", tmp_path / "x", n_workers=1)
