"""Dask feature benchmark: the distributed feature job on local workers vs the pandas path.

Usage (a command, never a test)::

    .venv/bin/python -m trialcast.bench.dask --events 20M --scaling 1M,2M,4M,8M,16M,32M

Data comes from ``trialcast.bench.features`` (``data/bench/events_N`` folders
with ``trialcast.toml``). The Dask job needs more than one input partition, so
each folder gets a ``dask/`` copy whose events file has 1M-row row groups (the
same rows; accounts and communications are linked). Every measurement runs in a
fresh child process: the pandas side is ``bench_features``' own child (read +
validate + account view); the Dask side starts a ``LocalCluster``, runs
``run_distributed_features`` without training sets (the same account view,
written as Parquet parts) and reports stage times, per-partition task times
from the task stream and each worker's peak RSS.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

ROW_GROUP = 1_000_000


def _parse_count(text: str) -> int:
    text = text.strip().upper()
    scale = {"K": 1_000, "M": 1_000_000}.get(text[-1], 1)
    return int(float(text.rstrip("KM")) * scale)


def ensure_dask_copy(folder: Path) -> Path:
    """``folder/dask``: the same tables, events with ``ROW_GROUP``-row row groups."""
    import pyarrow.parquet as pq

    target = folder / "dask"
    if (target / "events.parquet").exists():
        return target
    target.mkdir(parents=True, exist_ok=True)
    table = pq.read_table(folder / "events.parquet")
    tmp = target / "events.parquet.tmp"
    pq.write_table(table, tmp, row_group_size=ROW_GROUP, compression="zstd")
    tmp.rename(target / "events.parquet")
    for name in ("accounts.parquet", "communications.parquet"):
        link = target / name
        if not link.exists():
            link.symlink_to((folder / name).resolve())
    shutil.copy(folder / "trialcast.toml", target / "trialcast.toml")
    return target


def _worker_peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def child_dask(folder: Path, n_workers: int, out: Path) -> dict[str, Any]:
    """One Dask feature run on a fresh ``LocalCluster``: times, task stream and worker memory."""
    from distributed import Client, LocalCluster, get_task_stream

    from features.config import load_config
    from features.distributed import run_distributed_features

    t0 = time.perf_counter()
    cluster = LocalCluster(
        n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None
    )
    client = Client(cluster)
    startup = time.perf_counter() - t0
    try:
        config = load_config(folder / "trialcast.toml")
        t1 = time.perf_counter()
        with get_task_stream(client) as stream:
            result = run_distributed_features(config, out, client, training_sets=False)
        total = time.perf_counter() - t1
        tasks: dict[str, list[float]] = {}
        for task in stream.data:
            key = str(task["key"])
            prefix = (
                "validate"
                if "validate-partition" in key
                else "build"
                if "build-features" in key
                else "shuffle_and_read"
            )
            compute = sum(
                s["stop"] - s["start"] for s in task["startstops"] if s["action"] == "compute"
            )
            tasks.setdefault(prefix, []).append(compute)
        peaks = client.run(_worker_peak_mb)
    finally:
        client.close()
        cluster.close()
    n_part = result.n_partitions
    validate = tasks.get("validate", [])
    build = tasks.get("build", [])
    per_part = [v + b for v, b in zip(sorted(validate), sorted(build), strict=False)]
    busy = sum(sum(v) for v in tasks.values())
    return {
        "seconds": total,
        "cluster_start_s": startup,
        "stages": result.seconds,
        "events": result.n_events,
        "rows": result.rows["account_features"],
        "partitions": n_part,
        "events_per_partition": result.n_events / n_part,
        "task_seconds": {k: sum(v) for k, v in tasks.items()},
        "task_count": {k: len(v) for k, v in tasks.items()},
        "partition_validate_build_s_median": sorted(per_part)[len(per_part) // 2]
        if per_part
        else float("nan"),
        "worker_busy_s": busy,
        "worker_peak_mb": max(peaks.values()),
        "client_peak_mb": _worker_peak_mb(),
    }


def _run(args: list[str]) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-m", *args], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_dask_benchmark(
    sizes: list[int], *, compare: int, n_workers: int, work_dir: Path, console: Console
) -> list[dict[str, Any]]:
    """Dask feature job at each size, with the pandas path beside it; print and save the results."""
    from trialcast.bench.features import _ensure_data

    results: list[dict[str, Any]] = []
    for n in sorted(set([*sizes, compare])):
        folder = _ensure_data(n, work_dir, console)
        dask_folder = ensure_dask_copy(folder)
        console.print(f"{n:,} events: pandas...")
        pandas_run = _run(["trialcast.bench.features", "trialcast", str(folder)])
        console.print(f"{n:,} events: dask ({n_workers} workers)...")
        out = work_dir / "dask_out" / f"events_{n}"
        dask_run = _run(
            ["trialcast.bench.dask", "child", str(dask_folder), str(n_workers), str(out)]
        )
        shutil.rmtree(out, ignore_errors=True)
        results.append({"target_events": n, "pandas": pandas_run, "dask": dask_run})
        (work_dir / "dask_results.json").write_text(json.dumps(results, indent=2))
    table = Table(title=f"Feature job: pandas (1 process) vs Dask ({n_workers} local workers)")
    for col in (
        "events",
        "pandas s",
        "pandas peak MB",
        "dask s",
        "(shuffle+validate / build+write)",
        "partitions",
        "s per partition",
        "worker peak MB",
        "dask / pandas",
    ):
        table.add_column(col, justify="right")
    for r in results:
        p: dict[str, Any] = r["pandas"]
        d: dict[str, Any] = r["dask"]
        table.add_row(
            f"{d['events']:,}",
            f"{p['seconds']:.1f}",
            f"{p['peak_mb']:,.0f}",
            f"{d['seconds']:.1f}",
            f"{d['stages']['read_shuffle_validate']:.1f} / {d['stages']['build_and_write']:.1f}",
            str(d["partitions"]),
            f"{d['partition_validate_build_s_median']:.2f}",
            f"{d['worker_peak_mb']:,.0f}",
            f"{d['seconds'] / p['seconds']:.2f}x",
        )
    console.print(table)
    console.print(f"Raw results: {work_dir / 'dask_results.json'}")
    return results


def main(argv: list[str] | None = None) -> None:
    """Command line: ``python -m trialcast.bench.dask [--events 20M] [--scaling ...]``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "child":
        folder, workers, out = Path(argv[1]), int(argv[2]), Path(argv[3])
        print(json.dumps(child_dask(folder, workers, out)))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", default="20M", help="size compared with pandas")
    parser.add_argument(
        "--scaling", default="1M,2M,4M,8M,16M,32M", help="sizes for cost growth, comma-separated"
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--work-dir", type=Path, default=Path("data/bench"))
    args = parser.parse_args(argv)
    sizes = [_parse_count(x) for x in args.scaling.split(",") if x.strip()]
    run_dask_benchmark(
        sizes,
        compare=_parse_count(args.events),
        n_workers=args.workers,
        work_dir=args.work_dir,
        console=Console(),
    )


if __name__ == "__main__":
    main()
