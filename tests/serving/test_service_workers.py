"""A crashed worker does not drop requests: the real ``bentoml serve`` with its default
worker count, one worker killed with SIGKILL, then requests from outside.

Two generated companies unlike the demo (renamed vocabulary, other trial lengths,
windows, conversion lags and sizes), each trained into its own temporary MLflow store.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import signal
import time

import numpy as np
import pandas as pd
import psutil
import pytest
import requests
from company_factory import SHAPES, make_trained_company
from servers import bentoml_server_process

from features.build import FeatureBuilder
from serving.scoring import load_scoring_models, score_feature_records

pytestmark = pytest.mark.slow

TOKEN = "workers-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}

COMPANIES = {
    "short": dict(n_accounts=900, seed=31, **SHAPES["short"]),
    "long": dict(n_accounts=700, seed=32, **SHAPES["long"]),
}


@pytest.fixture(scope="module", params=sorted(COMPANIES))
def company(request, tmp_path_factory):
    """A generated company with both models registered, and feature records of its trials."""
    root = tmp_path_factory.mktemp(f"workers-{request.param}")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    company = make_trained_company(root / "data", uri, **COMPANIES[request.param])
    models = load_scoring_models(company.config, tracking_uri=uri, cache_root=str(root / "c"))
    as_of = company.tables.export_time().normalize()
    fb = FeatureBuilder.from_tables(company.tables, company.config, models.spec())
    pos = np.linspace(0, len(fb.index.account_ids) - 1, 40).astype(int)
    frame = fb.build(pos, np.full(len(pos), int(pd.Timestamp(as_of).value // 10**9)))
    frame = frame.drop(columns=["as_of"])
    frame = frame[frame["customer_days_paying"].isna()]
    raw = frame.astype(object).where(frame.notna(), None).to_dict("records")
    known = models.known_features  # (a company too small for a churn model has fewer)
    records = [{k: v for k, v in r.items() if k in known} for r in json.loads(json.dumps(raw))]
    expected = [r["p_convert"] for r in score_feature_records(models, records)]
    env = {
        "TRIALCAST_API_TOKEN": TOKEN,
        "TRIALCAST_CONFIG": str(company.root / "trialcast.toml"),
        "TRIALCAST_TRACKING_URI": uri,
        "TRIALCAST_SERVING_CACHE": str(root / "cache"),
        "TRIALCAST_SCORES_PATH": str(root / "scores.parquet"),
        "TRIALCAST_STATE_DIR": str(root / "state"),
        "OMP_NUM_THREADS": "1",
    }
    os.environ.pop("TRIALCAST_WORKERS", None)  # the default worker count is under test
    return {"root": root, "env": env, "records": records, "expected": expected}


def _workers(server_pid: int) -> list[psutil.Process]:
    """The worker processes under the ``bentoml serve`` process (alive ones)."""
    return [
        p
        for p in psutil.Process(server_pid).children(recursive=True)
        if p.status() != psutil.STATUS_ZOMBIE
    ]


def _score(base: str, record: dict, account_id: str) -> float:
    """One single-account ``/score`` on a new connection (as a load balancer would open)."""
    body = {"accounts": [{"account_id": account_id, "features": record}]}
    r = requests.post(
        base + "/score", json=body, headers={**AUTH, "Connection": "close"}, timeout=30
    )
    assert r.status_code == 200, r.text[:300]
    return float(r.json()[0]["p_convert"])


def test_a_killed_worker_drops_no_request_and_comes_back(company):
    records, expected = company["records"], company["expected"]
    log = company["root"] / "server.log"
    with bentoml_server_process(company["env"], log) as (base, server):
        pid = server.pid
        before = _workers(pid)
        assert len(before) >= 2, "the default must start at least two workers"
        # every worker has loaded its models before one is killed
        deadline = time.monotonic() + 120
        while log.read_text().count("Service trialcast initialized") < len(before):
            assert time.monotonic() < deadline, "workers did not all load their models"
            time.sleep(0.5)
        victim = before[0]
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(timeout=10)

        # Requests sent after the kill, while the worker is gone or restarting: all answered,
        # each with the score the model gives in-process.
        def one(i: int) -> tuple[int, float]:
            k = i % len(records)
            return k, _score(base, records[k], f"acct-{i}")

        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(one, range(200)))
        assert len(answers) == 200
        for k, p in answers:
            assert abs(p - expected[k]) < 1e-9

        # The supervisor starts a new worker in the dead one's place.
        deadline = time.monotonic() + 120
        while True:
            now = _workers(pid)
            if len(now) == len(before) and victim.pid not in {p.pid for p in now}:
                break
            assert time.monotonic() < deadline, "the killed worker was not replaced"
            time.sleep(0.5)
        replaced = [p for p in now if p.pid not in {q.pid for q in before}]
        assert len(replaced) == 1
        for i in range(20):
            k = i % len(records)
            assert abs(_score(base, records[k], f"after-{i}") - expected[k]) < 1e-9
