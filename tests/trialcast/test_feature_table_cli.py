"""The README's "Your own feature table" commands, run as written on a copy of the example."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from trialcast.cli import app

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "feature_table"


def test_readme_feature_table_commands(tmp_path, monkeypatch):
    for name in ("trials.csv", "feature_table.toml"):
        shutil.copy(EXAMPLE / name, tmp_path / name)
    for var in ("TRIALCAST_TRACKING_URI", "TRIALCAST_SCORES_PATH", "TRIALCAST_OUTPUT_DIR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    config = str(tmp_path / "feature_table.toml")
    runner = CliRunner()

    features = runner.invoke(app, ["features", "-c", config])
    assert features.exit_code == 0, features.output
    assert "trial-end model" in features.output and "features" in features.output

    train = runner.invoke(app, ["train", "-c", config])
    assert train.exit_code == 0, train.output
    assert "table_first_invoice_amount" in train.output and "EXCLUDED" in train.output

    score = runner.invoke(app, ["score", "-c", config])
    assert score.exit_code == 0, score.output
    assert "running trial(s) not scored" in " ".join(score.output.split())
    held = pd.read_parquet(tmp_path / "out" / "models" / "scores" / "latest.parquet")
    assert (held["trial_days_left"] <= 0).all()

    told = runner.invoke(app, ["score", "-c", config, "--allow-before-trial-end"])
    assert told.exit_code == 0, told.output
    everyone = pd.read_parquet(tmp_path / "out" / "models" / "scores" / "latest.parquet")
    assert len(everyone) > len(held) and (everyone["trial_days_left"] > 0).any()


def test_dask_features_refuse_a_feature_table_before_starting_a_cluster(tmp_path):
    """The Dask feature job builds from events only: with [sources.features] it would
    leave the table out of every model trained on its output, so it refuses in words."""
    for name in ("trials.csv", "feature_table.toml"):
        shutil.copy(EXAMPLE / name, tmp_path / name)
    out = tmp_path / "dask_out"
    result = CliRunner().invoke(
        app, ["dask", "features", "-c", str(tmp_path / "feature_table.toml"), "--out", str(out)]
    )
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert "[sources.features]" in text and "trialcast features" in text
    assert not out.exists()
