"""The funnel over HTTP: ``trialcast funnel``'s output served by the real ``bentoml serve``
(``GET /funnel`` with the bearer token, the ``/ui/funnel`` page in headless Chromium),
on two generated companies unlike the demo, each with a champion trained into its
own temporary MLflow store (so open cohorts carry the expected paid share)."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import requests
from company_factory import SHAPES, make_trained_company
from servers import bentoml_server

from models.loader import load_serving_model
from trialcast.funnel_job import run_funnel

pytestmark = pytest.mark.slow

TOKEN = "funnel-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
COMPANIES = {
    "short": dict(n_accounts=900, seed=61, **SHAPES["short"]),
    "long": dict(n_accounts=800, seed=62, **SHAPES["long"]),
}


@pytest.fixture(scope="module", params=sorted(COMPANIES))
def served(request, tmp_path_factory):
    """A company, its champion, its funnel written, and the service reading it."""
    root = tmp_path_factory.mktemp(f"funnel-http-{request.param}")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    company = make_trained_company(root / "data", uri, **COMPANIES[request.param])
    model = load_serving_model(company.config, "conversion", tracking_uri=uri,
                               cache_root=root / "cache")  # fmt: skip
    as_of = company.tables.export_time()
    result = run_funnel(company.config, company.tables, as_of=as_of, model=model,
                        folder=root / "funnel", out_file=root / "funnel.parquet")  # fmt: skip
    env = {
        "TRIALCAST_API_TOKEN": TOKEN,
        "TRIALCAST_CONFIG": str(company.root / "trialcast.toml"),
        "TRIALCAST_TRACKING_URI": uri,
        "TRIALCAST_SERVING_CACHE": str(root / "cache"),
        "TRIALCAST_SCORES_PATH": str(root / "scores.parquet"),
        "TRIALCAST_FUNNEL_DIR": str(root / "funnel"),
        "TRIALCAST_STATE_DIR": str(root / "state"),
        "TRIALCAST_WORKERS": "1",
    }
    with bentoml_server(env, root / "server.log", ready_within=120) as base:
        yield {"base": base, "result": result, "root": root, "company": company}


def _same(a, b) -> bool:
    if a is None or (isinstance(a, float) and math.isnan(a)):
        return b is None or (isinstance(b, float) and math.isnan(b))
    return a == pytest.approx(b) if isinstance(a, float) else a == b


def test_endpoint_serves_the_written_funnel_with_the_token(served):
    base, table = served["base"], served["result"].table
    assert requests.get(f"{base}/funnel", timeout=10).status_code == 401
    body = requests.get(f"{base}/funnel", headers=AUTH, timeout=30).json()
    assert body["as_of"] == served["result"].as_of.isoformat()
    assert body["model_version"].startswith("trialcast-conversion v")
    assert len(body["rows"]) == len(table)
    served_rows = pd.DataFrame(body["rows"]).set_index(["dimension", "segment", "cohort", "stage"])
    for r in table.to_dict("records"):
        got = served_rows.loc[(r["dimension"], r["segment"], r["cohort"], r["stage"])]
        for column in ("trials", "reached", "share", "median_days", "step_rate", "flagged",
                       "expected_share", "expected_p10", "expected_p90"):  # fmt: skip
            assert _same(r[column], got[column]), (column, r)
    # cohorts still deciding carry the champion's expectation, with P10 <= P90
    open_paid = table[table["expected_share"].notna()]
    assert len(open_paid) > 0
    assert (open_paid["expected_p10"] <= open_paid["expected_p90"]).all()
    assert (open_paid["expected_share"] >= open_paid["share"] - 1e-12).all()
    part = requests.get(f"{base}/funnel", headers=AUTH, timeout=30,
                        params={"dimension": "motion", "segment": "sales-assisted"}).json()  # fmt: skip
    assert part["rows"] and {(r["dimension"], r["segment"]) for r in part["rows"]} == {
        ("motion", "sales-assisted")
    }
    assert (served["root"] / "funnel.parquet").exists() and (served["root"] / "funnel.png").exists()
    written = pd.read_parquet(served["root"] / "funnel.parquet")
    assert len(written) == len(table)


def test_funnel_page_in_headless_chromium(served, browser_paths):
    from browser import start_chromium
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.expected_conditions import staleness_of
    from selenium.webdriver.support.ui import Select, WebDriverWait

    table = served["result"].table
    driver = start_chromium(browser_paths)
    try:
        driver.set_page_load_timeout(60)
        wait = WebDriverWait(driver, 60)
        base = served["base"].replace("127.0.0.1", "localhost")  # the session cookie is Secure
        driver.get(base + "/ui/funnel")
        assert "/ui/login" in driver.current_url
        driver.find_element(By.ID, "token").send_keys(TOKEN)
        driver.find_element(By.ID, "sign-in").click()
        rows = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "table#heat tbody tr"))
        total = table[table["dimension"] == "total"]
        assert len(rows) == total["cohort"].nunique()
        stages = [s.name for s in served["result"].stages]
        assert [
            c.get_attribute("data-stage") for c in rows[0].find_elements(By.CSS_SELECTOR, "td.heat")
        ] == stages
        _check_cells(rows, total, By)
        bars = driver.find_elements(By.CSS_SELECTOR, "#funnel-chart svg rect.funnel-bar")
        assert len(bars) == len(stages)
        assert driver.find_elements(By.CSS_SELECTOR, "#heat .expected")  # open cohorts
        # the motion toggle shows the sales-assisted trials' own funnel
        old = driver.find_element(By.ID, "heat")
        Select(driver.find_element(By.ID, "motion-toggle")).select_by_value("motion:sales-assisted")
        wait.until(staleness_of(old))
        rows = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "table#heat tbody tr"))
        assisted = table[(table["dimension"] == "motion") & (table["segment"] == "sales-assisted")]
        assert len(rows) == assisted["cohort"].nunique()
        _check_cells(rows, assisted, By)
        assert (
            "motion: sales-assisted"
            in driver.find_element(By.CSS_SELECTOR, "#funnel-chart h2").text
        )
    finally:
        driver.quit()


def _check_cells(rows, part: pd.DataFrame, by) -> None:
    """Each shown cell's share and count are the table's."""
    indexed = part.set_index(["cohort", "stage"])
    for row in rows[:10]:
        cohort = row.get_attribute("data-cohort")
        for cell in row.find_elements(by.CSS_SELECTOR, "td.heat"):
            expected = indexed.loc[(cohort, cell.get_attribute("data-stage"))]
            assert float(cell.get_attribute("data-share")) == pytest.approx(
                expected["share"], abs=1e-6
            )
            assert int(cell.get_attribute("data-reached")) == expected["reached"]
