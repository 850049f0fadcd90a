"""The churn champion under ``trialcast monitor`` on two generated non-demo companies.

Each company (one-week and three-week trials, renamed vocabulary, history from
2024-10 so paying accounts have full churn horizons before training, a 60-day
churn horizon where the demo has 90: at 90 days the gate finds no lift on
~700 test rows) trains and promotes a conversion and a churn champion at
``TRAINED_AT``. With nothing changed, the
churn section is filled (cohorts of paying-account snapshots, drift, the
estimate) and no churn alert rings; when paying accounts start to churn more
from ``SINCE`` (same behaviour, more churn: the churn analogue of a price
rise), the churn outcome test says ``outcomes shifted`` with the churns
counted.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from company_factory import SHAPES, Company, make_company, train_champions
from mlflow import MlflowClient
from typer.testing import CliRunner

from features.demo.generator import DemoData
from features.tables import Tables
from trialcast.cli import app
from trialcast.monitoring.champion import Champion
from trialcast.monitoring.job import MonitorReport, run_monitor

pytestmark = pytest.mark.slow

TRAINED_AT = pd.Timestamp("2026-01-05")
SINCE = pd.Timestamp("2026-02-02")
HORIZON_DAYS = 60
#: Extra churn hazard per day for every account paying from SINCE on.
EXTRA_HAZARD = 1 / 240


def churn_more(demo: DemoData, seed: int = 0) -> DemoData:
    """Paying accounts churn at an extra hazard from ``SINCE`` (their usage unchanged)."""
    acc = demo.tables.accounts.copy()
    rng = np.random.default_rng(seed)
    conv = pd.to_datetime(acc["converted_at"])
    churned = pd.to_datetime(acc["churned_at"])
    begin = conv.where(conv > SINCE, SINCE)
    extra = begin + pd.to_timedelta(rng.exponential(1 / EXTRA_HAZARD, len(acc)), unit="D")
    export = demo.tables.events["timestamp"].max()
    earlier = conv.notna() & (churned.isna() | (extra < churned)) & (extra < export)
    acc["churned_at"] = churned.where(~earlier, extra)
    tables = Tables(
        events=demo.tables.events, accounts=acc, communications=demo.tables.communications
    )
    return DemoData(tables=tables, truth=demo.truth)


def company(root, shape: str, scenario: str) -> Company:
    co = make_company(
        root / scenario,
        n_accounts=6000,
        seed=4,
        start="2024-10-01",
        export_time="2026-05-01",
        transform=churn_more if scenario == "churn" else None,
        **SHAPES[shape],
    )
    trial = co.config.trial.model_copy(update={"churn_horizon_days": HORIZON_DAYS})
    return replace(co, config=co.config.model_copy(update={"trial": trial}))


@pytest.fixture(scope="module", params=list(SHAPES))
def trained(request, tmp_path_factory) -> tuple[str, Path, dict[str, Champion], str]:
    """Conversion and churn champions per company shape, trained at TRAINED_AT."""
    shape = request.param
    root = tmp_path_factory.mktemp(f"monitor-churn-{shape}")
    kinds = ("conversion", "churn")
    uri, champions = train_champions(company(root, shape, "none"), root, str(TRAINED_AT), kinds)
    assert all(c is not None for c in champions.values()), champions
    return shape, root, champions, uri  # type: ignore[return-value]


def weekly(trained, scenario: str, weeks: int) -> list[MonitorReport]:
    shape, root, champions, _ = trained
    co = company(root, shape, scenario)
    return [
        run_monitor(co.config, co.tables, champions, as_of=SINCE + pd.Timedelta(weeks=k))
        for k in range(1, weeks + 1)
    ]


def test_churn_champion_is_monitored_and_quiet_with_no_change(trained):
    runs = weekly(trained, "none", 6)
    for run in runs:
        assert not any(a.subject == "churn model" for a in run.alerts), run.alerts
        assert "churn" in run.kinds and not any("churn champion" in n for n in run.notes)
    churn = runs[-1].kinds["churn"]
    assert churn.cohorts["trials"].sum() > 300  # paying-account snapshots since training
    assert churn.cohorts["expected_so_far"].sum() > 8 and churn.test.enough
    assert churn.drift.n_reference > 300 and churn.drift.n_recent > 100
    section = runs[-1].to_json()["models"]["churn"]
    assert {"outcome_test", "drift", "estimated_auc_error", "estimate_calibration"} <= set(section)
    assert runs[-1].to_json()["cohorts"] == runs[-1].to_json()["cohorts"]  # conversion's table


def test_more_churn_from_a_date_is_outcomes_shifted_on_the_churn_model(trained):
    runs = weekly(trained, "churn", 8)
    hit = [r for r in runs if any(a.subject == "churn model" for a in r.alerts)]
    assert hit, [r.kinds["churn"].test.evidence("churns") for r in runs]
    first = hit[0]
    assert first.verdict.value == "outcomes shifted"
    alert = next(a for a in first.alerts if a.subject == "churn model")
    assert "churns vs" in alert.evidence and first.kinds["churn"].test.direction == "more"
    # The conversion champion is not blamed for the churn change.
    assert not any(a.subject == "conversion model" for r in runs for a in r.alerts)


def test_cli_reports_the_churn_model_in_words_json_and_mlflow(trained):
    shape, root, _, uri = trained
    if shape != "short":
        pytest.skip("the command line is exercised once, on the short company")
    co = company(root, shape, "churn")
    # The command reads the config file: write the 60-day horizon into it.
    path = co.root / "trialcast.toml"
    path.write_text(path.read_text().replace("churn_horizon_days = 90", "churn_horizon_days = 60"))
    as_of = (SINCE + pd.Timedelta(weeks=2)).date().isoformat()
    args = ["monitor", "-c", str(path), "--as-of", as_of, "--tracking-uri", uri]
    result = CliRunner().invoke(app, args, env={"TRIALCAST_OUTPUT_DIR": str(root / "out")})
    assert result.exit_code == 1, result.output
    assert "churns vs" in result.output and "churn model" in result.output
    report = json.loads((root / "out" / "monitoring" / f"{as_of}.json").read_text())
    assert report["verdict"] == "outcomes shifted"
    churn = report["models"]["churn"]
    assert churn["outcome_test"]["alarm"] and churn["cohorts"]
    assert "cohorts" not in report["models"]["conversion"] and report["cohorts"]
    exp = MlflowClient(uri).get_experiment_by_name(co.config.registry.experiment + "-monitoring")
    assert exp is not None
    run = MlflowClient(uri).search_runs([exp.experiment_id])[0]
    assert "churn.outcome_log_lr" in run.data.metrics
    assert run.data.tags["trialcast.churn_version"] == "1"
