"""The churn champion under ``trialcast monitor`` on two generated non-demo companies.

The companies and their champions are ``tests/churn_company.py``'s (trained once per
session by the ``churn_trained`` fixture). With nothing changed, the churn section
is filled (cohorts of paying-account snapshots, drift, the estimate) and no churn
alert rings; when paying accounts start to churn more from ``SINCE``, the churn
outcome test says ``outcomes shifted`` with the churns counted.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
from churn_company import SINCE, ChurnTrained, churn_company
from company_factory import SHAPES
from mlflow import MlflowClient
from typer.testing import CliRunner

from trialcast.cli import app
from trialcast.monitoring.job import MonitorReport, run_monitor

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=list(SHAPES))
def trained(request, churn_trained) -> ChurnTrained:
    """Conversion and churn champions per company shape, trained at ``TRAINED_AT``."""
    return churn_trained(request.param)


def weekly(trained: ChurnTrained, scenario: str, weeks: int) -> list[MonitorReport]:
    co = churn_company(trained.root, trained.shape, scenario)
    return [
        run_monitor(co.config, co.tables, trained.champions, as_of=SINCE + pd.Timedelta(weeks=k))
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
    root, uri = trained.root, trained.uri
    if trained.shape != "short":
        pytest.skip("the command line is exercised once, on the short company")
    co = churn_company(root, trained.shape, "churn")
    path = co.root / "trialcast.toml"  # the 60-day horizon is in the file too
    as_of = (SINCE + pd.Timedelta(weeks=2)).date().isoformat()
    args = ["monitor", "-c", str(path), "--as-of", as_of, "--tracking-uri", uri]
    result = CliRunner().invoke(app, args, env={"TRIALCAST_OUTPUT_DIR": str(root / "out")})
    assert result.exit_code == 1, result.output
    assert "churns vs" in result.output and "churn model" in result.output
    report = json.loads((root / "out" / "monitoring" / f"{as_of}.json").read_text())
    assert report["verdict"] == "outcomes shifted"
    churn = report["models"]["churn"]
    assert churn["outcome_test"]["alarm"] and churn["cohorts"]
    # Each model's own verdict and alerts: the churn model rang, the conversion one did not.
    assert churn["verdict"] == "outcomes shifted"
    assert [a["subject"] for a in churn["alerts"] if a["kind"] == "outcomes"] == ["churn model"]
    assert not any(a["subject"] == "churn model" for a in report["models"]["conversion"]["alerts"])
    assert "cohorts" not in report["models"]["conversion"] and report["cohorts"]
    exp = MlflowClient(uri).get_experiment_by_name(co.config.registry.experiment + "-monitoring")
    assert exp is not None
    run = MlflowClient(uri).search_runs([exp.experiment_id])[0]
    assert "churn.outcome_log_lr" in run.data.metrics
    assert run.data.tags["trialcast.churn_version"] == "1"
