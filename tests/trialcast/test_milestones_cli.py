"""``trialcast milestones`` end to end on a generated company written to files."""

from __future__ import annotations

import dataclasses
import tomllib

from typer.testing import CliRunner

from features.config import parse_config
from features.demo.driver_company import CLINIC, generate_driver_company
from trialcast.cli import app


def _write_company(tmp_path, spec):
    company = generate_driver_company(spec)
    for name in ("events", "accounts", "communications"):
        getattr(company.tables, name).to_parquet(tmp_path / f"{name}.parquet")
    (tmp_path / "company.toml").write_text(
        f"""company = "{spec.company}"
[sources.events]
path = "events.parquet"
[sources.accounts]
path = "accounts.parquet"
[sources.communications]
path = "communications.parquet"
[trial]
default_trial_days = {spec.trial_days}
conversion_window_days = 30
"""
    )
    return company


def test_milestones_command_finds_the_driver_and_proposes_a_pql_rule(tmp_path):
    spec = dataclasses.replace(CLINIC, n_accounts=1500)
    _write_company(tmp_path, spec)
    out = tmp_path / "proposal.toml"
    result = CliRunner().invoke(
        app, ["milestones", "-c", str(tmp_path / "company.toml"), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert f"Aha moment: {spec.driver_event}" in text
    assert f"{spec.universal_event}: reached by" in text  # near-universal, said why
    assert "Proposed PQL rule" in text
    proposal = tomllib.loads(out.read_text())
    config = parse_config({**proposal, "company": "x"})
    assert [m.events for m in config.activation.milestones] == [[spec.driver_event]]
    assert config.pql.conditions  # the config had none: one is proposed


def test_milestones_command_reports_a_bad_config_without_a_traceback(tmp_path):
    (tmp_path / "bad.toml").write_text('company = "x"\n[sources.events]\npath = "missing.csv"\n')
    result = CliRunner().invoke(app, ["milestones", "-c", str(tmp_path / "bad.toml")])
    assert result.exit_code == 2
    assert "error:" in result.output and "Traceback" not in result.output
