"""Milestone judgement across companies: what discovery proposes, and how fast.

``python -m trialcast.bench.milestones`` runs ``discover_milestones`` on demo
companies of several seeds and sizes (whose everyday events only track how busy
a trial is) and on the generated driver companies (one true success event among
noise events), and prints per company: closed trials, the proposed checklist
(or "none"), the best-ranked candidate with its adjusted lift, whether a pure
activity event was proposed, and the seconds discovery took. The judgement to
read: on a driver company the driver is proposed; nowhere is a noise event.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from training.milestones import MilestoneDiscovery


def run_milestone_benchmark(demo_sizes: list[tuple[int, int]], driver_accounts: int) -> list[dict]:
    """One result row per company (see the module docstring)."""
    from features.build import FeatureBuilder
    from features.config import load_demo_config
    from features.demo.driver_company import CLINIC, FREIGHT, generate_driver_company
    from features.demo.generator import GENERIC_EVENTS, generate_demo_data
    from training.milestones import discover_milestones

    noise_demo = set(GENERIC_EVENTS) - {"Dashboard Viewed", "Report Shared"}
    rows = []
    for n, seed in demo_sizes:
        demo = generate_demo_data(n, seed=seed)
        config = load_demo_config()
        started = time.perf_counter()
        found = discover_milestones(config, FeatureBuilder.from_tables(demo.tables, config))
        rows.append(_row(f"demo n={n} seed={seed}", found, noise_demo, None, started))
    for spec in (CLINIC, FREIGHT):
        company = generate_driver_company(dataclasses.replace(spec, n_accounts=driver_accounts))
        config = company.config()
        started = time.perf_counter()
        found = discover_milestones(
            config, FeatureBuilder.from_tables(company.tables, config), now=company.now
        )
        rows.append(_row(spec.company, found, set(spec.noise_events), spec.driver_event, started))
    return rows


def _row(
    name: str, found: MilestoneDiscovery, noise: set[str], driver: str | None, started: float
) -> dict:
    ranked = found.candidates[found.candidates["status"] == "ranked"]
    best = ranked.iloc[0] if len(ranked) else None
    proposed = [m.events[0] for m in found.checklist]
    return {
        "company": name,
        "closed_trials": found.n_trials,
        "proposed": ", ".join(proposed) or "none",
        "best": "-" if best is None else f"{best['event']} {best['adj_lift']:.2f}x",
        "noise_proposed": bool(set(proposed) & noise),
        "driver_proposed": None if driver is None else driver in proposed,
        "seconds": round(time.perf_counter() - started, 1),
    }


def main() -> None:  # pragma: no cover - command line
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo", default="3000:7,5000:3,10000:11,10000:0", help="n:seed,...")
    parser.add_argument("--driver-accounts", type=int, default=2500)
    args = parser.parse_args()
    sizes = [(int(a), int(b)) for a, b in (x.split(":") for x in args.demo.split(","))]
    for row in run_milestone_benchmark(sizes, args.driver_accounts):
        print(" | ".join(f"{k}={v}" for k, v in row.items()), flush=True)


if __name__ == "__main__":  # pragma: no cover
    main()
