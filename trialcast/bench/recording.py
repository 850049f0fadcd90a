"""Benchmark of ``trialcast train``'s recording step (issue 22: "logging <= 1.5 s a model").

Trains the demo company with the real command (``trialcast train``, both kinds) in a
fresh process per run, with a timer on each step of recording a model: opening the
MLflow store, the champion comparison, the run's metrics, the plots, the pyfunc save,
the registry. Two cases: a **new store** each run (a company's first run: MLflow
creates its tables) and a **store with earlier runs** (the scheduled job: one
untimed run first makes the champions the later runs are compared with).

The timers wrap the functions the command calls (by name, so a renamed step fails
this benchmark rather than going unmeasured); the command's own timing line
(``result.seconds``) and the process wall time are reported beside them.

Run: ``.venv/bin/python -m trialcast.bench.recording --accounts 10000 --repeats 3``
"""

from __future__ import annotations

import argparse
import collections
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: (module, attribute, label) of each timed step; ``use_tracking_uri`` is a context
#: manager, timed until it yields.
STEPS: tuple[tuple[str, str, str], ...] = (
    ("training.tracking", "write_plots", "plots"),
    ("training.tracking", "save_pyfunc_model", "pyfunc save"),
    ("training.tracking", "_log_values", "metrics and params"),
    ("training.train", "_compare_with_champion", "champion comparison"),
    ("training.train", "judge_scored", "verdict on the champion's scores"),
    ("training.train", "register_version", "registry"),
    ("training.train", "write_heldout_predictions", "held-out predictions"),
    ("training.train", "use_tracking_uri", "open the store (MLflow client)"),
)


def _timed(acc: dict[str, float], label: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            acc[label] += time.perf_counter() - started

    return wrapper


def child(config: Path, store: Path) -> dict[str, Any]:
    """One ``trialcast train`` in this process, its steps timed (runs in a child)."""
    import contextlib
    import importlib

    acc: dict[str, float] = collections.defaultdict(float)
    for module_name, attribute, label in STEPS:
        module = importlib.import_module(module_name)
        original = getattr(module, attribute)
        timer = _timed_context if attribute == "use_tracking_uri" else _timed
        setattr(module, attribute, timer(acc, label, original))
    import training.train as train_module

    seconds: dict[str, float] = {}
    original_train = train_module.train_models

    def keep_seconds(*args: Any, **kwargs: Any) -> Any:
        result = original_train(*args, **kwargs)
        seconds.update(result.seconds)
        return result

    train_module.train_models = keep_seconds
    from trialcast.cli import app

    with contextlib.suppress(SystemExit):
        app(["train", "-c", str(config), "--tracking-uri", f"sqlite:///{store}/mlflow.db"])
    return {"steps": dict(acc), "seconds": seconds}


def _timed_context(acc: dict[str, float], label: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """A context manager's set-up (entering it) timed: the MLflow client it yields."""
    import contextlib

    @contextlib.contextmanager
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        with fn(*args, **kwargs) as value:
            acc[label] += time.perf_counter() - started
            yield value

    return wrapper


def _run_child(config: Path, store: Path) -> dict[str, Any]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "trialcast.bench.recording", "--child", str(config), str(store)],
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"trialcast train failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["wall"] = wall
    return result


def run(accounts: int, seed: int, repeats: int) -> dict[str, list[dict[str, Any]]]:
    """Both cases, ``repeats`` timed runs each, on a demo company of ``accounts``."""
    out: dict[str, list[dict[str, Any]]] = {"new store": [], "store with earlier runs": []}
    with tempfile.TemporaryDirectory(prefix="trialcast-bench-recording-") as tmp:
        company = Path(tmp) / "company"
        print(f"generating the demo company ({accounts:,} accounts)...", file=sys.stderr)
        subprocess.run(
            [sys.executable, "-m", "trialcast.cli", "demo-data", "--out", str(company),
             "--accounts", str(accounts), "--seed", str(seed)],
            check=True, capture_output=True,
        )  # fmt: skip
        config = company / "trialcast.toml"
        for i in range(repeats):
            print(f"new store, run {i + 1}/{repeats}...", file=sys.stderr)
            store = Path(tmp) / f"new{i}"
            store.mkdir()
            out["new store"].append(_run_child(config, store))
        kept = Path(tmp) / "kept"
        kept.mkdir()
        print("store with earlier runs: the untimed first run...", file=sys.stderr)
        _run_child(config, kept)
        for i in range(repeats):
            print(f"store with earlier runs, run {i + 1}/{repeats}...", file=sys.stderr)
            out["store with earlier runs"].append(_run_child(config, kept))
    return out


def report(results: dict[str, list[dict[str, Any]]], command: str) -> str:
    """A Markdown table per case: medians of the command's timing line and each step."""
    lines = ["# Recording benchmark (`trialcast train`)", "", f"Command: `{command}`", ""]
    for case, runs in results.items():
        if not runs:
            continue
        kinds = [k for k in ("conversion", "churn") if k in runs[0]["seconds"]]
        logging = [r["seconds"].get("logging", 0.0) for r in runs]
        lines += [
            f"## {case} ({len(runs)} runs, medians)",
            "",
            "| figure | seconds | runs |",
            "|---|---:|---|",
        ]

        for key in ("features", *kinds, "logging", "total"):
            lines.append(_row(f"timing line: {key}", [r["seconds"].get(key, 0.0) for r in runs]))
        lines.append(_row("process wall", [r["wall"] for r in runs]))
        per_model = [v / max(len(kinds), 1) for v in logging]
        lines.append(_row(f"logging per model ({len(kinds)} models)", per_model))
        for _, _, label in STEPS:
            lines.append(_row(f"step: {label}", [r["steps"].get(label, 0.0) for r in runs]))
        lines.append("")
    return "\n".join(lines)


def _row(name: str, values: list[float]) -> str:
    shown = ", ".join(f"{v:.2f}" for v in values)
    return f"| {name} | {statistics.median(values):.2f} | {shown} |"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, help="also write the report here (Markdown)")
    parser.add_argument("--child", nargs=2, metavar=("CONFIG", "STORE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(Path(args.child[0]), Path(args.child[1]))))
        return
    command = "python -m trialcast.bench.recording " + " ".join(sys.argv[1:])
    text = report(run(args.accounts, args.seed, args.repeats), command.strip())
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
