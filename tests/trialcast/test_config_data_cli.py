"""`check-config --data`, `features --list`, typos with suggestions, an empty PQL rule."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from features.config import demo_config_text
from features.demo import variants
from features.demo.generator import generate_demo_data, write_demo_data
from trialcast.cli import app

runner = CliRunner()


def _text(result: object) -> str:
    """The command's output with rich's line wrapping undone."""
    return " ".join(str(getattr(result, "output", "")).split())


@pytest.fixture(scope="module")
def company_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 400-account company (14-day trials, 5-day window) with a hindsight outcome event."""
    demo = generate_demo_data(400, seed=4, trial_days=(14,), conversion_window_days=5)
    out = tmp_path_factory.mktemp("company")
    write_demo_data(variants.hindsight_event(demo, name="Subscription Started"), out)
    return out


def _config(folder: Path, text: str, name: str) -> Path:
    path = folder / name
    path.write_text(text.replace("conversion_window_days = 30", "conversion_window_days = 5"))
    return path


def test_typos_get_suggestions_and_no_traceback(company_dir: Path) -> None:
    text = demo_config_text().replace(
        'events = ["Source Connected"]', 'events = ["Source Conected"]'
    )
    text = text.replace(
        'feature = "engagement_active_days_all"', 'feature = "engagement_activ_days_all"'
    )
    path = _config(company_dir, text, "typo.toml")
    result = runner.invoke(app, ["check-config", str(path), "--data"])
    out = _text(result)
    assert result.exit_code == 2, out
    assert "Traceback" not in out
    assert "'Source Conected' does not occur" in out
    assert "did you mean 'Source Connected'" in out
    assert "did you mean 'engagement_active_days_all'" in out
    # the feature job stops with the same clean error before any long work
    result = runner.invoke(app, ["features", "-c", str(path), "--no-training-sets"])
    assert result.exit_code == 2 and "did you mean 'Source Connected'" in _text(result)


def test_check_config_data_names_the_outcome_event(company_dir: Path) -> None:
    path = _config(company_dir, demo_config_text(), "ok.toml")
    result = runner.invoke(app, ["check-config", str(path), "--data"])
    out = _text(result)
    assert result.exit_code == 0, out
    assert "'Subscription Started'" in out and "EXCLUDED" in out
    assert 'exclude_events = ["Subscription Started"]' in out
    listed = runner.invoke(app, ["features", "-c", str(path), "--list"])
    assert listed.exit_code == 0, listed.output
    names = listed.output.split()
    assert "engagement_active_days_all" in names and "firmo_company_size" in names
    assert not any("subscription" in n for n in names)


def test_empty_pql_rule_means_no_pqls(company_dir: Path, tmp_path: Path) -> None:
    head, _, _ = demo_config_text().partition("[[pql.conditions]]")
    path = _config(company_dir, head, "nopql.toml")
    result = runner.invoke(
        app, ["features", "-c", str(path), "--no-training-sets", "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert "PQL rule is empty: no account is flagged as a PQL" in _text(result)
    import pandas as pd

    accounts = pd.read_parquet(tmp_path / "account_features.parquet")
    assert len(accounts) > 300 and not accounts["pql"].any()
