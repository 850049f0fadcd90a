"""Fast CLI checks on generated exports: ``train`` on data with no conversion labels."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from features.demo.table_company import EXAMPLE_CONFIG, TableCompany, generate_table_company
from trialcast.cli import app


@pytest.mark.parametrize(
    "company",
    [
        TableCompany(n_trials=150, seed=51, trial_days=9),
        TableCompany(n_trials=90, seed=52, trial_days=28),
    ],
)
def test_train_without_any_conversion_date_says_so(tmp_path, company, monkeypatch):
    """Before: '0 of them converted: add more history' (untrue: the column was missing)."""
    monkeypatch.setenv("TRIALCAST_OUTPUT_DIR", str(tmp_path / "out"))  # restored after
    generate_table_company(company).drop(columns="converted_at").to_csv(
        tmp_path / "trials.csv", index=False
    )
    text = EXAMPLE_CONFIG.replace('"converted_at", ', "")
    (tmp_path / "company.toml").write_text(text)
    result = CliRunner().invoke(app, ["train", "-c", str(tmp_path / "company.toml")])
    words = " ".join(result.output.split())
    assert result.exit_code == 2, words
    assert "no account has a conversion date" in words and "[trial].conversion_flag" in words
    assert not (tmp_path / "out" / "models").exists()


PLANDAY = Path(__file__).resolve().parents[2] / "docs" / "examples" / "planday.toml"


@pytest.mark.parametrize(
    ("command", "says"),
    [
        ("train", "no account has a conversion date"),
        ("backtest", "no account has a conversion date"),
        ("milestones", "no account has a conversion date"),
    ],
)
def test_real_planday_sample_commands_answer_in_words(tmp_path, monkeypatch, command, says):
    """The real sample (events only, no labels) through the commands a new user tries."""
    monkeypatch.setenv("TRIALCAST_OUTPUT_DIR", str(tmp_path))  # restored after the test
    text = PLANDAY.read_text()  # outputs land beside the copied config, under tmp_path
    config = tmp_path / "planday.toml"
    config.write_text(
        text.replace("../../tests/data/", f"{PLANDAY.parents[2] / 'tests' / 'data'}/")
    )
    result = CliRunner().invoke(app, [command, "-c", str(config)])
    words = " ".join(result.output.split())
    assert result.exit_code == 2, words
    assert says in words and "Traceback" not in words


@pytest.mark.parametrize("command", ["features", "score", "forecast", "retrain"])
def test_a_bad_as_of_is_named(command, tmp_path, monkeypatch):
    monkeypatch.setenv("TRIALCAST_OUTPUT_DIR", str(tmp_path))  # restored after the test
    result = CliRunner().invoke(app, [command, "-c", str(PLANDAY), "--as-of", "2024-13-45"])
    words = " ".join(result.output.split())
    assert result.exit_code == 2, words
    assert "--as-of: not a date/time: '2024-13-45'" in words


def test_a_scores_file_that_is_not_one_is_named(tmp_path):
    from features.quarantine import InputError
    from trialcast.forecast_job import read_scores_file

    with pytest.raises(InputError, match="file not found"):
        read_scores_file(tmp_path / "missing.parquet")
    (tmp_path / "text.parquet").write_text("account_id,p\n")
    with pytest.raises(InputError, match="cannot read it as Parquet"):
        read_scores_file(tmp_path / "text.parquet")
    pd.DataFrame({"account_id": ["a"], "p": [0.1]}).to_parquet(tmp_path / "other.parquet")
    with pytest.raises(InputError, match="no column as_of, trial_start, trial_end, p_convert"):
        read_scores_file(tmp_path / "other.parquet")
