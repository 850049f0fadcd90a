"""The scheduled retrain job: promotion gate, idempotency, locking, crash safety.

Real LightGBM, a real MLflow SQLite store in tmp_path; the concurrency and crash
tests run the job in separate processes (the crash one kills itself with SIGKILL
between registering the challenger and moving the champion alias).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

from features.config import CompanyConfig, demo_config_text, load_config
from features.demo.generator import generate_demo_data, write_demo_data
from features.loaders import load_tables
from features.tables import Tables
from training.registry import CHALLENGER, CHAMPION
from training.retrain import DECISION_TAG, FINGERPRINT_TAG, RetrainOptions, run_retrain
from training.train import RecordTarget, TrainingSets, build_training_sets, train_models

pytestmark = pytest.mark.slow
KINDS = ("conversion",)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory) -> Path:
    """1,500 demo accounts written as Parquet with the demo config (for subprocesses)."""
    folder = tmp_path_factory.mktemp("demo")
    write_demo_data(generate_demo_data(1500, seed=3), folder)
    (folder / "trialcast.toml").write_text(demo_config_text())
    return folder


@pytest.fixture(scope="module")
def loaded(demo_dir) -> tuple[CompanyConfig, Tables]:
    config = load_config(demo_dir / "trialcast.toml")
    return config, load_tables(config).tables


def with_model(config: CompanyConfig, **model: object) -> CompanyConfig:
    return config.model_copy(update={"model": config.model.model_copy(update=model)})


def store(tmp_path: Path) -> tuple[str, MlflowClient]:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    return uri, MlflowClient(tracking_uri=uri, registry_uri=uri)


def alias(client: MlflowClient, config: CompanyConfig, name: str) -> str:
    return str(client.get_model_version_by_alias(config.registry.conversion_model, name).version)


def weak_champion(config: CompanyConfig, tables: Tables, uri: str, project: Path) -> None:
    """Register a deliberately weak first champion: trained without any product usage."""
    sets = build_training_sets(config, tables, kinds=KINDS)
    assert sets.conversion is not None
    usage = ("activation_", "engagement_", "count_")
    frame = sets.conversion[[c for c in sets.conversion.columns if not c.startswith(usage)]]
    result = train_models(
        config,
        TrainingSets(conversion=frame, churn=None, spec=sets.spec),
        kinds=KINDS,
        target=RecordTarget(tracking_uri=uri, project_dir=project),
    )
    assert result.models["conversion"].promotion.promoted  # beats the base rate, barely


def retrain(config, tables, uri, project):
    return run_retrain(
        config,
        tables,
        kinds=KINDS,
        options=RetrainOptions(tracking_uri=uri, project_dir=project),
    )


def test_first_run_promotes_then_the_same_data_is_left_alone(loaded, tmp_path):
    config, tables = loaded
    uri, client = store(tmp_path)
    first = retrain(config, tables, uri, tmp_path)
    assert first.status == "promoted" and first.kinds["conversion"].champion_after == "1"
    assert "first champion" in first.kinds["conversion"].reason
    version = client.get_model_version(config.registry.conversion_model, "1")
    assert version.tags[FINGERPRINT_TAG] == first.fingerprint
    assert version.tags[DECISION_TAG] == "promoted"

    second = retrain(config, tables, uri, tmp_path)
    assert second.status == "unchanged" and second.run_id is None
    assert "nothing to do" in second.kinds["conversion"].reason
    assert len(client.search_model_versions(f"name='{config.registry.conversion_model}'")) == 1
    assert second.fingerprint == first.fingerprint
    decisions = sorted((tmp_path / "models" / "retrain_decisions").glob("2*.json"))
    assert [json.loads(p.read_text())["status"] for p in decisions] == ["promoted", "unchanged"]
    latest = json.loads((tmp_path / "models" / "retrain_decisions" / "latest.json").read_text())
    assert latest["retrain_id"] == second.retrain_id

    # A worse challenger (a config that barely lets the model learn) never replaces it.
    crippled = with_model(
        config, num_boost_round=2, lightgbm={**config.model.lightgbm, "learning_rate": 0.005}
    )
    third = retrain(crippled, tables, uri, tmp_path)
    kd = third.kinds["conversion"]
    assert third.status == "kept" and kd.action == "kept"
    assert kd.challenger_version == "2" and kd.champion_after == "1"
    assert alias(client, config, CHAMPION) == "1" and alias(client, config, CHALLENGER) == "2"
    assert kd.champion_log_loss is not None and kd.challenger_log_loss > kd.champion_log_loss
    tags = client.get_model_version(config.registry.conversion_model, "2").tags
    assert tags["beats_champion"] == "false" and tags[DECISION_TAG] == "kept"
    # ...and the same data and config are not retrained again just because it lost.
    fourth = retrain(crippled, tables, uri, tmp_path)
    assert fourth.status == "unchanged" and "already trained and judged" in fourth.message


def test_better_challenger_replaces_a_weak_champion(loaded, tmp_path):
    config, tables = loaded
    uri, client = store(tmp_path)
    weak_champion(config, tables, uri, tmp_path)
    decision = retrain(config, tables, uri, tmp_path)
    kd = decision.kinds["conversion"]
    assert decision.status == "promoted" and kd.action == "promoted"
    assert (kd.champion_before, kd.champion_after, kd.challenger_version) == ("1", "2", "2")
    assert kd.log_loss_gain > 0 and kd.challenger_roc_auc > kd.champion_roc_auc
    assert kd.holdout_rows > 100 and kd.holdout_positives > 10
    assert alias(client, config, CHAMPION) == "2"
    run = client.get_run(decision.run_id)
    assert run.data.tags["retrain.status"] == "promoted"
    assert run.data.tags["conversion.action"] == "promoted"
    assert run.data.metrics["conversion.promoted"] == 1.0
    assert run.data.metrics["conversion.log_loss_gain"] == pytest.approx(kd.log_loss_gain)
    saved = json.loads(decision.decision_path.read_text())
    assert saved["kinds"]["conversion"]["champion_after"] == "2"


def test_champion_kept_when_the_gain_is_below_the_configured_rule(loaded, tmp_path):
    config, tables = loaded
    uri, client = store(tmp_path)
    weak_champion(config, tables, uri, tmp_path)
    demanding = with_model(config, promote_min_logloss_gain=1.0)
    decision = retrain(demanding, tables, uri, tmp_path)
    kd = decision.kinds["conversion"]
    assert decision.status == "kept" and kd.action == "kept"
    assert 0 < kd.log_loss_gain < 1.0 and "rule >= 1" in kd.reason
    assert alias(client, config, CHAMPION) == "1"


WORKER = textwrap.dedent(
    """
    import json, os, signal, sys, time
    from pathlib import Path
    from features.config import load_config
    from features.loaders import load_tables
    from training.retrain import RetrainOptions, run_retrain

    data_dir, uri, project, mode = sys.argv[1:5]
    project = Path(project)
    config = load_config(Path(data_dir) / "trialcast.toml")

    def on_stage(stage):
        if mode == "hold" and stage == "locked":
            (project / "held").touch()
            deadline = time.time() + 120
            while not (project / "release").exists() and time.time() < deadline:
                time.sleep(0.05)
        if mode == "kill" and stage == "promoting":
            os.kill(os.getpid(), signal.SIGKILL)

    options = RetrainOptions(
        tracking_uri=uri, project_dir=project,
        wait_seconds=120 if mode == "wait" else 0, on_stage=on_stage,
    )
    decision = run_retrain(
        config, lambda: load_tables(config).tables, kinds=("conversion",), options=options,
    )
    print("DECISION " + json.dumps(decision.to_dict(), default=str))
    """
)


def spawn(tmp_path: Path, demo_dir: Path, uri: str, mode: str) -> subprocess.Popen:
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, str(script), str(demo_dir), uri, str(tmp_path), mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )


def result_of(proc: subprocess.Popen) -> dict:
    out, errors = proc.communicate(timeout=240)
    assert proc.returncode == 0, errors[-3000:]
    line = [x for x in out.splitlines() if x.startswith("DECISION ")][-1]
    return json.loads(line.removeprefix("DECISION "))


def wait_for(path: Path, proc: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.time() + seconds
    while not path.exists():
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.time() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def test_two_jobs_at_once_train_once(loaded, demo_dir, tmp_path):
    config, tables = loaded
    uri, client = store(tmp_path)
    holder = spawn(tmp_path, demo_dir, uri, "hold")  # takes the lock, then waits
    wait_for(tmp_path / "held", holder)
    busy = retrain(config, tables, uri, tmp_path)  # another process, no waiting
    assert busy.status == "busy" and "another retrain is running" in busy.message
    assert f"pid {holder.pid}" in busy.message and busy.decision_path is None
    waiter = spawn(tmp_path, demo_dir, uri, "wait")  # waits for the lock
    time.sleep(1.0)
    (tmp_path / "release").touch()
    first, second = result_of(holder), result_of(waiter)
    assert first["status"] == "promoted"
    assert second["status"] == "unchanged"  # it waited, then found nothing new to train
    versions = client.search_model_versions(f"name='{config.registry.conversion_model}'")
    assert len(versions) == 1 and alias(client, config, CHAMPION) == "1"


def test_a_job_killed_before_promotion_leaves_the_champion(loaded, demo_dir, tmp_path):
    config, tables = loaded
    uri, client = store(tmp_path)
    weak_champion(config, tables, uri, tmp_path)
    proc = spawn(tmp_path, demo_dir, uri, "kill")
    proc.communicate(timeout=240)
    assert proc.returncode == -signal.SIGKILL
    name = config.registry.conversion_model
    assert alias(client, config, CHAMPION) == "1"  # untouched
    assert alias(client, config, CHALLENGER) == "2"  # registered before the crash
    tags = client.get_model_version(name, "2").tags
    assert tags["beats_champion"] == "true" and DECISION_TAG not in tags
    # The kernel dropped the dead job's lock; the next run retrains and decides.
    again = retrain(config, tables, uri, tmp_path)
    assert again.status == "promoted", again.message
    assert again.kinds["conversion"].champion_before == "1"
    assert alias(client, config, CHAMPION) == again.kinds["conversion"].challenger_version == "3"
