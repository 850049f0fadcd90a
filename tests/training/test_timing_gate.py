"""The gate's timing-aware baseline and flat models, on generated companies unlike the demo.

A company whose outcomes are shuffled across accounts, each keeping a realistic
lag (conversions from before trial end to weeks after), has no behavioural
signal but a real calendar: late snapshots convert less. A model can beat one
pooled base rate with that alone; the gate must see it ("no lift beyond timing"
or "no lift found") and promote nothing, while the same companies with their
real outcomes are still promoted. A model that gives every account the same
chance is named a flat model, with no AUC presented, and never promoted.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from company_factory import SHAPES, make_company
from mlflow import MlflowClient

from features.demo import variants
from training.gate import Verdict, judge, snapshot_base_rates
from training.registry import CHAMPION, version_by_alias
from training.split import split_training_frame
from training.train import RecordTarget, build_training_sets, train_models

NOT_PROMOTED = {Verdict.NO_LIFT, Verdict.NO_LIFT_BEYOND_TIMING}


def _train(company, tmp_path: Path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = train_models(
        company.config,
        company.tables,
        kinds=("conversion",),
        target=RecordTarget(tracking_uri=uri, project_dir=tmp_path),
    )
    outcome = result.models["conversion"]
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    return outcome, version_by_alias(client, outcome.registered_name, CHAMPION)


@pytest.mark.slow
@pytest.mark.parametrize("shape", list(SHAPES))
def test_shuffled_outcomes_with_real_lags_get_no_lift_and_no_champion(tmp_path, shape):
    company = make_company(
        tmp_path / "data",
        n_accounts=3000,
        seed=11,
        transform=lambda demo: variants.shuffled_outcomes(demo, seed=3),
        **SHAPES[shape],
    )
    outcome, champion = _train(company, tmp_path)
    gate = outcome.gate
    assert gate is not None and gate.gain_timing is not None
    assert gate.verdict in NOT_PROMOTED, gate.message("conversion")
    assert champion is None
    if gate.gain_base.low > 0:  # beat the pooled rate: then only by timing, and said so
        assert gate.verdict is Verdict.NO_LIFT_BEYOND_TIMING
        assert "no lift beyond timing" in gate.message("conversion").lower()


@pytest.mark.slow
@pytest.mark.parametrize("shape", list(SHAPES))
def test_real_signal_company_is_still_promoted(tmp_path, shape):
    company = make_company(tmp_path / "data", n_accounts=3000, seed=11, **SHAPES[shape])
    outcome, champion = _train(company, tmp_path)
    gate = outcome.gate
    assert gate is not None and gate.gain_timing is not None
    assert gate.verdict is Verdict.PROMOTED, gate.message("conversion")
    assert gate.gain_timing.low > 0
    assert champion is not None and str(champion.version) == outcome.version


@pytest.mark.parametrize("shape", list(SHAPES))
def test_flat_model_is_named_and_never_promoted(tmp_path, shape):
    """Every account gets the same probability: 'flat model', no AUC, no promotion,
    whatever the labels (judged on a generated company's real test part)."""
    company = make_company(tmp_path, n_accounts=900, seed=5, **SHAPES[shape])
    frame = build_training_sets(company.config, company.tables, kinds=("conversion",)).conversion
    assert frame is not None
    split = split_training_frame(frame, "conversion", valid_fraction=0.15, test_fraction=0.15)
    train, _, test = split.frames(frame)
    rate = float(train["label"].mean())
    p = np.full(len(test), rate) + np.linspace(0, 1e-6, len(test))  # Platt slope ~ 0
    gate = judge(
        company.config,
        test,
        p,
        train_rate=rate,
        p_timing=snapshot_base_rates(train, test),
    )
    assert gate.verdict is Verdict.FLAT and not gate.promotable
    assert gate.text == f"flat model: every account gets {rate:.1%}, no ranking"
    message = gate.message("conversion")
    assert f"gives every account {rate:.1%}" in message
    assert "ROC AUC not meaningful (flat model)" in message
    assert gate.tags()["test_auc"] == "flat"


@pytest.mark.parametrize("shape", list(SHAPES))
def test_timing_baseline_is_each_snapshots_training_rate(tmp_path, shape):
    company = make_company(tmp_path, n_accounts=600, seed=8, **SHAPES[shape])
    frame = build_training_sets(company.config, company.tables, kinds=("conversion",)).conversion
    assert frame is not None
    train = frame.sample(frac=0.5, random_state=0)
    test = frame.drop(train.index)
    p = snapshot_base_rates(train, test)
    assert p is not None and len(p) == len(test)
    # a snapshot seen in training with many rows gets (nearly) its training rate
    counts = train["snapshot"].value_counts()
    big = str(counts.index[0])
    rate = float(train.loc[train["snapshot"] == big, "label"].mean())
    got = p[(test["snapshot"] == big).to_numpy()]
    assert len(got) and np.allclose(got, got[0]) and abs(got[0] - rate) < 0.02
    assert snapshot_base_rates(train.assign(snapshot="x"), test) is None


def test_gain_interval_does_not_depend_on_row_order() -> None:
    """One machine and Dask bring the same test rows back in different orders: the
    bootstrap must resample the same accounts, so the interval (and the verdict) is
    the same for the same model."""
    from training.gate import bootstrap_gain

    rng = np.random.default_rng(4)
    n = 3000
    groups = np.array([f"acc_{i:05d}" for i in rng.integers(0, 400, n)])
    y = rng.binomial(1, 0.25, n).astype(float)
    p_model = np.clip(0.25 + rng.normal(0, 0.05, n), 0.01, 0.99)
    p_ref = np.full(n, 0.25)
    first = bootstrap_gain(y, p_model, p_ref, groups, resamples=500, level=0.9)
    order = rng.permutation(n)
    shuffled = bootstrap_gain(
        y[order], p_model[order], p_ref[order], groups[order], resamples=500, level=0.9
    )
    assert shuffled.estimate == pytest.approx(first.estimate, abs=1e-12)
    assert shuffled.low == pytest.approx(first.low, abs=1e-12)
    assert shuffled.high == pytest.approx(first.high, abs=1e-12)
