"""Fast CLI checks on generated exports: ``train`` on data with no conversion labels."""

from __future__ import annotations

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
def test_train_without_any_conversion_date_says_so(tmp_path, company):
    """Before: '0 of them converted: add more history' (untrue: the column was missing)."""
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
