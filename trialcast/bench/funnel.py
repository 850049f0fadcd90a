"""Benchmark of ``trialcast funnel``: wall time on a company (the demo), against the
floor of any command reading the same data (a process that loads and checks the
tables, measured in the same run), and the change flags' behaviour on two
generated companies with weekly cohorts of 150+ trials (share of cells flagged
without changes; how often a 15-point drop of one stage in one cohort is flagged).

Run: ``.venv/bin/python -m trialcast.bench.funnel -c data/demo/trialcast.toml --out data/bench/funnel.md``
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from features.build import FeatureBuilder
from features.config import load_demo_config
from features.demo.generator import generate_demo_data
from features.demo.latent import DemoConversionLags
from features.funnel_segments import trial_segments
from features.funnel_stages import funnel_stages, trial_stage_days
from features.funnel_table import cohort_labels, funnel_table

#: The two generated shapes (as ``tests/company_factory.SHAPES``), 150+ trials a week.
SHAPES = {
    "7-day trials, 12-day window": dict(
        trial_days=(7,),
        conversion_window_days=12,
        conversion_lags=DemoConversionLags(in_trial_share=0.2, a_after=1.5, b_after=1.5),
    ),
    "21-day trials, 45-day window": dict(
        trial_days=(21,),
        conversion_window_days=45,
        conversion_lags=DemoConversionLags(in_trial_share=0.5, a_after=1.0, b_after=2.0),
    ),
}
LOAD_ONLY = "import sys; from features.config import load_config; from features.loaders import load_tables; load_tables(load_config(sys.argv[1]))"


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _wall(cmd: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds (user + system) of one run of ``cmd``."""
    t0, c0 = time.perf_counter(), _cpu()
    subprocess.run(cmd, check=True, capture_output=True, env={**os.environ})
    return time.perf_counter() - t0, _cpu() - c0


def time_command(config: Path, repeats: int) -> dict[str, list[tuple[float, float]]]:
    """(wall, CPU) seconds of ``trialcast funnel`` and of the load-the-tables floor, interleaved."""
    with tempfile.TemporaryDirectory() as tmp:
        funnel = [sys.executable, "-c", "from trialcast.cli import app; app()", "funnel",
                  "-c", str(config), "--out", str(Path(tmp) / "funnel.csv")]  # fmt: skip
        floor = [sys.executable, "-c", LOAD_ONLY, str(config)]
        times: dict[str, list[tuple[float, float]]] = {"funnel": [], "load tables (floor)": []}
        for _ in range(repeats):
            times["funnel"].append(_wall(funnel))
            times["load tables (floor)"].append(_wall(floor))
    return times


def flag_behaviour(n_accounts: int, draws: int, seed: int = 0) -> list[dict[str, float | str]]:
    """Per generated shape: share of tested cells flagged as is, and the share of
    injected 15-point single-stage drops (every checklist stage and PQL, ``draws``
    finished weekly cohorts of 150+ trials each) that are flagged."""
    config = load_demo_config()
    rows: list[dict[str, float | str]] = []
    for name, shape in SHAPES.items():
        settings = config.model_copy(
            update={"trial": config.trial.model_copy(
                update={"conversion_window_days": shape["conversion_window_days"]})}
        )  # fmt: skip
        demo = generate_demo_data(n_accounts, seed=seed, export_time="2026-05-01", **shape)  # type: ignore[arg-type]
        builder = FeatureBuilder.from_tables(demo.tables, settings)
        as_of = demo.tables.export_time()
        stages = funnel_stages(settings)
        days = trial_stage_days(builder, as_of, stages)
        segments = trial_segments(demo.tables, days, settings, as_of)

        def table(d, settings=settings, stages=stages, segments=segments, as_of=as_of):
            return funnel_table(
                d, segments, stages, as_of=as_of, by="week", settings=settings.funnel
            )

        base = table(days)
        tested = base["p_value"].notna()
        cohort = cohort_labels(days["trial_start"], "week")
        sizes = cohort[days["window_end"] < as_of].value_counts().sort_index()
        big = sizes[sizes >= 150].index[len(sizes) // 2 :]
        rng = np.random.default_rng(seed)
        hits = []
        for stage in stages[1:-1]:
            for week in rng.choice(big, min(draws, len(big)), replace=False):
                mask = (cohort == week).to_numpy()
                d = days.copy()
                reached = np.flatnonzero(mask & d[stage.name].notna().to_numpy())
                kill = rng.choice(reached, round(0.15 * mask.sum()), replace=False)
                d.loc[d.index[kill], stage.name] = np.nan
                t = table(d)
                row = t[
                    (t["dimension"] == "total") & (t["cohort"] == week) & (t["stage"] == stage.name)
                ]
                hits.append(bool(row["flagged"].iloc[0]))
        rows.append({"company": name, "trials": len(days), "weekly cohort median": float(sizes.median()),
                     "tested cells": int(tested.sum()),
                     "flagged without change": float(base.loc[tested, "flagged"].mean()),
                     "drops injected": len(hits), "drops flagged": float(np.mean(hits))})  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-c", "--config", type=Path, required=True)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--accounts", type=int, default=6000)
    parser.add_argument("--draws", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("data/bench/funnel.md"))
    args = parser.parse_args()
    load = os.getloadavg()
    times = time_command(args.config, args.repeats)
    lines = [f"load average before: {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} "
             f"(2 cores shared), after: {os.getloadavg()[0]:.1f}", "",
             "| command | median wall s | wall runs (s) | median CPU s | wall ratio to the floor |",
             "|---|---|---|---|---|"]  # fmt: skip
    floor = statistics.median(w for w, _ in times["load tables (floor)"])
    for name, runs in times.items():
        wall = statistics.median(w for w, _ in runs)
        cpu = statistics.median(c for _, c in runs)
        lines.append(f"| {name} | {wall:.2f} | {', '.join(f'{w:.2f}' for w, _ in runs)} | "
                     f"{cpu:.2f} | {wall / floor:.2f} |")  # fmt: skip
    lines += ["", "| company | trials | weekly cohort median | tested cells | flagged without change "
              "| 15-point drops injected | drops flagged |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in flag_behaviour(args.accounts, args.draws):
        lines.append(f"| {r['company']} | {r['trials']:,} | {r['weekly cohort median']:.0f} | "
                     f"{r['tested cells']:,} | {float(r['flagged without change']):.1%} | "
                     f"{r['drops injected']} | {float(r['drops flagged']):.0%} |")  # fmt: skip
    report = "\n".join(lines) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report)
    print(report)


if __name__ == "__main__":
    main()
