"""Real-export cases run through the CLI as a new user would: no traceback, a clear answer.

One generated feature-table company (not the demo: 10-day trials, its own seed) is
trained once; the cases below are variants of its export (dates outside every
trial, no deal values) scored and forecast through ``trialcast``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from features.demo.table_company import EXAMPLE_CONFIG, TableCompany, generate_table_company
from serving.open_trials import NO_OPEN_TRIAL_EXIT
from trialcast.cli import app

pytestmark = pytest.mark.slow

COMPANY = TableCompany(n_trials=1500, seed=23, trial_days=10, lag_days=(0.0, 12.0))


def _words(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A trained feature-table company: folder with ``trials.csv`` and ``company.toml``."""
    root = tmp_path_factory.mktemp("export")
    generate_table_company(COMPANY).to_csv(
        root / "trials.csv", index=False, date_format="%Y-%m-%dT%H:%M:%S"
    )
    (root / "company.toml").write_text(EXAMPLE_CONFIG)
    with pytest.MonkeyPatch.context() as mp:
        for var in ("TRIALCAST_TRACKING_URI", "TRIALCAST_SCORES_PATH", "TRIALCAST_OUTPUT_DIR"):
            mp.delenv(var, raising=False)
        result = CliRunner().invoke(
            app, ["train", "-c", str(root / "company.toml"), "--kind", "conversion"]
        )
    assert result.exit_code == 0, result.output
    return root


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for var in ("TRIALCAST_TRACKING_URI", "TRIALCAST_SCORES_PATH", "TRIALCAST_OUTPUT_DIR"):
        monkeypatch.delenv(var, raising=False)
    yield
    os.environ.pop("TRIALCAST_OUTPUT_DIR", None)  # set by the CLI from the config


@pytest.mark.parametrize(
    ("command", "as_of"), [("score", "2024-06-01"), ("forecast", "2027-03-01")]
)
def test_no_open_trial_is_an_answer_not_a_traceback(trained, command, as_of):
    """Before the first trial and after the last window: exit 3, the span that has trials."""
    scores = trained / "out" / "models" / "scores"
    before = sorted(p.name for p in scores.glob("*")) if scores.exists() else []
    result = CliRunner().invoke(
        app, [command, "-c", str(trained / "company.toml"), "--as-of", as_of]
    )
    text = _words(result.output)
    assert result.exit_code == NO_OPEN_TRIAL_EXIT, text
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert f"no open trial at {pd.Timestamp(as_of)}" in text
    assert "trials are open between" in text and "Traceback" not in text
    after = sorted(p.name for p in scores.glob("*")) if scores.exists() else []
    assert after == before  # nothing written


def _without_deal_values(trained: Path, default: float | None) -> Path:
    """The same export with its deal_value column dropped (and maybe a default value)."""
    table = pd.read_csv(trained / "trials.csv").drop(columns="deal_value")
    table.to_csv(trained / "trials_no_value.csv", index=False)
    text = EXAMPLE_CONFIG.replace('path = "trials.csv"', 'path = "trials_no_value.csv"')
    text = text.replace(', "deal_value"]', "]")
    text = text.replace("[feature_table.columns.first_invoice_amount]", "[feature_table.columns.x]")
    text = text.replace('label = "first invoice amount"\nunit = "EUR"\n', "")
    text = text.replace("[feature_table.columns.x]\n", "")
    if default is not None:
        text += f"\n[forecast]\ndefault_deal_value = {default}\n"
    name = "no_value.toml" if default is None else "default_value.toml"
    (trained / name).write_text(text)
    return trained / name


def test_no_deal_values_scores_without_revenue_and_forecast_says_why(trained):
    config = _without_deal_values(trained, None)
    table = pd.read_csv(trained / "trials_no_value.csv")
    runner = CliRunner()
    score = runner.invoke(app, ["score", "-c", str(config), "--allow-before-trial-end"])
    text = _words(score.output)
    assert score.exit_code == 0, text
    won = int(pd.to_datetime(table["converted_at"]).notna().sum())
    assert "were won before" in text and "no deal was won" not in text
    assert "scored without revenue" in text and "[forecast].default_deal_value" in text
    assert won > 50
    scores = pd.read_parquet(trained / "out" / "models" / "scores" / "latest.parquet")
    assert len(scores) > 0
    assert scores["deal_value"].isna().all() and scores["expected_value"].isna().all()
    assert (scores["deal_value_source"] == "none").all()
    assert scores["p_convert"].is_monotonic_decreasing  # ranked by chance, not by id
    forecast = runner.invoke(app, ["forecast", "-c", str(config)])
    assert forecast.exit_code == 2, forecast.output
    assert "default_deal_value" in _words(forecast.output)


def test_default_deal_value_values_the_forecast(trained):
    config = _without_deal_values(trained, 2400.0)
    runner = CliRunner()
    forecast = runner.invoke(app, ["forecast", "-c", str(config)])
    assert forecast.exit_code == 0, forecast.output
    accounts = pd.read_parquet(
        trained / "out" / "models" / "forecast" / "forecast_accounts.parquet"
    )
    assert (accounts["deal_value"] == 2400.0).all()
