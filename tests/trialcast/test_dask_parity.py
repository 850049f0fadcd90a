"""One recipe on one machine and on Dask: the same exclusions, verdict and features.

Two generated companies unlike the demo (renamed vocabulary, three-week trials
decided over 45 days): one whose export carries a hindsight outcome event
('Plan Activated', stamped for converters only: no outcome word in its name, so
only the leak scan's statistics can catch it), one whose outcomes ignore
behaviour. ``trialcast train`` and the Dask feature + training jobs must exclude
the same events and features, give the same verdict and the same model inputs,
and both register their models in MLflow; each path goes through the recipe.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from company_factory import SHAPES, make_company, renamed
from mlflow import MlflowClient

from features.demo import variants
from training.recipe import RECIPE_CALLS
from training.train import RecordTarget, build_training_sets, train_models
from trialcast.dask_jobs import run_features_dask, run_train_dask

distributed = pytest.importorskip("distributed")

pytestmark = pytest.mark.slow  # a LocalCluster, two companies, four LightGBM fits

LEAK = "Plan Activated"
CASES = {
    "leaking": lambda demo: variants.hindsight_event(demo, LEAK, seed=3),
    # Outcome permutation 3: its verdict is decided by the data, not by LightGBM's bagging
    # seed ("no lift found" under seeds 0-3 on one machine). Permutation 2 is a chance
    # draw whose labels happen to track company size (within-snapshot AUC 0.56): on one
    # machine its verdict flips with the bagging seed (no lift beyond timing, promoted,
    # no lift found), and a Dask booster (other row order, so other bags) is one more
    # draw, so no path can promise another path's verdict on it (docs/benchmarks.md).
    "no-signal": lambda demo: variants.no_signal(demo, seed=3),
}


@pytest.fixture(scope="module")
def client():
    # one worker: partition placement (and so the Dask booster) is the same on every run
    cluster = distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None
    )
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


@pytest.mark.parametrize("case", ["leaking", "no-signal"])
def test_one_machine_and_dask_give_the_same_judgement(client, tmp_path: Path, case: str) -> None:
    company = make_company(
        tmp_path / "data", n_accounts=1800, seed=21, transform=CASES[case], **SHAPES["long"]
    )
    config = company.config
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    dask_uri = f"sqlite:///{tmp_path / 'mlflow_dask.db'}"  # judged fresh too: no champion
    before = dict(RECIPE_CALLS)

    local = train_models(
        config,
        company.tables,
        kinds=("conversion",),
        target=RecordTarget(tracking_uri=uri, project_dir=tmp_path),
    ).models["conversion"]
    sets = build_training_sets(config, company.tables, kinds=("conversion",))

    address = client.scheduler.address
    feats = run_features_dask(config, tmp_path / "features", scheduler=address, n_partitions=3)
    dask = run_train_dask(
        config,
        tmp_path / "features",
        tmp_path / "models",
        scheduler=address,
        kinds=("conversion",),
        record=RecordTarget(tracking_uri=dask_uri, project_dir=tmp_path),
    )
    assert RECIPE_CALLS["train"] == before.get("train", 0) + 1
    assert RECIPE_CALLS["dask"] == before.get("dask", 0) + 1

    # the same spec choices: leak scan, exclusions, event types, levels
    spec_local, spec_dask = sets.spec, feats.spec
    assert spec_local is not None
    assert spec_dask.excluded_events == spec_local.excluded_events
    assert spec_dask.excluded_attributes == spec_local.excluded_attributes
    assert spec_dask.top_event_types == spec_local.top_event_types
    assert spec_dask.categorical_levels == spec_local.categorical_levels
    if case == "leaking":
        assert renamed(LEAK) in spec_local.excluded_events
        assert all(renamed(LEAK).removeprefix("ev_") not in f for f in local.model.features)

    # the same guards, verdict and model inputs
    assert dask.exclusions["conversion"] == list(local.leakage.excluded)
    assert dask.features["conversion"] == list(local.model.features)
    assert local.gate is not None
    if case == "leaking":
        assert dask.verdicts["conversion"] == local.gate.text == "promoted"
    else:
        # Both refuse, for want of lift. Since trials in their window's last week are
        # training rows, timing alone beats the base rate here by a gain whose interval's
        # lower bound sits near 0 (0.0043 on a Dask run): "no lift found" and "no lift
        # beyond timing" are then one refusal on either side of that bound, and a Dask
        # booster (other bags) may land on the other side (docs/benchmarks.md, session 11).
        no_lift = {"no lift found", "no lift beyond timing"}
        assert local.gate.text in no_lift, local.gate.text
        assert dask.verdicts["conversion"] in no_lift, dask.refused.get("conversion")

    # equal features: the Dask training rows are the one-machine rows
    got = pd.read_parquet(tmp_path / "features" / "trial_training.parquet")
    want = sets.conversion
    assert want is not None
    keys = ["account_id", "snapshot"]
    cols = [*keys, "label", *local.model.features]
    pd.testing.assert_frame_equal(
        got[cols].sort_values(keys).reset_index(drop=True),
        want[cols].sort_values(keys).reset_index(drop=True),
        check_exact=True,
    )

    # both are logged and registered, each with its verdict
    mlflow = MlflowClient(tracking_uri=dask_uri, registry_uri=dask_uri)
    version = mlflow.get_model_version(
        config.registry.conversion_model, dask.versions["conversion"]
    )
    assert version.tags["trialcast.engine"] == "dask"
    assert version.tags["verdict_text"] == dask.verdicts["conversion"]
