"""A new SQLite store copied from the migrated empty template is a full MLflow store,
and a template that is not an empty store at the installed MLflow's head is never used."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric, Param
from mlflow.exceptions import MlflowException
from mlflow.store.db.utils import _get_latest_schema_revision

from training.store_template import (
    ENV_CACHE_DIR,
    empty_store_template,
    is_empty_store,
    seed_new_store,
    sqlite_file,
)
from training.tracking import get_or_create_experiment, use_tracking_uri

ROOT = Path(__file__).resolve().parents[2]
HEAD = _get_latest_schema_revision()


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv(ENV_CACHE_DIR, str(folder))
    return folder


def _template_path(cache: Path) -> Path:
    return cache / f"mlflow-{mlflow.__version__}-empty.db"


def _schema(path: Path) -> set[tuple[str, str, tuple[str, ...]]]:
    """Every table, index and trigger with its definition's lines, in sorted order (MLflow's
    migrations write a table's constraints in an order that differs between runs)."""
    with sqlite3.connect(path) as db:
        rows = db.execute(
            "SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"
        ).fetchall()
    return {
        (t, n, tuple(sorted(line.strip().rstrip(",") for line in (s or "").splitlines())))
        for t, n, s in rows
    }


def _revision(path: Path) -> list[tuple[str]]:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT version_num FROM alembic_version").fetchall()


def _record_and_register(client: MlflowClient, tmp_path: Path) -> tuple[str, str]:
    """A real run (params, metrics, an artifact) and a registered version with an alias."""
    experiment = get_or_create_experiment(client, "seeded", str(tmp_path / "artifacts"))
    run = client.create_run(experiment, run_name="r1")
    run_id = run.info.run_id
    client.log_batch(
        run_id, metrics=[Metric("auc", 0.8, 0, 0)], params=[Param("kind", "conversion")]
    )
    note = tmp_path / "note.txt"
    note.write_text("hello")
    client.log_artifact(run_id, str(note))
    client.set_terminated(run_id)
    client.create_registered_model("seeded-model")
    version = client.create_model_version(
        "seeded-model", f"{run.info.artifact_uri}/note.txt", run_id=run_id
    )
    client.set_registered_model_alias("seeded-model", "champion", version.version)
    return run_id, str(version.version)


def test_a_copied_store_records_runs_and_registers_models(cache, tmp_path):
    uri = f"sqlite:///{tmp_path}/company/models/mlflow.db"
    with use_tracking_uri(uri) as client:
        run_id, version = _record_and_register(client, tmp_path)
        assert client.get_experiment("0").name == "Default"  # MLflow's own, made on open
        assert client.get_run(run_id).data.metrics == {"auc": 0.8}
        assert client.get_run(run_id).data.params == {"kind": "conversion"}
        assert str(client.get_model_version_by_alias("seeded-model", "champion").version) == version
        assert [a.path for a in client.list_artifacts(run_id)] == ["note.txt"]
    assert is_empty_store(_template_path(cache), HEAD)  # built on this first use
    assert _revision(tmp_path / "company/models/mlflow.db") == [(HEAD,)]
    with use_tracking_uri(uri) as client:  # opened again as an existing store
        assert client.get_run(run_id).info.status == "FINISHED"


def test_a_copied_store_is_the_store_mlflow_makes(cache, tmp_path):
    seeded, own = tmp_path / "seeded.db", tmp_path / "own.db"
    assert seed_new_store(f"sqlite:///{seeded}")
    for path in (seeded, own):  # MLflow opens both (and migrates the second itself)
        MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    assert _schema(seeded) == _schema(own)
    assert _revision(seeded) == _revision(own) == [(HEAD,)]
    with sqlite3.connect(seeded) as a, sqlite3.connect(own) as b:
        query = "SELECT experiment_id, name, lifecycle_stage FROM experiments"
        assert a.execute(query).fetchall() == b.execute(query).fetchall()
        query = "SELECT * FROM workspaces"
        assert a.execute(query).fetchall() == b.execute(query).fetchall()


def test_the_next_new_store_is_a_copy_without_migrations(cache, tmp_path):
    assert seed_new_store(f"sqlite:///{tmp_path}/first.db")
    template = _template_path(cache)
    before = template.stat()
    assert seed_new_store(f"sqlite:///{tmp_path}/second.db")
    after = template.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert (tmp_path / "second.db").read_bytes() == template.read_bytes()


