"""Load generation for the serving benchmark: open-loop request streams, the liveness
probe while big requests run, and start-up to ready.

Every figure comes from a process separate from the server (the load generator runs
in its own process too, so its own CPU shows up honestly on a shared machine).
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

TOKEN = "bench-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def percentiles(ms: list[float]) -> dict[str, float]:
    """p50, p99 and mean of latencies in ms."""
    arr = np.asarray(ms, dtype=float)
    return {
        "p50": float(np.percentile(arr, 50)),
        "p99": float(np.percentile(arr, 99)),
        "mean": float(arr.mean()),
    }


def _load_worker(
    url: str, bodies: list[bytes] | None, rate: float, duration: float, out: mp.Queue
) -> None:
    """Open-loop load: one request every ``1/rate`` s for ``duration`` s (separate process).

    ``bodies`` None sends GETs (the client's own cost against a trivial endpoint). One
    aiohttp session with keep-alive connections, as a real client would hold them.
    """
    import aiohttp

    async def run() -> dict[str, Any]:
        headers = {**AUTH, "Content-Type": "application/json"}
        connector = aiohttp.TCPConnector(limit=256)
        latencies: list[float] = []
        errors = 0
        async with aiohttp.ClientSession(connector=connector) as session:

            async def call(i: int) -> int:
                if bodies is None:
                    async with session.get(url, headers=headers) as r:
                        await r.read()
                        return r.status
                async with session.post(url, data=bodies[i % len(bodies)], headers=headers) as r:
                    await r.read()
                    return r.status

            for i in range(20):  # warm the connection pool
                await call(i)
            n = int(rate * duration)
            start = time.perf_counter() + 0.05

            async def one(i: int) -> None:
                nonlocal errors
                scheduled = start + i / rate
                delay = scheduled - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                try:
                    if await call(i) != 200:
                        errors += 1
                except aiohttp.ClientError:
                    errors += 1
                latencies.append((time.perf_counter() - scheduled) * 1000)

            await asyncio.gather(*(one(i) for i in range(n)))
            achieved = n / (time.perf_counter() - start)
        return {"latencies": latencies, "errors": errors, "achieved_rate": achieved}

    out.put(asyncio.run(run()))


def run_load(url: str, bodies: list[bytes] | None, rate: float, duration: float) -> dict[str, Any]:
    """Latency percentiles of ``rate`` req/s for ``duration`` s, from a separate process."""
    ctx = mp.get_context("spawn")
    queue: mp.Queue = ctx.Queue()
    proc = ctx.Process(target=_load_worker, args=(url, bodies, rate, duration, queue))
    proc.start()
    result = queue.get(timeout=duration + 120)
    proc.join(timeout=30)
    return {
        **percentiles(result["latencies"]),
        "errors": result["errors"],
        "achieved_rate": result["achieved_rate"],
        "n": len(result["latencies"]),
    }


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median of each figure over repeated load runs (and how many runs)."""
    keys = ("p50", "p99", "mean", "achieved_rate")
    out: dict[str, Any] = {k: float(np.median([r[k] for r in runs])) for k in keys}
    out["errors"] = int(sum(r["errors"] for r in runs))
    out["runs"] = len(runs)
    out["p99_all"] = [round(float(r["p99"]), 1) for r in runs]
    return out


def post(url: str, payload: bytes, timeout: float = 120) -> Any:
    """POST a JSON body with the token; the parsed response (raises on an HTTP error)."""
    import requests

    r = requests.post(
        url, data=payload, headers={**AUTH, "Content-Type": "application/json"}, timeout=timeout
    )
    r.raise_for_status()
    return r.json()


def livez_during_big_requests(
    base: str, payload: bytes, *, rounds: int = 3, concurrent: int = 2, gap: float = 0.01
) -> dict[str, Any]:
    """``/livez`` latency while big requests are in flight.

    Each round sends ``concurrent`` big requests at once (alternately to ``/score`` and
    ``/score_batch``) and, until all are answered, probes ``/livez`` every ``gap`` s on
    a new connection each time, as an orchestrator's probe does (so a probe can land
    on a busy worker).
    """
    import requests

    probes: list[float] = []
    busy: list[float] = []
    for k in range(rounds):
        threads: list[threading.Thread] = []
        for j in range(concurrent):
            route = "/score" if (k + j) % 2 == 0 else "/score_batch"

            def big(route: str = route) -> None:
                t0 = time.perf_counter()
                post(base + route, payload)
                busy.append(time.perf_counter() - t0)

            threads.append(threading.Thread(target=big))
        for t in threads:
            t.start()
        time.sleep(0.02)  # let the bodies arrive first
        while any(t.is_alive() for t in threads):
            t0 = time.perf_counter()
            r = requests.get(base + "/livez", timeout=30, headers={"Connection": "close"})
            probes.append((time.perf_counter() - t0) * 1000)
            if r.status_code != 200:
                raise RuntimeError(f"/livez answered {r.status_code}")
            time.sleep(gap)
        for t in threads:
            t.join()
    return {
        **percentiles(probes),
        "max": float(max(probes)),
        "probes": len(probes),
        "big_request_s": float(np.median(busy)),
    }


def start_server(env: Mapping[str, str], log_path: Path, *, timeout: float = 180) -> tuple:
    """``bentoml serve serving.service:TrialcastService`` on a free port; returns
    ``(process, base_url, seconds_to_ready)`` once ``/readyz`` answers 200."""
    bentoml = Path(sys.executable).with_name("bentoml")
    command = [str(bentoml), "serve", "serving.service:TrialcastService", "--host", "127.0.0.1"]
    return start_http_process(command, "/readyz", env, log_path, timeout=timeout)


def start_http_process(
    command: list[str],
    ready_path: str,
    env: Mapping[str, str],
    log_path: Path,
    *,
    timeout: float = 180,
) -> tuple:
    """``command --port <free port>`` in its own process group; returns ``(process,
    base_url, seconds_to_ready)`` once ``ready_path`` answers 200.

    Raises:
        RuntimeError: the process died or was not ready in ``timeout`` seconds (with
            the end of its log).
    """
    import socket

    import requests

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    log = open(log_path, "ab")  # noqa: SIM115 - the child holds it; closed with the process
    t_start = time.perf_counter()
    proc = subprocess.Popen(
        [*command, "--port", str(port)],
        env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    log.close()
    base = f"http://127.0.0.1:{port}"
    while True:
        try:
            if requests.get(base + ready_path, timeout=1).status_code == 200:
                break
        except requests.RequestException:
            pass
        if proc.poll() is not None or time.perf_counter() - t_start > timeout:
            stop_server(proc)
            raise RuntimeError(log_path.read_text()[-3000:])
        time.sleep(0.05)
    return proc, base, time.perf_counter() - t_start


def stop_server(proc: subprocess.Popen) -> None:
    """SIGTERM to the server's process group; wait for it."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
