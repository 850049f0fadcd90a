"""Messages keep their brackets: config keys such as ``[trial].conversion_flag`` and
``[[pql.conditions]]`` are printed as written, never eaten as rich markup."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from features.demo.table_company import EXAMPLE_CONFIG, TableCompany, generate_table_company
from trialcast.cli import app

PACKAGE = Path(__file__).resolve().parents[2] / "trialcast"


def _words(text: str) -> str:
    return " ".join(text.split())


def test_no_module_prints_rich_markup():
    """The consoles print without markup, so a markup tag in a string would show as
    text: styles go in ``style=`` or ``Text`` instead."""
    tag = re.compile(r"\[/\]|\[/?(bold|dim|green|red|yellow|cyan)\b")
    offenders = [
        f"{p.relative_to(PACKAGE)}:{i}"
        for p in PACKAGE.rglob("*.py")
        for i, line in enumerate(p.read_text().splitlines(), 1)
        if tag.search(line)
    ]
    assert offenders == []


def test_notes_and_errors_keep_their_brackets(tmp_path, monkeypatch):
    monkeypatch.setenv("TRIALCAST_OUTPUT_DIR", str(tmp_path / "out"))  # restored after
    company = TableCompany(n_trials=120, seed=41, trial_days=12)
    table = generate_table_company(company)
    table["paid"] = np.where(table["converted_at"].notna(), "yes", "no")
    table.drop(columns="converted_at").to_csv(tmp_path / "trials.csv", index=False)
    (tmp_path / "company.toml").write_text(EXAMPLE_CONFIG)
    runner = CliRunner()
    check = runner.invoke(app, ["check-config", str(tmp_path / "company.toml")])
    assert check.exit_code == 0, check.output
    assert "(add [[pql.conditions]])" in _words(check.output)
    broken = runner.invoke(app, ["features", "-c", str(tmp_path / "company.toml")])
    text = _words(broken.output)
    assert broken.exit_code == 2, text
    assert "[feature_table].account_columns" in text and "[trial].conversion_flag" in text
    assert "[sources.features.columns]" in text
