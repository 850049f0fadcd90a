"""End to end on demo data: train both models into a temporary MLflow store, load them back."""

import json
from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient

from features.build import FeatureBuilder
from features.config import load_demo_config
from features.snapshots import build_trial_training_set
from training.recipe import RecipeOptions
from training.registry import CHALLENGER, CHAMPION, load_registered_model, promote
from training.train import RecordTarget, train_models

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(demo_small, tmp_path_factory):
    root = tmp_path_factory.mktemp("mlflow")
    config = load_demo_config()
    uri = f"sqlite:///{root / 'mlflow.db'}"
    builder = FeatureBuilder.from_tables(demo_small.tables, config)
    result = train_models(
        config,
        builder,
        options=RecipeOptions(truth=demo_small.truth),
        target=RecordTarget(tracking_uri=uri),
    )
    return config, uri, builder, result


def test_both_models_trained_logged_and_registered(trained, tmp_path):
    config, uri, _, result = trained
    assert set(result.models) == {"conversion", "churn"} and result.refused == {}
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    for kind, outcome in result.models.items():
        run = client.get_run(outcome.run_id)
        metrics, params, tags = run.data.metrics, run.data.params, run.data.tags
        for key in ("model.all.roc_auc", "model.all.log_loss", "model.all.ece",
                    "logistic.all.roc_auc", "base_rate.all.log_loss", "ceiling.all.roc_auc",
                    "model.all.lift_top10", "model.all.capture_top30", "platt_a"):  # fmt: skip
            assert key in metrics, key
        if kind == "conversion":
            assert {"model.d1.roc_auc", "model.end.ece", "persona.all.roc_auc"} <= set(metrics)
        assert metrics["model.all.roc_auc"] > 0.65
        assert "beats_base_rate" not in tags  # the verdict is the only judgement
        assert tags["verdict"] == "promoted" and tags["config_hash"] == config.config_hash()
        assert tags["git_commit"]
        assert len(params["data_sha256"]) == 64 and int(params["data_rows"]) > 0
        artifacts = {a.path for a in client.list_artifacts(outcome.run_id)}
        assert {"data_fingerprint.json", "features.json", "metrics.csv", "plots"} <= artifacts
        plots = {a.path for a in client.list_artifacts(outcome.run_id, "plots")}
        assert plots == {
            f"plots/{p}.png" for p in ("reliability", "roc_pr", "lift", "shap_summary")
        }
        local = client.download_artifacts(outcome.run_id, "features.json", str(tmp_path))
        features = json.loads(Path(local).read_text())["features"]
        assert features == outcome.model.features
        # registry: version 1 is challenger and (first, beats base rate) champion
        name = outcome.registered_name
        assert str(client.get_model_version_by_alias(name, CHALLENGER).version) == outcome.version
        assert str(client.get_model_version_by_alias(name, CHAMPION).version) == outcome.version
        assert outcome.promotion is not None and outcome.promotion.promoted


def test_pyfunc_returns_the_models_probabilities(trained):
    config, uri, builder, result = trained
    outcome = result.models["conversion"]
    frame = build_trial_training_set(builder).head(300)
    mlflow.set_tracking_uri(uri)
    try:
        pyfunc = mlflow.pyfunc.load_model(f"models:/{outcome.registered_name}@{CHAMPION}")
        # the signature's input: model columns, categoricals as text
        X = frame[outcome.model.features].copy()
        for col in outcome.model.categories:
            X[col] = X[col].astype(object).where(X[col].notna(), None)
        p = np.asarray(pyfunc.predict(X), dtype=float).ravel()
    finally:
        mlflow.set_tracking_uri(None)
    assert ((p >= 0) & (p <= 1)).all()
    np.testing.assert_allclose(p, outcome.model.predict_proba(frame), atol=1e-12)
    loaded = load_registered_model(config, "conversion", tracking_uri=uri)
    np.testing.assert_allclose(loaded.predict_proba(frame), p, atol=1e-12)
    contrib = loaded.contributions(frame)
    np.testing.assert_allclose(contrib.logit(), loaded.logit(frame), atol=1e-9)


def test_retraining_makes_a_challenger_and_promotion_moves_the_champion(trained):
    config, uri, builder, _ = trained
    again = train_models(
        config, builder, kinds=("conversion",), target=RecordTarget(tracking_uri=uri)
    )
    outcome = again.models["conversion"]
    name = outcome.registered_name
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    assert outcome.version == "2" and outcome.promotion is None  # a champion existed
    assert str(client.get_model_version_by_alias(name, CHAMPION).version) == "1"
    assert str(client.get_model_version_by_alias(name, CHALLENGER).version) == "2"
    # same data and seed: the challenger is compared with the champion on the same holdout
    assert outcome.beats_champion is False
    assert "champion.all.log_loss" in client.get_run(outcome.run_id).data.metrics
    refused = promote(config, "conversion", tracking_uri=uri)
    assert not refused.promoted and "did not beat champion" in refused.reason
    forced = promote(config, "conversion", tracking_uri=uri, force=True)
    assert forced.promoted and forced.previous == "1"
    assert str(client.get_model_version_by_alias(name, CHAMPION).version) == "2"


@pytest.mark.parametrize("verdict", ["no lift found", "probable leak", "flat model", None])
def test_only_a_promoted_verdict_becomes_champion_even_with_force(trained, verdict, tmp_path):
    """Fail closed: the verdict tag decides; --force never overrides it, a version
    without a verdict is unjudged and refused, and the refusal exits non-zero."""
    from typer.testing import CliRunner

    from features.config import demo_config_text
    from trialcast.cli import app

    config, uri, _, _ = trained
    config_file = tmp_path / "trialcast.toml"
    config_file.write_text(demo_config_text())
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    name = config.registry.churn_model
    if verdict is None:
        client.delete_model_version_tag(name, "1", "verdict")
    else:
        client.set_model_version_tag(name, "1", "verdict", verdict)
    try:
        result = promote(config, "churn", version=1, tracking_uri=uri, force=True)
        args = ["promote", "-c", str(config_file), "--kind", "churn", "--version", "1"]
        cli = CliRunner().invoke(app, [*args, "--force", "--tracking-uri", uri])
    finally:
        client.set_model_version_tag(name, "1", "verdict", "promoted")
    assert not result.promoted
    expected = "no verdict" if verdict is None else "--force"
    assert expected in result.reason, result.reason
    assert cli.exit_code == 2 and "version 1" in cli.output, cli.output
