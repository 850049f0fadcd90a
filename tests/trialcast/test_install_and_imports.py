"""An install that resolves without backtracking, and commands that import only what they use."""

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from trialcast import runtime
from trialcast.cli import _startup

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("mlflow", "lightgbm", "sklearn", "scipy", "matplotlib", "shap", "optuna", "bentoml",
         "dask", "distributed", "duckdb", "pandas", "numpy", "pyarrow", "sqlalchemy")  # fmt: skip


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            pins[canonicalize_name(name)] = version.strip()
    return pins


def test_readme_and_ci_install_with_the_same_constraints_file():
    readme = (ROOT / "README.md").read_text()
    command = next(line for line in readme.splitlines() if line.startswith("python3 -m venv"))
    assert re.search(r'pip install -e "\.\[dev\]" -c constraints\.txt', command)
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r'pip install -q -e "\.\[dev\]" -c constraints\.txt', ci)


def test_constraints_pin_every_dependency_inside_its_range():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = _pins()
    for text in [*project["dependencies"], *project["optional-dependencies"]["dev"]]:
        req = Requirement(text)
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} has no pin in constraints.txt"
        assert req.specifier.contains(pins[name], prereleases=True), (text, pins[name])


def _imported(code: str) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys\nprint(' '.join(sorted(sys.modules)))"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return [m for m in HEAVY if m in out]


def test_the_cli_imports_no_data_or_model_library_before_a_command_runs():
    # `trialcast --help` and every command's parsing pay only for typer, rich and pydantic
    assert _imported("import trialcast.cli") == []


def test_training_imports_neither_optuna_nor_shap_unless_asked():
    imported = _imported("import training.train")
    assert "lightgbm" in imported and "mlflow" in imported  # it does import what it uses
    assert "optuna" not in imported and "shap" not in imported


def test_cli_start_up_switches_library_telemetry_off_but_keeps_a_users_choice(monkeypatch):
    monkeypatch.setattr(runtime, "quiet_libraries", lambda verbose: None)
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "")  # recorded, so the test restores it
    monkeypatch.delenv("MLFLOW_DISABLE_TELEMETRY")
    monkeypatch.setenv("BENTOML_DO_NOT_TRACK", "false")  # the user's own choice
    _startup(verbose=False)
    assert os.environ["MLFLOW_DISABLE_TELEMETRY"] == "true"
    assert os.environ["BENTOML_DO_NOT_TRACK"] == "false"


def test_openmp_threads_sleep_only_when_the_cores_are_busy():
    assert runtime.openmp_wait_policy(0.5, 2) is None  # quiet: spinning is 30% faster
    assert runtime.openmp_wait_policy(1.9, 2) is None
    assert runtime.openmp_wait_policy(2.0, 2) == "PASSIVE"  # busy: sleeping is 1.5x faster
    assert runtime.openmp_wait_policy(5.0, 8) is None


def test_cli_start_up_sets_the_openmp_policy_by_load_but_keeps_a_users_choice(monkeypatch):
    monkeypatch.setattr(runtime, "quiet_libraries", lambda verbose: None)
    for name in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT"):
        monkeypatch.setenv(name, "")  # recorded, so the test restores it
        monkeypatch.delenv(name)
    monkeypatch.setattr(os, "getloadavg", lambda: (9.0, 9.0, 9.0))
    _startup(verbose=False)
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.delenv("OMP_WAIT_POLICY")
    monkeypatch.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    _startup(verbose=False)
    assert "OMP_WAIT_POLICY" not in os.environ
    monkeypatch.setattr(os, "getloadavg", lambda: (9.0, 9.0, 9.0))
    monkeypatch.setenv("GOMP_SPINCOUNT", "1000")  # the user's own choice of waiting
    _startup(verbose=False)
    assert "OMP_WAIT_POLICY" not in os.environ
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    _startup(verbose=False)
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"
