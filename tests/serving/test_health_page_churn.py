"""The Model health page and gauges with a churn champion: a generated non-demo company
(``tests/churn_company.py``) whose paying accounts churn more from ``SINCE``, monitored
two weeks later, shown by the real BentoML service and read in headless Chromium."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest
import requests
from churn_company import SINCE, churn_company
from servers import bentoml_server

from trialcast.monitoring.job import run_monitor, write_report

pytestmark = pytest.mark.slow
TOKEN = "health-page-churn-token"


@pytest.fixture(scope="module")
def report(churn_trained, tmp_path_factory):
    """The short company's churn scenario monitored at ``SINCE`` + 2 weeks; the report on disk."""
    trained = churn_trained("short")
    root = tmp_path_factory.mktemp("health-churn")
    co = churn_company(trained.root, trained.shape, "churn")
    result = run_monitor(
        co.config, co.tables, trained.champions, as_of=SINCE + pd.Timedelta(weeks=2)
    )
    path = write_report(result, root)
    data = json.loads(path.read_text())
    # The premise: the churn champion rang, the conversion champion did not.
    assert data["models"]["churn"]["verdict"] == "outcomes shifted"
    assert data["models"]["conversion"]["verdict"] != "outcomes shifted"
    return {"root": root, "uri": trained.uri, "config": co.root / "trialcast.toml", "json": data}


@pytest.fixture(scope="module")
def server(report):
    env = {
        "TRIALCAST_API_TOKEN": TOKEN,
        "TRIALCAST_CONFIG": str(report["config"]),
        "TRIALCAST_TRACKING_URI": report["uri"],
        "TRIALCAST_SERVING_CACHE": str(report["root"] / "cache"),
        "TRIALCAST_OUTPUT_DIR": str(report["root"]),
        "OMP_NUM_THREADS": "1",
    }
    with bentoml_server(env, report["root"] / "server.log", ready_within=120) as base:
        yield base


def gauge(metrics: str, metric: str, /, **labels: str) -> float | None:
    """The value of ``metric{labels}`` in a Prometheus text exposition (labels in order)."""
    inner = ",".join(f'{k}="{re.escape(v)}"' for k, v in labels.items())
    found = re.search(rf"^{metric}\{{{inner}\}} (\S+)$", metrics, flags=re.MULTILINE)
    return None if found is None else float(found.group(1))


def test_gauges_carry_both_models_by_label(server, report):
    metrics = requests.get(f"{server}/metrics", timeout=10).text
    data = report["json"]
    # The report-wide series keep their names and labels.
    assert gauge(metrics, "trialcast_model_health_verdict", verdict=data["verdict"]) == 1.0
    outcomes = sum(a["kind"] == "outcomes" for a in data["alerts"])
    assert gauge(metrics, "trialcast_model_health_alerts", kind="outcomes") == outcomes
    for kind in ("conversion", "churn"):
        section = data["models"][kind]
        test = section["outcome_test"]
        for name, value in (
            ("expected_so_far", test["expected_so_far"]),
            ("realised_so_far", test["realised_so_far"]),
            ("outcome_log_lr", test["log_likelihood_ratio"]),
            ("outcome_threshold", test["threshold"]),
            ("prediction_psi", section["drift"]["prediction_psi"]),
            ("as_of_timestamp", pd.Timestamp(data["as_of"]).timestamp()),
        ):
            got = gauge(metrics, "trialcast_model_health_value", model=kind, name=name)
            assert got == pytest.approx(value, rel=1e-6), (kind, name)
        own = gauge(
            metrics, "trialcast_model_health_model_verdict", model=kind, verdict=section["verdict"]
        )
        assert own == 1.0, (kind, section["verdict"])
    churn_llr = gauge(metrics, "trialcast_model_health_value", model="churn", name="outcome_log_lr")
    churn_at = gauge(
        metrics, "trialcast_model_health_value", model="churn", name="outcome_threshold"
    )
    assert churn_llr is not None and churn_at is not None and churn_llr > churn_at  # it rang


def test_churn_section_in_headless_chromium(server, report, browser_paths):
    from browser import signed_in_chromium
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    data = report["json"]
    churn = data["models"]["churn"]
    with signed_in_chromium(browser_paths, server, TOKEN) as (driver, base):
        driver.get(base + "/ui/health")
        verdict = WebDriverWait(driver, 30).until(lambda d: d.find_element(By.ID, "verdict"))
        assert verdict.text == data["verdict"] == "outcomes shifted"
        assert not driver.find_elements(By.ID, "churn-none")
        assert driver.find_element(By.ID, "churn-verdict").text == "outcomes shifted"
        section = driver.find_element(By.ID, "churn")
        counted = f"{churn['outcome_test']['realised_so_far']} churns so far vs"
        assert counted in section.text
        alerts = driver.find_elements(By.CSS_SELECTOR, "#churn-alerts li")
        assert [a.get_attribute("data-kind") for a in alerts] == [
            a["kind"] for a in churn["alerts"]
        ]
        assert any("churn model" in a.text and "churns vs" in a.text for a in alerts)
        # Churns so far vs expected, per snapshot cohort: table and chart, the churn model's own.
        cohorts = churn["cohorts"]
        assert cohorts and cohorts != data["cohorts"]
        rows = driver.find_elements(By.CSS_SELECTOR, "#churn-cohort-table tbody tr")
        assert [r.get_attribute("data-cohort") for r in rows] == [c["cohort"] for c in cohorts]
        cells = rows[0].find_elements(By.TAG_NAME, "td")
        assert [c.text for c in cells[1:4]] == [
            str(cohorts[0]["trials"]),
            f"{cohorts[0]['expected_so_far']:.1f}",
            str(cohorts[0]["realised_so_far"]),
        ]
        chart = driver.find_element(By.ID, "churn-cohort-chart")
        assert len(chart.find_elements(By.CSS_SELECTOR, "rect.realised_so_far")) == len(cohorts)
        assert "churns" in chart.get_attribute("aria-label")
        # The estimated AUC is shown, and said plainly to be reported, not judged.
        note = driver.find_element(By.ID, "churn-auc-note").text
        assert "Reported, not judged" in note and "no alert" in note
        # Drift of the churn model's own features.
        names = [
            r.text.split(" ")[0]
            for r in driver.find_elements(By.CSS_SELECTOR, "#churn-features tbody tr")
        ]
        assert names == [f["feature"] for f in churn["drift"]["top_features"]]
        # The conversion model's parts stay where they were.
        rows = driver.find_elements(By.CSS_SELECTOR, "#cohort-table tbody tr")
        assert [r.get_attribute("data-cohort") for r in rows] == [
            c["cohort"] for c in data["cohorts"]
        ]
