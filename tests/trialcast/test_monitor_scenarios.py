"""trialcast monitor on two generated non-demo companies, one test per scenario.

Each company is trained once, at ``TRAINED_AT`` (the tables cut there, as an
export then): every scenario changes the company only from ``SINCE`` on, so
the same champion serves all four. Weekly runs from ``SINCE`` replay what the
scheduled job would have said (``--as-of``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from company_factory import SHAPES, Company, make_company, train_champions
from mlflow import MlflowClient
from typer.testing import CliRunner

from features.demo.scenarios import apply_scenario
from trialcast.cli import app
from trialcast.monitoring.champion import Champion
from trialcast.monitoring.job import MonitorReport, run_monitor

pytestmark = pytest.mark.slow
runner = CliRunner()

TRAINED_AT = pd.Timestamp("2026-01-05")
SINCE = pd.Timestamp("2026-02-02")
WEEKS = 8
SIZES = {"short": 6000, "long": 6000}


def company(root: Path, shape: str, scenario: str) -> Company:
    return make_company(
        root / scenario,
        n_accounts=SIZES[shape],
        seed=3,
        start="2025-07-01",
        export_time="2026-05-01",
        transform=lambda d: apply_scenario(d, scenario, since=SINCE),
        **SHAPES[shape],
    )


@pytest.fixture(scope="module", params=list(SIZES))
def trained(request, tmp_path_factory) -> tuple[str, Path, str, Champion]:
    """One champion per company shape, trained on the data known at TRAINED_AT."""
    shape = request.param
    root = tmp_path_factory.mktemp(f"monitor-{shape}")
    uri, champions = train_champions(company(root, shape, "none"), root, str(TRAINED_AT))
    champion = champions["conversion"]
    assert champion is not None and champion.trained_at == TRAINED_AT
    return shape, root, uri, champion


def weekly(trained, scenario: str) -> tuple[Company, list[MonitorReport]]:
    shape, root, _, champion = trained
    co = company(root, shape, scenario)
    runs = [
        run_monitor(
            co.config, co.tables, {"conversion": champion}, as_of=SINCE + pd.Timedelta(weeks=k)
        )
        for k in range(1, WEEKS + 1)
    ]
    return co, runs


def test_no_change_stays_quiet(trained):
    _, runs = weekly(trained, "none")
    verdicts = [r.verdict.value for r in runs]
    # At most one false alert in the weekly runs (the benchmark's bar is 1 in 20).
    assert sum(v not in ("healthy", "too early to tell") for v in verdicts) <= 1, verdicts


def test_tracking_break_is_data_broken_on_the_first_run(trained):
    _, runs = weekly(trained, "tracking")
    first = runs[0]
    assert first.verdict.value == "data broken"
    stopped = [a for a in first.alerts if a.kind.value == "data" and "stopped" in a.evidence]
    assert any("ev_pipeline_run_succeeded" in a.subject for a in stopped), first.alerts
    assert any(a.since == SINCE.date().isoformat() for a in stopped)


def test_onboarding_change_shifts_inputs_never_outcomes(trained):
    _, runs = weekly(trained, "onboarding")
    verdicts = [r.verdict.value for r in runs]
    assert "outcomes shifted" not in verdicts, verdicts
    assert "inputs shifted" in verdicts, verdicts


def test_pricing_change_shifts_outcomes(trained):
    _, runs = weekly(trained, "pricing")
    verdicts = [r.verdict.value for r in runs]
    assert "outcomes shifted" in verdicts, verdicts
    hit = next(r for r in runs if r.verdict.value == "outcomes shifted")
    alert = next(a for a in hit.alerts if a.kind.value == "outcomes")
    # The change starts at SINCE: the alert's start is at most two weeks off.
    assert abs(pd.Timestamp(alert.since) - SINCE) <= pd.Timedelta(weeks=2), alert
    assert "conversions vs" in alert.evidence and "expected so far" in alert.evidence
    assert hit.kinds["conversion"].test.direction == "fewer"


def test_cli_writes_the_report_twice_the_same_and_exits_by_verdict(trained):
    shape, root, uri, _ = trained
    if shape != "short":
        pytest.skip("the command line is exercised once, on the short company")
    co = company(root, shape, "tracking")
    as_of = (SINCE + pd.Timedelta(weeks=1)).date().isoformat()
    out = root / "out"
    args = ["monitor", "-c", str(co.root / "trialcast.toml"), "--as-of", as_of]
    args += ["--tracking-uri", uri]
    env = {"TRIALCAST_OUTPUT_DIR": str(out)}
    first = runner.invoke(app, args, env=env)
    assert first.exit_code == 1, first.output
    path = out / "monitoring" / f"{as_of}.json"
    text = path.read_text()
    report = json.loads(text)
    assert report["verdict"] == "data broken"
    assert {"kind", "subject", "since", "evidence"} <= set(report["alerts"][0])
    assert report["cohorts"] and "expected_so_far" in report["cohorts"][0]
    assert json.loads((path.parent / "latest.json").read_text())["as_of"] == report["as_of"]
    second = runner.invoke(app, args, env=env)
    assert second.exit_code == 1 and path.read_text() == text
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(co.config.registry.experiment + "-monitoring")
    assert exp is not None
    assert len(client.search_runs([exp.experiment_id])) == 1
    bad = runner.invoke(app, [*args[:3], "--as-of", "not-a-date"], env=env)
    assert bad.exit_code == 2 and "not a date" in bad.output


def test_retrain_when_needed_refuses_broken_data_and_keeps_a_healthy_champion(trained):
    shape, root, uri, champion = trained
    if shape != "short":
        pytest.skip("the command line is exercised once, on the short company")
    as_of = (SINCE + pd.Timedelta(weeks=1)).date().isoformat()
    env = {"TRIALCAST_OUTPUT_DIR": str(root / "out-retrain")}
    client = MlflowClient(uri)
    versions = len(client.search_model_versions(f"name = '{champion.name}'"))
    for scenario, code, word in (("tracking", 3, "refused"), ("none", 0, "kept")):
        co = company(root, shape, scenario)
        args = ["retrain", "-c", str(co.root / "trialcast.toml"), "--when-needed"]
        result = runner.invoke(app, [*args, "--as-of", as_of, "--tracking-uri", uri], env=env)
        assert result.exit_code == code, result.output
        assert word in result.output
    # Neither run trained anything: the registry holds the same versions.
    assert len(client.search_model_versions(f"name = '{champion.name}'")) == versions
