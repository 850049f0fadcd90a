"""The MLflow store can be PostgreSQL: a full train -> register -> load round trip on a fresh database."""

import uuid

import mlflow
import numpy as np
import psycopg
import pytest
from mlflow import MlflowClient

from features.config import load_demo_config
from training.registry import CHAMPION, load_registered_model, promote
from training.train import RecordTarget, TrainingSets, train_models

pytestmark = pytest.mark.postgres

ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture
def postgres_uri():
    name = f"trialcast_mlflow_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_postgres_backed_tracking_round_trip(postgres_uri, synthetic_frame, tmp_path):
    config = load_demo_config()
    frame, _ = synthetic_frame(3000, seed=5, snapshots=("d1", "end"))
    result = train_models(
        config,
        TrainingSets(conversion=frame, churn=None),
        kinds=("conversion",),
        target=RecordTarget(tracking_uri=postgres_uri, project_dir=tmp_path),
    )
    outcome = result.models["conversion"]
    assert result.tracking_uri == postgres_uri
    assert (tmp_path / "models" / "artifacts").is_dir()  # artifacts next to the project

    client = MlflowClient(tracking_uri=postgres_uri, registry_uri=postgres_uri)
    run = client.get_run(outcome.run_id)
    assert run.data.metrics["model.all.roc_auc"] > 0.7
    assert run.data.tags["verdict"] == "promoted"
    champion = client.get_model_version_by_alias(outcome.registered_name, CHAMPION)
    assert str(champion.version) == outcome.version == "1"

    loaded = load_registered_model(config, "conversion", tracking_uri=postgres_uri)
    np.testing.assert_allclose(loaded.predict_proba(frame), outcome.model.predict_proba(frame))
    mlflow.set_tracking_uri(postgres_uri)
    try:
        pyfunc = mlflow.pyfunc.load_model(f"models:/{outcome.registered_name}@{CHAMPION}")
        X = frame[outcome.model.features].assign(firmo_plan=frame["firmo_plan"].astype(str))
        p = np.asarray(pyfunc.predict(X), dtype=float).ravel()
    finally:
        mlflow.set_tracking_uri(None)
    np.testing.assert_allclose(p, outcome.model.predict_proba(frame), atol=1e-12)
    assert promote(config, "conversion", tracking_uri=postgres_uri).reason.endswith(
        "already champion"
    )
