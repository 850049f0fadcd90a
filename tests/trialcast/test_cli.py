"""The command line as a newcomer meets it: starter config, bracket-safe output, one output root."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

from typer.testing import CliRunner

from features.config import CompanyConfig, load_config
from trialcast.cli import app

runner = CliRunner()


def test_starter_config_has_every_section_and_checks(tmp_path: Path) -> None:
    path = tmp_path / "mycompany.toml"
    result = runner.invoke(app, ["init-config", str(path)])
    assert result.exit_code == 0, result.output
    # brackets in the message are printed as written, not eaten as markup
    assert "edit [sources]" in result.output
    text = path.read_text()
    raw = tomllib.loads(text)
    # every setting appears in the starter: a section as a table or a commented
    # example, a top-level value as `name = ...` (set or commented)
    for name in set(CompanyConfig.model_fields) - {"base_dir"}:
        shown = f"[{name}" in text or f"[[{name}" in text or f"{name} = " in text
        assert name in raw or shown, name
    checked = runner.invoke(app, ["check-config", str(path)])
    assert checked.exit_code == 0, checked.output
    assert f"outputs under: {tmp_path}" in checked.output.replace("\n", "")
    as_others = runner.invoke(app, ["check-config", "-c", str(path)])  # as every command
    assert as_others.exit_code == 0 and as_others.output == checked.output
    neither = runner.invoke(app, ["check-config"])
    assert neither.exit_code == 2 and "check-config -c CONFIG" in neither.output
    two = runner.invoke(app, ["check-config", str(path), "-c", str(tmp_path / "other.toml")])
    assert two.exit_code == 2 and "two configs given" in two.output
    again = runner.invoke(app, ["init-config", str(path)])
    assert again.exit_code == 2 and "--force" in again.output


def test_output_dir_is_resolved_against_the_config_folder(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('company = "x"\noutput_dir = "out"\n[sources.events]\npath = "e.csv"\n')
    config = load_config(path)
    assert config.output_root == tmp_path / "out"
    # where the outputs go does not change what the settings are
    other = tmp_path / "d.toml"
    other.write_text('company = "x"\n[sources.events]\npath = "e.csv"\n')
    assert load_config(other).config_hash() == config.config_hash()


def test_config_errors_are_printed_bracket_safe(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('company = "x"\n[model]\nmin_positives = 0\n')
    result = runner.invoke(app, ["check-config", str(path)])
    assert result.exit_code == 2
    assert "model" in result.output and "min_positives" in result.output
    assert "Traceback" not in result.output


def test_help_does_not_import_the_heavy_libraries() -> None:
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from trialcast.cli import app\n"
        "r = CliRunner().invoke(app, ['--help'])\n"
        "assert r.exit_code == 0, r.output\n"
        "heavy = sorted(m for m in ('mlflow', 'bentoml', 'shap', 'dask', 'lightgbm', 'pandas',"
        " 'sklearn') if m in sys.modules)\n"
        "print(','.join(heavy))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""
