"""Scoring service benchmark: latency under open-loop load, the liveness probe under big
requests, batch throughput, start-up and exact SHAP; each beside the same work done
in-process, in the same run.

Run: ``OMP_NUM_THREADS=1 python -m trialcast.bench.serving [--accounts 3000]
[--duration 5] [--repeats 3] [--starts 3]``. It trains both models on demo data into
a temporary MLflow store, starts ``bentoml serve`` on a loopback port ``--starts``
times (median time to ready), drives the last one from a separate load process (open
loop: requests leave on a fixed schedule whatever the responses do, and latency
counts from the scheduled time, so queueing is not hidden), and writes
``data/bench/serving.md`` (copied into docs/benchmarks.md) with the machine's load
average before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psutil

from models.phases import ELAPSED
from trialcast.bench.serving_load import (
    TOKEN,
    livez_during_big_requests,
    median_run,
    percentiles,
    post,
    run_load,
    start_http_process,
    start_server,
    stop_server,
)
from trialcast.bench.serving_report import RATES, render

AS_OF = pd.Timestamp("2026-10-15")


def _breakdown(models: Any, bodies: list[bytes]) -> dict[str, float]:
    """Where one single-account request's CPU goes, in-process (ms, median over ``bodies``)."""
    from pydantic import TypeAdapter

    from serving.schemas import AccountScore, FeatureAccount, FeatureCatalog, check_accounts
    from serving.scoring import score_feature_records

    FeatureCatalog.set(models.numeric, models.categorical)
    request = TypeAdapter(dict[str, list[FeatureAccount]])
    response = TypeAdapter(list[AccountScore])
    steps: dict[str, list[float]] = {"parse + validate": [], "feature checks": [],
                                     "score + reasons": [], "serialise": []}  # fmt: skip
    for body in bodies:
        t0 = time.perf_counter()
        accounts = request.validate_json(body)["accounts"]
        t1 = time.perf_counter()
        check_accounts(accounts)
        t2 = time.perf_counter()
        scored = score_feature_records(models, [a.features for a in accounts])
        for item, a in zip(scored, accounts, strict=True):
            item.update(account_id=a.account_id, as_of=AS_OF.to_pydatetime(), deal_value=None,
                        expected_value=None, warnings=[])  # fmt: skip
        t3 = time.perf_counter()
        response.dump_json(response.validate_python(scored))
        t4 = time.perf_counter()
        for key, dt in zip(steps, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            steps[key].append(dt * 1000)
    return {k: float(np.median(v)) for k, v in steps.items()}


def _in_process(results: dict[str, Any], config: Any, demo: Any, models: Any, work: Path,
                records: list[dict], singles: list[bytes], trials: pd.DataFrame) -> Path:  # fmt: skip
    """The in-process floor, breakdown, throughput and exact-SHAP figures; the scores file."""
    import shap

    from serving.batch import score_accounts, write_scores
    from serving.scoring import score_feature_records

    conv = models.conversion.model
    for r in records[:50]:
        score_feature_records(models, [r])
    lat = []
    for r in records[:2000]:
        t0 = time.perf_counter()
        score_feature_records(models, [r])
        lat.append((time.perf_counter() - t0) * 1000)
    results["inproc_single"] = percentiles(lat)
    results["breakdown"] = _breakdown(models, singles[:500])
    big = (records * (5000 // len(records) + 1))[:5000]
    t0 = time.perf_counter()
    score_feature_records(models, big)
    results["inproc_records_per_s"] = len(big) / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    scored = score_accounts(config, demo.tables, models, as_of=AS_OF)
    results["batch_job"] = {"accounts": len(scored), "seconds": time.perf_counter() - t0}
    matrix = conv.matrix_from_frame(trials)
    t0 = time.perf_counter()
    conv.explain_matrix(matrix)
    results["pred_contrib_rows_per_s"] = len(matrix) / (time.perf_counter() - t0)

    # exact SHAP: pred_contrib x a vs shap.TreeExplainer on the same booster
    rows = matrix[:2000]
    t0 = time.perf_counter()
    ours, _ = conv.explain_matrix(rows)
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    explainer = shap.TreeExplainer(conv.booster)
    theirs = np.asarray(explainer.shap_values(conv.prepare(trials.iloc[:2000])))
    if theirs.ndim == 3:  # older shap: one array per class
        theirs = theirs[-1]
    tree_part = np.array(ours, dtype=np.float64, copy=True)
    if ELAPSED in conv.features:  # the phase offset is credited to trial_days_elapsed
        tree_part[:, conv.features.index(ELAPSED)] -= conv.phase_shift(trials.iloc[:2000])
    results["shap"] = {
        "rows": len(rows),
        "max_abs_diff": float(np.max(np.abs(tree_part - conv.a * theirs))),
        "ours_s": t_ours,
        "shap_s": time.perf_counter() - t0,
    }
    return write_scores(scored, work / "scores.parquet")


def bare_transport_floor(repeats: int, duration: float, work: Path) -> dict[str, Any]:
    """``/livez`` of a bare uvicorn + Starlette app (``trialcast.bench.bare_asgi``) at
    50 req/s with the same load generator: the machine's HTTP transport floor."""
    import sys

    command = [sys.executable, "-m", "uvicorn", "trialcast.bench.bare_asgi:app"]
    proc, base, _ = start_http_process(command, "/livez", {}, work / "bare_asgi.log", timeout=60)
    try:
        runs = []
        for k in range(repeats):
            print(f"transport floor: bare ASGI /livez at 50 req/s, run {k + 1} ...", flush=True)
            runs.append(run_load(base + "/livez", None, 50, duration))
        return median_run(runs)
    finally:
        stop_server(proc)


#: Rates tried, in order, for the highest ``/score`` rate held at p99 <= ``P99_BOUND_MS``.
SEARCH_RATES = (300, 400, 500, 600, 800, 1000, 1200)
P99_BOUND_MS = 50.0


def _held(r: dict[str, Any], rate: float) -> bool:
    return bool(r["p99"] <= P99_BOUND_MS and not r["errors"] and r["achieved_rate"] >= 0.95 * rate)


def highest_rate_held(
    url: str, bodies: list[bytes], duration: float, measured: dict[int, dict[str, Any]]
) -> dict[str, Any]:
    """The highest rate ``url`` holds (p99 <= 50 ms, no errors, >= 95% of the rate
    achieved): the levels already ``measured`` (rate -> median run) first, then
    ``SEARCH_RATES`` above them while each is held (stops at the first miss)."""
    best, tried = 0, []
    for rate in sorted(measured):
        held = _held(measured[rate], rate)
        r = measured[rate]
        tried.append({"rate": rate, "p99": r["p99"], "achieved": r["achieved_rate"],
                      "errors": r["errors"], "held": held})  # fmt: skip
        if not held:
            return {"rate": best, "tried": tried}
        best = rate
    for rate in SEARCH_RATES:
        print(f"highest rate: /score at {rate} req/s ...", flush=True)
        r = run_load(url, bodies, rate, duration)
        held = _held(r, rate)
        tried.append({"rate": rate, "p99": r["p99"], "achieved": r["achieved_rate"],
                      "errors": r["errors"], "held": held})  # fmt: skip
        if not held:
            break
        best = rate
    return {"rate": best, "tried": tried}


def _over_http(results: dict[str, Any], base: str, singles: list[bytes], big_body: bytes,
               args: argparse.Namespace, work: Path) -> None:  # fmt: skip
    """Client cost, open-loop load per endpoint and rate, /livez under big requests,
    and batch throughput, against the running server at ``base``."""
    for body in singles[:100]:  # warm up both endpoints
        post(base + "/score", body)
        post(base + "/score_batch", body)
    results["load"] = {}
    results["load_avg_before_load"] = os.getloadavg()
    client = []
    for k in range(args.repeats):  # the load generator's own cost: a trivial GET
        print(f"client cost: /livez at 50 req/s, run {k + 1} ...", flush=True)
        client.append(run_load(base + "/livez", None, 50, args.duration))
    results["client"] = median_run(client)
    results["bare"] = bare_transport_floor(args.repeats, args.duration, work)
    for route in ("/score", "/score_batch"):
        for rate in RATES:
            runs = []
            for k in range(args.repeats):
                print(f"load {route} at {rate} req/s, run {k + 1} ...", flush=True)
                runs.append(run_load(base + route, singles, rate, args.duration))
            results["load"][(route, rate)] = median_run(runs)
    measured = {rate: r for (route, rate), r in results["load"].items() if route == "/score"}
    results["max_rate"] = highest_rate_held(base + "/score", singles, args.duration, measured)
    print("/livez while 1,000-account requests run ...", flush=True)
    results["livez_big"] = livez_during_big_requests(base, big_body, rounds=args.repeats)
    post(base + "/score", big_body)
    t0 = time.perf_counter()
    for _ in range(5):
        post(base + "/score", big_body)
    results["http_batch_per_s"] = 5000 / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and write ``data/bench/serving.md`` (copied into docs/benchmarks.md)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accounts", type=int, default=3000, help="demo accounts to train on")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per load level")
    parser.add_argument("--repeats", type=int, default=3, help="load runs per level (median)")
    parser.add_argument("--starts", type=int, default=3, help="server starts timed (median)")
    parser.add_argument("--out", type=Path, default=Path("data/bench/serving.md"))
    args = parser.parse_args(argv)

    from features.build import FeatureBuilder
    from features.config import load_demo_config
    from features.demo.generator import generate_demo_data
    from features.event_index import timestamp_seconds
    from serving.scoring import load_scoring_models
    from training.train import RecordTarget, train_models

    results: dict[str, Any] = {"load_avg_start": os.getloadavg()}
    work = Path(tempfile.mkdtemp(prefix="trialcast-bench-"))
    uri = f"sqlite:///{work / 'mlflow.db'}"
    print(f"training on {args.accounts} demo accounts into {uri} ...", flush=True)
    demo = generate_demo_data(args.accounts, seed=7)
    config = load_demo_config()
    builder = FeatureBuilder.from_tables(demo.tables, config)
    train_models(config, builder, target=RecordTarget(tracking_uri=uri))
    models = load_scoring_models(config, tracking_uri=uri, cache_root=str(work / "cache"))
    conv = models.conversion.model
    results.update(trees=conv.best_iteration, features=len(conv.features))

    # Feature records of every account (trials and paying), as a client would send them.
    fb = FeatureBuilder.from_tables(demo.tables, config, models.spec())
    pos = np.arange(len(fb.index.account_ids))
    frame = fb.build(pos, np.full(len(pos), timestamp_seconds(AS_OF))).drop(columns=["as_of"])
    trials = frame[frame["customer_days_paying"].isna()]
    # what the loaded models use: without a served churn model, customer_* is unknown
    trials = trials[[c for c in trials.columns if c in models.known_features]]
    raw = trials.astype(object).where(trials.notna(), None).to_dict("records")
    records = json.loads(json.dumps(raw))
    ids = [str(i) for i in trials.index]
    singles = [
        json.dumps({"accounts": [{"account_id": i, "features": r, "deal_value": 1000.0}]}).encode()
        for i, r in zip(ids, records, strict=True)
    ]
    chunk = [{"account_id": i, "features": r} for i, r in zip(ids, records, strict=True)]
    big_body = json.dumps({"accounts": (chunk * (1000 // len(chunk) + 1))[:1000]}).encode()
    scores_path = _in_process(results, config, demo, models, work, records, singles, trials)

    env = {"TRIALCAST_API_TOKEN": TOKEN, "TRIALCAST_TRACKING_URI": uri,
           "TRIALCAST_SERVING_CACHE": str(work / "cache"), "TRIALCAST_SCORES_PATH": str(scores_path),
           "TRIALCAST_STATE_DIR": str(work / "state")}  # fmt: skip
    ready = []
    for k in range(max(1, args.starts)):
        print(f"start-up {k + 1} ...", flush=True)
        proc, base, seconds = start_server(env, work / "server.log")
        ready.append(seconds)
        if k < args.starts - 1:
            stop_server(proc)
    results["ready_all"] = [round(s, 1) for s in ready]
    results["ready_s"] = float(np.median(ready))
    try:
        results["workers"] = len(psutil.Process(proc.pid).children(recursive=True))
        _over_http(results, base, singles, big_body, args, work)
    finally:
        stop_server(proc)
    results["load_avg_end"] = os.getloadavg()
    text = render(results, args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
