"""Every benchmark command runs at a small size, so a figure can always be re-measured.

Sizes are the smallest at which the path measured still runs to its end (the
serving and feature-table benchmarks serve a promoted model: below ~1,500
accounts the gate rightly promotes none).

Each case runs the command as a user would (a fresh process, the installed
entry points) and checks that it finished and wrote or printed its result. The
figures themselves are not asserted: they belong in docs/benchmarks.md, measured
at full size on a quiet machine.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(args: list[str], cwd: Path, timeout: float = 600) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, (
        f"{' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )
    return done.stdout


def _trialcast() -> str:
    return str(Path(sys.executable).with_name("trialcast"))


@pytest.mark.slow
def test_benchmark_features_on_a_fresh_work_dir(tmp_path: Path) -> None:
    work = tmp_path / "bench"
    _run([_trialcast(), "benchmark-features", "--events", "20K", "--repeats", "1",
          "--work-dir", str(work)], tmp_path)  # fmt: skip
    (result,) = json.loads((work / "results.json").read_text())
    assert result["events"] > 10_000 and result["accounts"] > 50
    assert result["ratio_vs_duckdb"] > 0 and result["trialcast_peak_mb"] > 0
    assert result["feature_columns"] > 20


@pytest.mark.slow
def test_benchmark_training(tmp_path: Path) -> None:
    out = tmp_path / "training.json"
    _run([_trialcast(), "benchmark-training", "--accounts", "1500", "--out", str(out)], tmp_path)
    assert json.loads(out.read_text())


#: ``python -m trialcast.bench.<module> ARGS`` and a piece of text its output must hold.
MODULES = {
    "cli": (["--repeats", "1"], "--help is"),
    "feature_table": (["--trials", "1500", "--columns", "6"], "training rows"),
    "forecast": (["--trials", "3000"], "P10"),
    "milestones": (["--demo", "800:1", "--driver-accounts", "800"], "="),
    "recording": (["--accounts", "1500", "--repeats", "1"], "logging per model (2 models)"),
}


@pytest.mark.slow
@pytest.mark.parametrize("module", sorted(MODULES))
def test_benchmark_module(module: str, tmp_path: Path) -> None:
    args, expected = MODULES[module]
    out = _run([sys.executable, "-m", f"trialcast.bench.{module}", *args], tmp_path)
    assert expected in out, out[-2000:]


@pytest.mark.slow
def test_benchmark_dask(tmp_path: Path) -> None:
    work = tmp_path / "bench"
    _run([sys.executable, "-m", "trialcast.bench.dask", "--events", "20K", "--scaling", "20K",
          "--workers", "1", "--work-dir", str(work)], tmp_path)  # fmt: skip
    (result,) = json.loads((work / "dask_results.json").read_text())
    assert result["dask"]["events"] > 10_000 and result["pandas"]["seconds"] > 0


@pytest.mark.slow
def test_benchmark_running_trials(tmp_path: Path) -> None:
    company = tmp_path / "company"
    _run([_trialcast(), "demo-data", "--out", str(company), "--accounts", "1200", "--seed", "3"],
         tmp_path)  # fmt: skip
    out = _run(
        [sys.executable, "-m", "trialcast.bench.running_trials", str(company),
         "--origins", "2026-04-01"],
        tmp_path,
    )  # fmt: skip
    assert "vs_oracle_pct" in out  # the per-phase table, shipping vs oracle


@pytest.mark.slow
def test_benchmark_serving(tmp_path: Path) -> None:
    out = tmp_path / "serving.md"
    _run([sys.executable, "-m", "trialcast.bench.serving", "--accounts", "2000", "--duration", "1",
          "--repeats", "1", "--starts", "1", "--out", str(out)], tmp_path)  # fmt: skip
    text = out.read_text()
    # the served reasons are TreeSHAP x a (plus the phase offset on trial_days_elapsed)
    diff = re.search(r"max \|difference\| = ([0-9.e+-]+)", text)
    assert diff is not None and float(diff.group(1)) < 1e-6, diff


@pytest.mark.slow
def test_benchmark_funnel(tmp_path: Path) -> None:
    company = tmp_path / "company"
    _run([_trialcast(), "demo-data", "--out", str(company), "--accounts", "1200", "--seed", "4"],
         tmp_path)  # fmt: skip
    out = tmp_path / "funnel.md"
    _run([sys.executable, "-m", "trialcast.bench.funnel", "-c", str(company / "trialcast.toml"),
          "--repeats", "1", "--accounts", "2000", "--draws", "1", "--out", str(out)],
         tmp_path)  # fmt: skip
    assert "wall ratio to the floor" in out.read_text()
