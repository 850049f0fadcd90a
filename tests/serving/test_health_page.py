"""The Model health page and gauges: a real monitor report, the real service, headless Chromium."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest
import requests
from factories import make_champions
from servers import bentoml_server

from features.config import load_demo_config
from features.demo.generator import generate_demo_data
from training.tracking import use_tracking_uri
from training.train import RecordTarget, train_models
from trialcast.backtest import truncate_tables
from trialcast.monitoring.champion import load_champion
from trialcast.monitoring.job import run_monitor, write_report

pytestmark = pytest.mark.slow
TOKEN = "health-page-token"
TRAINED_AT = pd.Timestamp("2026-03-02")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """A demo company trained in March, monitored at its May export; the report on disk."""
    root = tmp_path_factory.mktemp("health")
    demo = generate_demo_data(2500, seed=11, start="2025-09-01", export_time="2026-05-01")
    config = load_demo_config()
    uri = f"sqlite:///{root / 'mlflow.db'}"
    train_models(
        config,
        truncate_tables(demo.tables, TRAINED_AT),
        export_time=TRAINED_AT,
        target=RecordTarget(tracking_uri=uri, project_dir=root),
    )
    make_champions(config, uri)
    with use_tracking_uri(uri) as client:
        champion = load_champion(client, config, "conversion")
    assert champion is not None
    result = run_monitor(config, demo.tables, {"conversion": champion})
    path = write_report(result, root)
    return {"root": root, "uri": uri, "json": json.loads(path.read_text())}


@pytest.fixture(scope="module")
def server(report):
    env = {
        "TRIALCAST_API_TOKEN": TOKEN,
        "TRIALCAST_TRACKING_URI": report["uri"],
        "TRIALCAST_SERVING_CACHE": str(report["root"] / "cache"),
        "TRIALCAST_OUTPUT_DIR": str(report["root"]),
    }
    with bentoml_server(env, report["root"] / "server.log", ready_within=120) as base:
        yield base


def test_health_page_needs_the_token_and_gauges_follow_the_report(server, report):
    signed_out = requests.get(f"{server}/ui/health", timeout=10, allow_redirects=False)
    assert signed_out.status_code in (303, 307, 401)
    page = requests.get(f"{server}/ui/health", headers={"Authorization": f"Bearer {TOKEN}"})
    assert page.status_code == 200 and 'id="verdict"' in page.text
    metrics = requests.get(f"{server}/metrics", timeout=10).text
    verdict = report["json"]["verdict"]
    line = re.search(
        r'trialcast_model_health_verdict\{verdict="' + re.escape(verdict) + r'"\} ([0-9.]+)',
        metrics,
    )
    assert line is not None and float(line.group(1)) == 1.0, metrics[-2000:]
    expected = report["json"]["models"]["conversion"]["outcome_test"]["expected_so_far"]
    value = re.search(
        r'trialcast_model_health_value\{model="conversion",name="expected_so_far"\} ([0-9.e+-]+)',
        metrics,
    )
    assert value is not None and float(value.group(1)) == pytest.approx(expected, rel=1e-6)
    # No churn champion in this report: its series say so (NaN numbers, no verdict).
    churn = re.search(
        r'trialcast_model_health_value\{model="churn",name="expected_so_far"\} (\S+)', metrics
    )
    assert churn is not None and churn.group(1) == "NaN"
    assert (
        re.search(r'trialcast_model_health_model_verdict\{model="churn",[^}]*\} 1', metrics) is None
    )


def test_health_page_in_headless_chromium(server, report, browser_paths):
    from browser import signed_in_chromium
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    data = report["json"]
    with signed_in_chromium(browser_paths, server, TOKEN) as (driver, base):
        driver.get(base + "/ui/health")
        verdict = WebDriverWait(driver, 30).until(lambda d: d.find_element(By.ID, "verdict"))
        assert verdict.text == data["verdict"]
        cohorts = data["cohorts"]
        assert cohorts, "the demo has cohorts since the champion was trained"
        rows = driver.find_elements(By.CSS_SELECTOR, "#cohort-table tbody tr")
        assert [r.get_attribute("data-cohort") for r in rows] == [c["cohort"] for c in cohorts]
        chart = driver.find_element(By.ID, "cohort-chart")
        assert len(chart.find_elements(By.CSS_SELECTOR, "rect.expected_so_far")) == len(cohorts)
        assert len(chart.find_elements(By.CSS_SELECTOR, "rect.realised_so_far")) == len(cohorts)
        auc = driver.find_element(By.ID, "auc-chart")
        estimated = [c for c in cohorts if c.get("auc_estimated") is not None]
        assert len(auc.find_elements(By.CSS_SELECTOR, "circle.estimated")) == len(estimated)
        realised = [c for c in cohorts if c.get("auc_realised") is not None]
        assert len(auc.find_elements(By.CSS_SELECTOR, "rect.realised")) == len(realised)
        top = data["models"]["conversion"]["drift"]["top_features"]
        names = [
            r.text.split(" ")[0]
            for r in driver.find_elements(By.CSS_SELECTOR, "#features tbody tr")
        ]
        assert names == [f["feature"] for f in top]
        data_alerts = [a for a in data["alerts"] if a["kind"] == "data"]
        shown = driver.find_elements(By.CSS_SELECTOR, "#data-alerts li")
        assert len(shown) == len(data_alerts)
        assert (len(driver.find_elements(By.ID, "data-ok")) == 1) == (not data_alerts)
        # Only the conversion champion was monitored: the churn section says so in words.
        assert "churn" not in data["models"]
        assert "No churn champion" in driver.find_element(By.ID, "churn-none").text
        assert not driver.find_elements(By.ID, "churn-cohort-table")