def _stale(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.execute("UPDATE alembic_version SET version_num = '0a8213491aaa'")


def _foreign(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.execute(
            "INSERT INTO experiments (experiment_id, name, artifact_location, lifecycle_stage, "
            "workspace) VALUES (7, 'someone else', '/elsewhere', 'active', 'default')"
        )


def _garbage(path: Path) -> None:
    path.write_bytes(b"not a database at all" * 100)


def _truncated(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


@pytest.mark.parametrize("spoil", [_stale, _foreign, _garbage, _truncated])
def test_a_stale_or_foreign_template_is_not_used(cache, tmp_path, spoil):
    template = empty_store_template()
    spoil(template)
    assert not is_empty_store(template, HEAD)
    uri = f"sqlite:///{tmp_path}/store.db"
    with use_tracking_uri(uri) as client:
        names = [e.name for e in client.search_experiments()]
        _record_and_register(client, tmp_path)
    assert names == ["Default"]  # nothing of the spoilt file
    assert _revision(tmp_path / "store.db") == [(HEAD,)]
    assert is_empty_store(template, HEAD)  # rebuilt


def test_an_existing_file_is_never_replaced(cache, tmp_path):
    empty = tmp_path / "empty.db"
    empty.touch()
    assert not seed_new_store(f"sqlite:///{empty}")
    assert empty.read_bytes() == b""
    used = tmp_path / "used.db"
    with use_tracking_uri(f"sqlite:///{used}") as client:
        run_id, _ = _record_and_register(client, tmp_path)
    before = used.read_bytes()
    assert not seed_new_store(f"sqlite:///{used}")
    assert used.read_bytes() == before
    with use_tracking_uri(f"sqlite:///{used}") as client:
        assert client.get_run(run_id).data.metrics == {"auc": 0.8}


@pytest.mark.parametrize(
    "uri",
    [
        "sqlite://",
        "sqlite:///:memory:",
        "sqlite:///a.db?timeout=5",
        "postgresql://u@h/db",
        "file:x",
    ],
)
def test_other_stores_are_left_to_mlflow(uri):
    assert sqlite_file(uri) is None
    assert not seed_new_store(uri)


def test_an_unusable_cache_leaves_the_store_to_mlflow(tmp_path, monkeypatch):
    blocked = tmp_path / "a-file"
    blocked.write_text("the cache folder cannot be made here")
    monkeypatch.setenv(ENV_CACHE_DIR, str(blocked / "cache"))
    uri = f"sqlite:///{tmp_path}/store.db"
    assert not seed_new_store(uri)
    assert not (tmp_path / "store.db").exists()
    with use_tracking_uri(uri) as client:  # MLflow creates it with its migrations
        _record_and_register(client, tmp_path)
    assert _revision(tmp_path / "store.db") == [(HEAD,)]


def test_mlflow_still_reports_its_own_errors(cache, tmp_path):
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    with (
        pytest.raises((OSError, MlflowException)),
        use_tracking_uri(f"sqlite:///{blocked}/models/mlflow.db"),
    ):
        pass


SEED = """
import sys
from training.store_template import seed_new_store
print(seed_new_store("sqlite:///" + sys.argv[1]))
"""


def test_parallel_processes_with_an_empty_cache_all_get_a_good_store(cache, tmp_path):
    env = {**os.environ, ENV_CACHE_DIR: str(cache), "PYTHONPATH": str(ROOT)}
    stores = [tmp_path / f"worker{i}" / "mlflow.db" for i in range(3)]
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", SEED, str(store)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for store in stores
    ]
    outputs = [w.communicate(timeout=300) for w in workers]
    assert [w.returncode for w in workers] == [0, 0, 0], outputs
    assert [out.strip().splitlines()[-1] for out, _ in outputs] == ["True"] * 3
    for store in stores:
        assert is_empty_store(store, HEAD)
    assert is_empty_store(_template_path(cache), HEAD)
    assert not [p.name for p in cache.iterdir() if p.name.endswith(".building")]
    with use_tracking_uri(f"sqlite:///{stores[0]}") as client:
        _record_and_register(client, tmp_path)
