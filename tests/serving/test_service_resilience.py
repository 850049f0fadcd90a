"""Issue 23 over real HTTP: restarts while the registry is down, no model anywhere,
fail-closed serving (issue 19), per-instance metrics.

Each test starts the real ``trialcast serve`` / ``bentoml serve`` on a generated
company unlike the demo (renamed vocabulary, other trial lengths and conversion
lags); fail-closed loading is checked on two such companies.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import time
from pathlib import Path

import pytest
import requests
from mlflow import MlflowClient
from served_company import ServedCompany, serve_company, start_process, wait_ready
from servers import free_port

from models.loader import NotServableError, load_serving_model, registered_name
from training.gate import Verdict
from trialcast.bench.serving_load import stop_server

pytestmark = pytest.mark.slow

TOKEN = "resilience-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
BIN = Path(sys.executable).parent
TRIALCAST = [str(BIN / "trialcast"), "serve"]
BENTOML = [str(BIN / "bentoml"), "serve", "serving.service:TrialcastService"]
SHAPES = {"long": dict(n_accounts=700, seed=41), "short": dict(n_accounts=800, seed=42)}


@pytest.fixture(scope="module")
def companies(tmp_path_factory) -> dict[str, ServedCompany]:
    """Two generated companies, each trained, promoted, cached and scored."""
    return {
        shape: serve_company(tmp_path_factory.mktemp(shape), shape, token=TOKEN, **kw)
        for shape, kw in SHAPES.items()
    }


@pytest.fixture
def served(companies) -> ServedCompany:
    return companies["long"]


def _env(served: ServedCompany, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIALCAST_")}
    return {**env, **served.env, **extra}


def _run_until_exit(command, env, log, *, within: float, cwd: Path | None = None):
    proc, _ = start_process(command, env, log, **({"cwd": cwd} if cwd else {}))
    try:
        code = proc.wait(timeout=within)
    except Exception:
        stop_server(proc)
        tail = log.read_text()[-3000:]
        raise AssertionError(f"still running after {within:.0f} s:\n{tail}") from None
    return code, log.read_text()


# --- fail closed (issue 19 item 2) ------------------------------------------------------


@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("verdict", [None, Verdict.NO_LIFT.value, Verdict.PROBABLE_LEAK.value])
@pytest.mark.parametrize("alias", ["champion", "challenger"])
def test_only_a_promoted_verdict_is_loaded_whatever_the_alias(
    companies, shape, verdict, alias, tmp_path
):
    served = companies[shape]
    config = served.company.config
    client = MlflowClient(tracking_uri=served.uri, registry_uri=served.uri)
    name = registered_name(config, "conversion")
    version = client.get_model_version_by_alias(name, alias)
    assert version.tags.get("verdict") == "promoted"
    load_serving_model(config, "conversion", alias=alias, tracking_uri=served.uri,
                       cache_root=tmp_path / "c")  # fmt: skip
    try:
        if verdict is None:
            client.delete_model_version_tag(name, version.version, "verdict")
        else:
            client.set_model_version_tag(name, version.version, "verdict", verdict)
        with pytest.raises(NotServableError) as refused:
            load_serving_model(config, "conversion", alias=alias, tracking_uri=served.uri,
                               cache_root=tmp_path / "c")  # fmt: skip
        text = str(refused.value)
        assert f"version {version.version}" in text and "promoted" in text
        assert ("no verdict" in text) if verdict is None else (verdict in text)
    finally:
        client.set_model_version_tag(name, version.version, "verdict", "promoted")


def test_the_service_refuses_to_start_on_an_unjudged_champion(served, tmp_path):
    client = MlflowClient(tracking_uri=served.uri, registry_uri=served.uri)
    name = registered_name(served.company.config, "conversion")
    version = client.get_model_version_by_alias(name, "champion")
    client.delete_model_version_tag(name, version.version, "verdict")
    try:
        code, log = _run_until_exit(BENTOML, _env(served), tmp_path / "log", within=90)
    finally:
        client.set_model_version_tag(name, version.version, "verdict", "promoted")
    assert code == 2, log[-2000:]
    assert "no verdict" in log and "Traceback" not in log


# --- restart during a registry outage ----------------------------------------------------


@pytest.mark.parametrize("how", ["-c", "TRIALCAST_CONFIG"])
def test_restart_with_the_registry_file_gone_serves_the_cache(served, tmp_path, how):
    gone = tmp_path / "moved" / "mlflow.db"
    env = _env(served, TRIALCAST_TRACKING_URI=f"sqlite:///{gone}")
    command = [*TRIALCAST, "-c", str(served.config_path)] if how == "-c" else TRIALCAST
    log = tmp_path / "serve.log"
    proc, base = start_process(command, env, log)
    try:
        wait_ready(proc, base, log, within=120)
        info = requests.get(f"{base}/info", headers=AUTH, timeout=5).json()
        conversion = next(m for m in info["models"] if m["kind"] == "conversion")
        assert conversion["source"] == "cache"
        assert "does not exist" in conversion["detail"]
        r = requests.post(f"{base}/score", headers=AUTH, timeout=10,
                          json={"accounts": [{"account_id": "x", "features": {}}]})  # fmt: skip
        assert r.status_code == 200
    finally:
        stop_server(proc)
    text = log.read_text()
    assert "registry" in text and "cache" in text  # said in the log
    assert not gone.exists() and not gone.parent.exists()  # no registry file made


def test_restart_with_an_http_registry_down_is_bounded(served, tmp_path):
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    env = _env(served, TRIALCAST_TRACKING_URI=dead, TRIALCAST_REGISTRY_WAIT="3")
    log = tmp_path / "serve.log"
    proc, base = start_process([*TRIALCAST, "-c", str(served.config_path)], env, log)
    try:
        seconds = wait_ready(proc, base, log, within=90)  # MLflow alone retried for > 300 s
        info = requests.get(f"{base}/info", headers=AUTH, timeout=5).json()
        assert {m["source"] for m in info["models"]} == {"cache"}
    finally:
        stop_server(proc)
    assert seconds < 90


# --- no model anywhere -------------------------------------------------------------------


def test_serve_reads_the_model_from_the_config_output_folder(served, tmp_path):
    """``TRIALCAST_CONFIG`` without ``-c``: the models of the config's output folder,
    whatever the working directory (it used to look in ``./models``)."""
    env = _env(served)
    for key in ("TRIALCAST_TRACKING_URI", "TRIALCAST_SERVING_CACHE"):
        env.pop(key)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    log = tmp_path / "serve.log"
    proc, base = start_process(TRIALCAST, env, log, cwd=elsewhere)
    try:
        wait_ready(proc, base, log, within=120)
        info = requests.get(f"{base}/info", headers=AUTH, timeout=5).json()
        assert {m["source"] for m in info["models"]} == {"registry"}
    finally:
        stop_server(proc)
    assert not (elsewhere / "models").exists()


@pytest.mark.parametrize("command", ["trialcast", "bentoml"])
def test_no_model_anywhere_is_one_clear_exit(served, tmp_path, command):
    empty = tmp_path / "company"
    shutil.copytree(served.company.root, empty, ignore=shutil.ignore_patterns("models"))
    env = _env(served, TRIALCAST_CONFIG=str(empty / "trialcast.toml"))
    for key in ("TRIALCAST_TRACKING_URI", "TRIALCAST_SERVING_CACHE"):
        env.pop(key)
    t0 = time.monotonic()
    code, log = _run_until_exit(TRIALCAST if command == "trialcast" else BENTOML, env,
                                tmp_path / "log", within=90, cwd=tmp_path)  # fmt: skip
    assert code == 2, log[-2000:]
    assert time.monotonic() - t0 < 90
    assert str(empty / "models") in log and "trialcast train" in log
    assert "Traceback" not in log
    assert not (empty / "models" / "mlflow.db").exists()


# --- metrics per instance ----------------------------------------------------------------


def _score_count(base: str) -> float:
    text = requests.get(f"{base}/metrics", timeout=5).text
    found = re.findall(r'request_total\{[^}]*endpoint="/score"[^}]*\} ([0-9.e+]+)', text)
    return sum(float(x) for x in found)


def test_a_second_instance_keeps_the_first_ones_counters(served, tmp_path):
    env = _env(served, TRIALCAST_WORKERS="1")
    env.pop("BENTOML_HOME", None)
    first, base = start_process(TRIALCAST, env, tmp_path / "a.log")
    second = None
    try:
        wait_ready(first, base, tmp_path / "a.log", within=120)
        body = {"accounts": [{"account_id": "x", "features": {}}]}
        for _ in range(7):
            assert requests.post(f"{base}/score", json=body, headers=AUTH, timeout=10).ok
        assert _score_count(base) == 7
        second, other = start_process(TRIALCAST, env, tmp_path / "b.log")
        wait_ready(second, other, tmp_path / "b.log", within=120)
        assert _score_count(base) == 7  # not wiped by the second start
        assert _score_count(other) == 0
    finally:
        stop_server(first)
        if second is not None:
            stop_server(second)
