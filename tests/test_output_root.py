"""The default output never lands inside a Python package (a run from a source checkout)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from features.config import load_config
from models.settings import ENV_OUTPUT_DIR, default_tracking_uri, output_root
from training.settings import resolve_artifact_location
from trialcast.cli import app


def _checkout(root: Path) -> Path:
    """A folder shaped like the repo root: ``models/`` is a package."""
    package = root / "models"
    package.mkdir()
    (package / "__init__.py").write_text('"""a package."""\n')
    return package


def _files(folder: Path) -> set[Path]:
    return {p.relative_to(folder) for p in folder.rglob("*")}


def test_no_output_setting_never_writes_into_the_models_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = _checkout(tmp_path)
    before = _files(package)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(ENV_OUTPUT_DIR, raising=False)
    monkeypatch.delenv("TRIALCAST_TRACKING_URI", raising=False)
    monkeypatch.delenv("TRIALCAST_ARTIFACT_ROOT", raising=False)

    root = output_root()
    uri = default_tracking_uri()
    artifacts = resolve_artifact_location(uri)

    assert root == tmp_path.resolve() / "trialcast_output"
    assert uri == f"sqlite:///{root / 'models' / 'mlflow.db'}"
    assert artifacts == (root / "models" / "artifacts").as_uri()
    assert _files(package) == before  # nothing written into the package


def test_a_folder_holding_the_package_gets_a_dedicated_output_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _checkout(tmp_path)
    monkeypatch.setenv(ENV_OUTPUT_DIR, str(tmp_path))
    assert output_root() == tmp_path.resolve() / "trialcast_output"
    assert output_root(tmp_path) == tmp_path.resolve() / "trialcast_output"
    # a config without output_dir beside the package: its outputs avoid it too
    path = tmp_path / "c.toml"
    path.write_text('company = "x"\n[sources.events]\npath = "e.csv"\n')
    assert load_config(path).output_root == tmp_path / "trialcast_output"
    checked = CliRunner().invoke(app, ["check-config", str(path)])
    assert checked.exit_code == 0, checked.output
    assert f"outputs under: {tmp_path / 'trialcast_output'}" in checked.output.replace("\n", "")


def test_output_settings_keep_working_as_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_OUTPUT_DIR, str(tmp_path / "env"))
    assert output_root() == (tmp_path / "env").resolve()
    assert output_root(tmp_path / "given") == (tmp_path / "given").resolve()
    path = tmp_path / "c.toml"
    path.write_text('company = "x"\noutput_dir = "out"\n[sources.events]\npath = "e.csv"\n')
    assert load_config(path).output_root == tmp_path / "out"
    plain = tmp_path / "d.toml"
    plain.write_text('company = "x"\n[sources.events]\npath = "e.csv"\n')
    assert load_config(plain).output_root == tmp_path


PLANDAY = Path(__file__).resolve().parents[1] / "docs" / "examples" / "planday.toml"


def test_a_user_output_dir_holds_the_features_and_their_quarantine_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``TRIALCAST_OUTPUT_DIR`` overrides the config's folder for every output: the
    features and the set-aside rows went beside the config while models went there."""
    company = tmp_path / "company"
    company.mkdir()
    config = company / "planday.toml"
    data = PLANDAY.parents[2] / "tests" / "data"
    config.write_text(PLANDAY.read_text().replace("../../tests/data/", f"{data}/"))
    monkeypatch.setenv(ENV_OUTPUT_DIR, str(tmp_path / "env"))
    runner = CliRunner()
    built = runner.invoke(app, ["features", "-c", str(config)])
    assert built.exit_code == 0, built.output
    features = (tmp_path / "env" / "features").resolve()
    assert (features / "account_features.parquet").exists()
    assert (features / "quarantine" / "events.csv").exists()  # the sample's empty rows
    assert _files(company) == {Path("planday.toml")}  # nothing beside the config
    checked = runner.invoke(app, ["check-config", "-c", str(config)])
    assert f"outputs under: {(tmp_path / 'env').resolve()}" in checked.output.replace("\n", "")
