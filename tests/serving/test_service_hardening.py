"""Issue 14 over real HTTP: the service under abuse (metrics, session, headers, login
throttle, input ranges, error shape), its process (fail fast, SIGTERM stops the tree,
a big request does not hold the event loop) and the sales view in headless Chromium.

Models are trained on a small generated company (not the demo's size or ids: one
id holds a "/") into a temporary MLflow store; the service is the real ``trialcast
serve`` / ``bentoml serve``; screenshots are kept under the test's tmp dir and
``tests/artifacts/`` (ignored by git).
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pytest
import requests
from factories import make_champions
from servers import CookieClient as _Client

from features.build import FeatureBuilder
from features.config import load_demo_config
from features.demo.generator import generate_demo_data
from serving.batch import score_customers
from serving.scoring import load_scoring_models
from training.train import RecordTarget, train_models
from trialcast.bench.serving_load import stop_server
from trialcast.forecast_job import (
    ForecastInputs,
    ForecastOptions,
    prepare_scores_for_forecast,
    run_forecast,
)
from trialcast.serve_job import ModelSource, run_score_job

pytestmark = pytest.mark.slow

TOKEN = "hardening-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
AS_OF = pd.Timestamp("2026-10-15")
REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
ARTIFACTS = REPO / "tests" / "artifacts"
SLASH_ID = "acme/eu-1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def company(tmp_path_factory):
    """A 1,200-account generated company, both models, and three days of daily scores."""
    root = tmp_path_factory.mktemp("hardening")
    demo = generate_demo_data(1200, seed=23)
    config = load_demo_config()
    tables = demo.tables
    acc = tables.accounts
    open_then = (
        (acc["trial_start"] < AS_OF - pd.Timedelta(days=7))
        & (acc["trial_end"] > AS_OF - pd.Timedelta(days=1))
        & ~(acc["converted_at"] < AS_OF)
    )
    first = str(acc.loc[open_then, "account_id"].iloc[0])  # an open trial on every scoring day
    for frame in (tables.accounts, tables.events, tables.communications):
        if frame is not None:
            ids = frame["account_id"].astype(str)
            frame["account_id"] = ids.where(ids != first, SLASH_ID)
    uri = f"sqlite:///{root / 'mlflow.db'}"
    builder = FeatureBuilder.from_tables(tables, config)
    train_models(config, builder, target=RecordTarget(tracking_uri=uri))
    make_champions(config, uri)  # both models served (the gate is tested elsewhere)
    models = load_scoring_models(config, tracking_uri=uri, cache_root=str(root / "cache"))
    scores = root / "scores" / "latest.parquet"
    for days_before in (6, 3, 0):
        result = run_score_job(
            config,
            out=scores,
            as_of=AS_OF - pd.Timedelta(days=days_before),
            tables=tables,
            source=ModelSource(models=models),
        )
    scores_frame = pd.read_parquet(result.path)
    run_forecast(
        config,
        prepare_scores_for_forecast(scores_frame, tables.accounts),
        root / "forecast",
        inputs=ForecastInputs(
            history=tables.accounts, customers=score_customers(config, tables, models, as_of=AS_OF)
        ),
        options=ForecastOptions(model_version="hardening models"),
    )
    return {
        "root": root,
        "uri": uri,
        "config": config,
        "tables": tables,
        "models": models,
        "scores_path": result.path,
        "scores": pd.read_parquet(result.path),
    }


def _env(company, **extra: str) -> dict[str, str]:
    root = company["root"]
    return {
        **os.environ,
        "TRIALCAST_API_TOKEN": TOKEN,
        "TRIALCAST_TRACKING_URI": company["uri"],
        "TRIALCAST_SERVING_CACHE": str(root / "cache"),
        "TRIALCAST_SCORES_PATH": str(company["scores_path"]),
        "TRIALCAST_FORECAST_DIR": str(root / "forecast"),
        "TRIALCAST_STATE_DIR": str(root / f"state-{time.monotonic_ns()}"),
        "OMP_NUM_THREADS": "1",
        **extra,
    }


def _start(company, command: list[str], env: dict[str, str], log: Path):
    port = _free_port()
    out = open(log, "wb")  # noqa: SIM115 - closed by the caller via proc
    proc = subprocess.Popen(
        [*command, "--host", "127.0.0.1", "--port", str(port)],
        cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    t0 = time.monotonic()
    while True:
        if proc.poll() is not None:
            raise RuntimeError(log.read_text()[-3000:])
        try:
            if requests.get(f"{base}/readyz", timeout=1).status_code == 200:
                break
        except requests.RequestException:
            pass
        if time.monotonic() - t0 > 120:
            raise RuntimeError("server not ready in 120 s")
        time.sleep(0.1)
    return proc, base, port, time.monotonic() - t0


@pytest.fixture(scope="module")
def server(company):
    """One worker (so the event-loop test cannot hide behind a second worker)."""
    log = company["root"] / "server.log"
    proc, base, _, _ = _start(
        company,
        [str(BIN / "bentoml"), "serve", "serving.service:TrialcastService"],
        _env(company, TRIALCAST_WORKERS="1"),
        log,
    )
    try:
        yield base
    finally:
        stop_server(proc)


def _features(company, n: int = 20) -> list[dict]:
    builder = FeatureBuilder.from_tables(
        company["tables"], company["config"], company["models"].spec()
    )
    pos = np.linspace(0, len(builder.index.account_ids) - 1, n).astype(int)
    frame = builder.build(pos, np.full(n, int(AS_OF.value // 10**9))).drop(columns=["as_of"])
    frame = frame[frame["customer_days_paying"].isna()]
    # a trial that has not started at AS_OF has negative elapsed days: never scored (400)
    frame = frame[~(frame["trial_days_elapsed"] < 0)]
    raw = frame.astype(object).where(frame.notna(), None).to_dict("records")
    return json.loads(json.dumps(raw))


# --- process ---------------------------------------------------------------------------


@pytest.mark.parametrize("command", [["trialcast", "serve"], ["bentoml", "serve", "serving.service:TrialcastService"]])  # fmt: skip
def test_no_token_fails_fast_with_a_clear_message(command):
    env = {k: v for k, v in os.environ.items() if k != "TRIALCAST_API_TOKEN"}
    before = os.times()
    t0 = time.monotonic()
    done = subprocess.run(
        [str(BIN / command[0]), *command[1:], "--port", str(_free_port())],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    elapsed = time.monotonic() - t0
    after = os.times()
    cpu = (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )
    assert done.returncode == 2
    assert "TRIALCAST_API_TOKEN" in done.stderr and "Traceback" not in done.stderr
    # it refuses before loading any model: a few seconds of CPU at most (CPU time, which
    # load on a shared machine does not inflate; the wall-clock figure is a benchmark's job,
    # see docs/benchmarks.md). Before, it took 7-9 s or never exited.
    assert cpu < 4.0, f"{command[0]} used {cpu:.1f} s of CPU to refuse ({elapsed:.1f} s wall)"


def test_sigterm_to_trialcast_serve_stops_the_whole_tree(company):
    log = company["root"] / "serve-cli.log"
    proc, _base, port, ready = _start(
        company, [str(BIN / "trialcast"), "serve"], _env(company), log
    )
    try:
        tree = [proc.pid] + [p.pid for p in psutil.Process(proc.pid).children(recursive=True)]
        assert len(tree) >= 3  # arbiter + one worker per core (2 here)
        os.kill(proc.pid, signal.SIGTERM)  # only the process we started, as a supervisor would
        proc.wait(timeout=30)
        deadline = time.monotonic() + 15
        while any(psutil.pid_exists(p) and psutil.Process(p).status() != "zombie" for p in tree):
            assert time.monotonic() < deadline, "workers outlived trialcast serve"
            time.sleep(0.2)
        with socket.socket() as s:  # the port is free for the next start
            s.bind(("127.0.0.1", port))
    finally:
        stop_server(proc)
    (ARTIFACTS).mkdir(parents=True, exist_ok=True)
    (company["root"] / "ready_seconds.txt").write_text(f"{ready:.2f}\n")


def test_a_big_request_does_not_hold_the_event_loop(server, company):
    records = _features(company, 60)
    body = {
        "accounts": [{"account_id": str(i), "features": records[i % len(records)]}
                     for i in range(1000)],
        "explain_all": True,
    }  # fmt: skip

    def big() -> float:
        t0 = time.monotonic()
        r = requests.post(server + "/score", json=body, headers=AUTH, timeout=120)
        assert r.status_code == 200, r.text[:300]
        return time.monotonic() - t0

    idle = []
    for _ in range(40):
        t0 = time.monotonic()
        requests.get(server + "/livez", timeout=10)
        idle.append(time.monotonic() - t0)
        time.sleep(0.02)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(big), pool.submit(big)]
        latencies = []
        while not all(f.done() for f in futures):
            t0 = time.monotonic()
            assert requests.get(server + "/livez", timeout=10).status_code == 200
            latencies.append(time.monotonic() - t0)
            time.sleep(0.02)
        busy = [f.result() for f in futures]
    assert min(busy) > 0.2 and len(latencies) >= 10  # the probe really ran during the work
    # Before the fix the probe waited for the whole request (1-4 s): now it is answered
    # while the work runs, in far less than the request takes. The p99 < 100 ms target
    # is a benchmark figure (docs/benchmarks.md), not asserted here: scheduling on a
    # shared 2-core machine moves it.
    worst = max(latencies)
    assert worst < 0.5 * min(busy), (worst, min(busy), sorted(latencies)[-5:])
    assert np.median(latencies) < max(0.1, 3 * float(np.median(idle))), sorted(latencies)[-5:]


# --- security --------------------------------------------------------------------------


def test_metrics_have_bounded_series_and_no_account_ids(server, company):
    account = str(company["scores"]["account_id"].iloc[0])
    for i in range(300):
        requests.get(f"{server}/junk-{i}/x", timeout=5)
    for _ in range(3):
        assert requests.get(f"{server}/accounts/{account}", headers=AUTH, timeout=5).ok
    text = requests.get(server + "/metrics", timeout=5).text
    endpoints = set(re.findall(r'endpoint="([^"]*)"', text))
    assert "/accounts/{account_id}" in endpoints and "other" in endpoints
    assert not any("junk" in e or account in e for e in endpoints), endpoints
    assert len(endpoints) < 25 and len(text) < 200_000


def _session() -> _Client:
    return _Client()


def _login(session: _Client, base: str, token: str, next_path: str = "/ui"):
    form = session.get(f"{base}/ui/login", params={"next": next_path}, timeout=5)
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
    return session.post(
        f"{base}/ui/login",
        data={"token": token, "csrf": csrf, "next": next_path},
        allow_redirects=False,
        timeout=5,
    )


def test_ui_session_is_signed_read_only_and_not_the_token(server):
    s = _session()
    deep = f"/ui/accounts/{requests.utils.quote(SLASH_ID, safe='')}"
    r = s.get(server + deep, allow_redirects=False, timeout=5)
    assert r.status_code == 303 and "next=" in r.headers["location"]  # deep link kept
    # no CSRF token: refused even with the right API token
    r = s.post(f"{server}/ui/login", data={"token": TOKEN}, allow_redirects=False, timeout=5)
    assert r.status_code == 403
    r = _login(s, server, TOKEN, deep)
    assert r.status_code == 303 and r.headers["location"] == deep
    cookie = r.headers["set-cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    session = s.cookies.get("trialcast_session")
    assert session and TOKEN not in session
    page = s.get(server + deep, timeout=5)
    assert page.status_code == 200 and SLASH_ID in page.text  # ids with "/" work
    # the session reads pages only: no API access with it
    assert s.get(f"{server}/info", timeout=5).status_code == 401
    assert s.post(f"{server}/score", json={"accounts": []}, timeout=5).status_code == 401
    # a tampered session is no session
    s.cookies["trialcast_session"] = session[:-2] + "xx"
    assert s.get(server + "/ui", allow_redirects=False, timeout=5).status_code == 303


@pytest.mark.parametrize("path", ["/ui", "/info", "/accounts"])
def test_security_headers(server, path):
    r = requests.get(server + path, headers=AUTH, timeout=5)
    assert r.status_code == 200
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert r.headers["cache-control"] == "no-store"
    if path == "/ui":
        assert "script-src 'self'" in r.headers["content-security-policy"]
        assert "onchange=" not in r.text  # no inline script for the CSP to block


# --- input -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"accounts": [{"account_id": "a", "features": {"engagement_events_all": -3}}]},
         "engagement_events_all"),
        ({"accounts": [{"account_id": "a", "features": {"activation_rate_all": 7}}]},
         "activation_rate_all"),
        ({"accounts": [{"account_id": "a", "features": {}, "deal_value": 1e308}]}, "deal_value"),
        ({"accounts": [{"account_id": "a", "features": {}}], "surprise": 1}, "surprise"),
        ({"accounts": [{"account_id": "a", "features": {"firmo_plan": "x" * 100_000}}]},
         "firmo_plan"),
    ],
)  # fmt: skip
def test_bad_input_gets_one_short_error_shape(server, company, body, field):
    r = requests.post(server + "/score", json=body, headers=AUTH, timeout=10)
    assert r.status_code == 400, r.text[:300]
    got = r.json()
    assert set(got) == {"error", "field", "detail"}
    assert field in json.dumps(got) and len(r.content) < 1000


def test_fastapi_errors_share_the_shape_and_4xx_are_warnings(server, company):
    r = requests.get(server + "/accounts", params={"limit": 0}, headers=AUTH, timeout=5)
    assert r.status_code == 400 and set(r.json()) == {"error", "field", "detail"}
    assert r.json()["field"] == "limit"
    requests.post(server + "/score", json={"accounts": []}, headers=AUTH, timeout=5)
    time.sleep(0.5)
    log = (company["root"] / "server.log").read_text()
    assert "Traceback" not in log and "client error" in log


def test_unseen_categories_and_out_of_range_values_are_scored_with_warnings(server, company):
    features = dict(_features(company, 5)[0])
    features["firmo_plan"] = "galactic"
    features["engagement_events_all"] = 9e8
    r = requests.post(
        server + "/score",
        json={"accounts": [{"account_id": "w", "features": features}]},
        headers=AUTH,
        timeout=10,
    )
    assert r.status_code == 200, r.text[:300]
    warnings = r.json()[0]["warnings"]
    assert any("firmo_plan" in w and "not seen" in w for w in warnings), warnings
    assert any("engagement_events_all" in w and "training range" in w for w in warnings)
    plain = dict(_features(company, 5)[0])
    r = requests.post(server + "/score", json={"accounts": [{"account_id": "p", "features": plain}]},
                      headers=AUTH, timeout=10)  # fmt: skip
    assert not any("firmo_plan" in w for w in r.json()[0]["warnings"])


def test_a_trial_starting_after_as_of_is_refused(server):
    body = {
        "account": {"account_id": "f", "trial_start": "2026-11-01", "trial_end": "2026-11-15"},
        "as_of": "2026-10-15",
    }
    r = requests.post(server + "/score_events", json=body, headers=AUTH, timeout=10)
    assert r.status_code == 400 and "trial_start" in r.json()["error"]


# --- the sales view --------------------------------------------------------------------


def test_list_pages_searches_and_marks_deciding_trials(server, company):
    scores = company["scores"]
    s = _session()
    assert _login(s, server, TOKEN).status_code == 303
    first = s.get(server + "/ui", timeout=5).text
    pages = int(re.search(r"page 1 of (\d+)", first).group(1))
    seen: list[str] = []
    for page in range(1, pages + 1):
        html = s.get(server + "/ui", params={"page": page}, timeout=5).text
        seen += re.findall(r'class="account-link" href="[^"]+">([^<]+)</a>', html)
    assert sorted(seen) == sorted(scores["account_id"].astype(str))  # paging covers all
    needle = SLASH_ID[:6]
    html = s.get(server + "/ui", params={"q": needle}, timeout=5).text
    found = re.findall(r'class="account-link" href="[^"]+">([^<]+)</a>', html)
    assert found and all(needle in f for f in found) and SLASH_ID in found
    deciding = scores[scores["trial_days_left"] <= 0]
    assert len(deciding)  # the generated company has trials past their end
    assert not re.search(r">\s*-\d+\s*<", first)
    html = s.get(server + "/ui", params={"q": deciding["account_id"].iloc[0]}, timeout=5).text
    end = pd.Timestamp(deciding["trial_end"].iloc[0])
    window = end + pd.Timedelta(days=company["config"].trial.conversion_window_days)
    assert "deciding" in html and f"{end:%Y-%m-%d}" in html and f"{window:%Y-%m-%d}" in html


def test_account_page_trend_and_points_add_up(server, company):
    scores = company["scores"]
    row = scores.set_index("account_id").loc[SLASH_ID]
    s = _session()
    _login(s, server, TOKEN)
    html = s.get(f"{server}/ui/accounts/{SLASH_ID}", timeout=5).text
    assert html.count('class="trend-point"') == 3  # open on all three scoring days
    assert f"{pd.Timestamp(row['trial_start']):%Y-%m-%d}" in html
    points = [float(x) for x in re.findall(r"\(([+-][0-9.]+) pts\)", html)]
    other = float(re.search(r"all other factors: ([+-][0-9.]+) pts", html).group(1))
    base = 100 / (1 + np.exp(-row["base_value"]))
    # invariant: average account + every point == this account's probability (rounding only)
    assert abs(base + sum(points) + other - 100 * row["p_convert"]) < 0.06 * (len(points) + 2)
    assert "log-odds" in html  # on hover
    # the activation checklist with dates, from the training feature code at the same as_of
    items = re.findall(r'data-done="(yes|no)">[^<]*(?:<span class="muted">\(([^)]*)\))?', html)
    assert len(items) == len(company["config"].activation.milestones)
    start = pd.Timestamp(row["trial_start"])
    for done, when in items:
        if done == "yes":
            assert start.normalize() <= pd.Timestamp(when) <= AS_OF
        else:
            assert when == "not yet"


def test_pages_in_headless_chromium_with_screenshots(server, company, browser_paths, tmp_path):
    from browser import start_chromium
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.expected_conditions import staleness_of
    from selenium.webdriver.support.ui import Select, WebDriverWait

    driver = start_chromium(browser_paths, "--window-size=1280,1600")
    shots = [tmp_path, ARTIFACTS]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def shot(name: str) -> None:
        for folder in shots:
            assert driver.save_screenshot(str(folder / f"{name}.png"))

    try:
        driver.set_page_load_timeout(30)
        wait = WebDriverWait(driver, 30)
        deep = f"/ui/accounts/{requests.utils.quote(SLASH_ID, safe='')}"
        server = server.replace("127.0.0.1", "localhost")  # Secure cookies on plain http
        driver.get(server + deep)
        assert "/ui/login" in driver.current_url
        shot("login")
        driver.find_element(By.ID, "token").send_keys(TOKEN)
        driver.find_element(By.ID, "sign-in").click()
        # a click returns before the next page has loaded: wait for what it must show
        assert wait.until(lambda d: d.find_element(By.ID, "account-id")).text == SLASH_ID
        driver.get(server + "/ui")
        shot("accounts")
        rows = driver.find_elements(By.CSS_SELECTOR, "table#accounts tbody tr")
        assert 0 < len(rows) <= 100
        persona = rows[0].get_attribute("data-persona")
        old = driver.find_element(By.ID, "accounts")
        Select(driver.find_element(By.ID, "persona-filter")).select_by_value(persona)  # app.js
        wait.until(staleness_of(old))
        rows = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "table#accounts tbody tr"))
        assert rows and {r.get_attribute("data-persona") for r in rows} == {persona}
        link = rows[0].find_element(By.CSS_SELECTOR, "a.account-link")
        account_id = link.text
        link.click()
        assert wait.until(lambda d: d.find_element(By.ID, "account-id")).text == account_id
        assert driver.find_elements(By.CSS_SELECTOR, "#trend svg circle.trend-point")
        assert driver.find_elements(By.CSS_SELECTOR, "#waterfall svg rect.bar")
        shot("account")
        driver.get(server + "/ui/forecast")
        shot("forecast")
        page = driver.page_source
        currency = company["config"].currency
        assert re.search(rf"{currency} \d{{1,3}}(,\d{{3}})+", page)  # thousands separated
        assert "Expected lost to churn" in page and "e+0" not in page
        months = driver.find_elements(By.CSS_SELECTOR, "#months tbody tr")
        assert months and driver.find_elements(By.CSS_SELECTOR, "svg rect.month-bar")
        logs = driver.get_log("browser") if hasattr(driver, "get_log") else []
        assert not [x for x in logs if "Content Security Policy" in x.get("message", "")], logs
    finally:
        driver.quit()
    for name in ("login", "accounts", "account", "forecast"):
        assert (tmp_path / f"{name}.png").stat().st_size > 5_000


def test_login_is_throttled_with_back_off(server):
    s = _session()
    for _ in range(5):
        assert _login(s, server, "wrong-token-wrong-token").status_code == 401
    assert _login(s, server, "wrong-token-wrong-token").status_code == 401  # lock-out starts
    r = _login(s, server, TOKEN)
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1  # even the right one
    time.sleep(int(r.headers["retry-after"]) + 0.2)
    assert _login(s, server, TOKEN).status_code == 303
