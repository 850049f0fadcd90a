"""Benchmark of ``trialcast monitor`` on generated companies that differ from the demo.

``python -m trialcast.bench.monitor [--seeds 5] [--shapes short,long] [--demo 10000]``

Per company shape (a one-week trial decided within 12 days; a three-week trial
decided over 45 days; both with a neutral event vocabulary) and seed: the
company is generated once per scenario (``features.demo.scenarios``, all from
``SINCE``), one conversion champion is trained on the data known at
``TRAINED_AT`` (identical across scenarios: nothing changes before ``SINCE``),
and the monitor is replayed weekly:

- ``none``: 20 weekly runs from a week after training: false alerts;
- ``pricing`` (log-odds -0.8): weekly runs from a week after the change:
  detection delay of ``outcomes shifted`` (target: by the run 28 days after);
- ``onboarding``: 8 weekly runs: ``inputs shifted`` seen, ``outcomes shifted`` never;
- ``tracking``: the first run after the break: ``data broken`` naming the event
  and its date, and ``retrain --when-needed``'s decision (must refuse);
- estimation: on ``none`` at the last run, mean |estimated - realised| ROC AUC
  over matured cohorts (and pooled over their trials).

``--demo N`` also times one monitor run on an N-account demo (target < 30 s).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from features.config import CompanyConfig, load_demo_config
from features.demo.generator import generate_demo_data, write_demo_data
from features.demo.latent import DemoConversionLags
from features.demo.scenarios import apply_scenario, default_break_event
from features.demo.variants import event_mapping, rename_config_events, rename_events
from features.loaders import load_tables
from features.tables import Tables
from training.tracking import use_tracking_uri
from training.train import RecordTarget, train_models
from trialcast.backtest import truncate_tables
from trialcast.monitoring.champion import Champion, load_champion
from trialcast.monitoring.job import MonitorReport, run_monitor
from trialcast.monitoring.need import NeedAction, decide_need

TRAINED_AT = pd.Timestamp("2026-01-05")
SINCE = pd.Timestamp("2026-02-02")
WEEK = pd.Timedelta(weeks=1)
SHAPES = {
    "short": dict(
        trial_days=7, window_days=12, lags=DemoConversionLags(0.2, a_after=1.5, b_after=1.5)
    ),
    "long": dict(
        trial_days=21, window_days=45, lags=DemoConversionLags(0.5, a_after=1.0, b_after=2.0)
    ),
}


@dataclass
class Company:
    config: CompanyConfig
    tables: Tables
    event: str


def build_company(root: Path, shape: str, seed: int, scenario: str, n: int) -> Company:
    """A renamed-vocabulary company with ``scenario`` from ``SINCE``, written and loaded."""
    spec = SHAPES[shape]
    demo = generate_demo_data(
        n,
        seed=seed,
        trial_days=(int(spec["trial_days"]),),  # type: ignore[call-overload]
        conversion_window_days=int(spec["window_days"]),  # type: ignore[call-overload]
        conversion_lags=spec["lags"],  # type: ignore[arg-type]
        start="2025-07-01",
        export_time="2026-06-15",
    )
    mapping = event_mapping(demo, prefix="ev_")
    event = default_break_event(demo.tables.events)
    demo = apply_scenario(demo, scenario, since=SINCE, event=event, seed=seed)
    demo = rename_events(demo, mapping)
    folder = root / f"{shape}-{seed}-{scenario}"
    write_demo_data(demo, folder)
    config = rename_config_events(load_demo_config(folder), mapping)
    trial = config.trial.model_copy(
        update={
            "conversion_window_days": spec["window_days"],
            "default_trial_days": spec["trial_days"],
        }
    )
    params = {**config.model.lightgbm, "num_threads": 1, "learning_rate": 0.1}
    model = config.model.model_copy(
        update={"lightgbm": params, "num_boost_round": 150, "early_stopping_rounds": 20}
    )
    config = config.model_copy(update={"trial": trial, "model": model})
    return Company(config, load_tables(config).tables, mapping[event])


def train_champion(company: Company, root: Path) -> Champion:
    uri = f"sqlite:///{root}/mlflow.db"
    train_models(
        company.config,
        truncate_tables(company.tables, TRAINED_AT),
        export_time=TRAINED_AT,
        kinds=("conversion",),
        target=RecordTarget(tracking_uri=uri, project_dir=root),
    )
    with use_tracking_uri(uri) as client:
        champion = load_champion(client, company.config, "conversion")
    if champion is None:
        raise RuntimeError("no champion was promoted")
    return champion


def replay(
    company: Company, champion: Champion, start: pd.Timestamp, weeks: int
) -> list[MonitorReport]:
    return [
        run_monitor(
            company.config, company.tables, {"conversion": champion}, as_of=start + k * WEEK
        )
        for k in range(weeks)
    ]


def bench_company(shape: str, seed: int, n: int) -> dict[str, object]:
    """Every scenario on one generated company; one row of results."""
    row: dict[str, object] = {"shape": shape, "seed": seed, "accounts": n}
    with tempfile.TemporaryDirectory(prefix="bench-monitor-") as tmp:
        root = Path(tmp)
        os.environ["TRIALCAST_OUTPUT_DIR"] = str(root)
        base = build_company(root, shape, seed, "none", n)
        started = time.perf_counter()
        try:
            champion = train_champion(base, root)
        except RuntimeError as exc:
            row["note"] = str(exc)
            return row
        row["train_s"] = time.perf_counter() - started
        quiet = replay(base, champion, TRAINED_AT + WEEK, 20)
        row["none_false_alerts"] = sum(r.verdict.exit_code for r in quiet)
        row["none_runs"] = len(quiet)
        cohorts = quiet[-1].kinds["conversion"].cohorts
        matured = cohorts[cohorts["matured"]].dropna(subset=["auc_error"])
        row["est_auc_mae"] = float(matured["auc_error"].abs().mean()) if len(matured) else np.nan
        row["est_auc_bias"] = float(matured["auc_error"].mean()) if len(matured) else np.nan
        row["matured_cohorts"] = len(matured)
        row["run_s_median"] = float(np.median([r.seconds for r in quiet]))

        priced = build_company(root, shape, seed, "pricing", n)
        runs = replay(priced, champion, SINCE + WEEK, 10)
        hit = [r for r in runs if r.verdict.value == "outcomes shifted"]
        row["pricing_delay_days"] = (hit[0].as_of - SINCE).days if hit else np.nan
        row["pricing_by_28d"] = bool(hit and (hit[0].as_of - SINCE).days <= 28)

        onboarded = build_company(root, shape, seed, "onboarding", n)
        runs = replay(onboarded, champion, SINCE + WEEK, 8)
        verdicts = [r.verdict.value for r in runs]
        row["onboarding_inputs"] = "inputs shifted" in verdicts
        row["onboarding_outcomes"] = "outcomes shifted" in verdicts

        broken = build_company(root, shape, seed, "tracking", n)
        first = replay(broken, champion, SINCE + WEEK, 1)[0]
        named = [
            a
            for a in first.alerts
            if a.kind.value == "data"
            and broken.event in a.subject
            and a.since == SINCE.date().isoformat()
        ]
        row["tracking_data_broken"] = first.verdict.value == "data broken" and bool(named)
        age = (first.as_of - champion.trained_at) / pd.Timedelta(days=1)
        need = decide_need(
            first.verdict,
            [a.evidence for a in first.alerts],
            champion_age_days=age,
            max_age_days=90,
        )
        row["tracking_retrain_refused"] = need.action is NeedAction.REFUSE
    return row


def bench_demo(n: int) -> dict[str, object]:
    """One monitor run on an ``n``-account demo, its champion trained ten weeks before export."""
    with tempfile.TemporaryDirectory(prefix="bench-monitor-demo-") as tmp:
        root = Path(tmp)
        os.environ["TRIALCAST_OUTPUT_DIR"] = str(root)
        demo = generate_demo_data(n, seed=0)
        write_demo_data(demo, root)
        config = load_demo_config(root)
        tables = load_tables(config).tables
        export = tables.export_time()
        trained = (export - pd.Timedelta(weeks=10)).normalize()
        company = Company(config, tables, "")
        uri = f"sqlite:///{root}/mlflow.db"
        train_models(
            config,
            truncate_tables(tables, trained),
            export_time=trained,
            kinds=("conversion",),
            target=RecordTarget(tracking_uri=uri, project_dir=root),
        )
        with use_tracking_uri(uri) as client:
            champion = load_champion(client, config, "conversion")
        assert champion is not None
        started = time.perf_counter()
        report = run_monitor(company.config, tables, {"conversion": champion}, as_of=export)
        return {
            "accounts": float(n),
            "monitor_s": time.perf_counter() - started,
            "verdict": report.verdict.value,
        }


def main() -> None:  # pragma: no cover - command line
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--shapes", default="short,long")
    parser.add_argument("--accounts", type=int, default=6000)
    parser.add_argument("--demo", type=int, default=10_000, help="0: skip the demo timing")
    args = parser.parse_args()
    print(f"load: {os.getloadavg()}", flush=True)
    rows = []
    for shape in args.shapes.split(","):
        for seed in range(args.seeds):
            t0 = time.perf_counter()
            rows.append(bench_company(shape, seed, args.accounts))
            print(
                pd.Series(rows[-1]).to_string(), f"\n({time.perf_counter() - t0:.0f} s)", flush=True
            )
    frame = pd.DataFrame(rows)
    print(frame.to_string())
    runs = frame["none_runs"].sum()
    print(
        f"no change: {frame['none_false_alerts'].sum()} alerts in {runs} runs "
        f"({100 * frame['none_false_alerts'].sum() / runs:.1f}%), max per company "
        f"{frame['none_false_alerts'].max()}; pricing: detected by 28 days in "
        f"{frame['pricing_by_28d'].mean():.0%}, median delay {frame['pricing_delay_days'].median()} days; "
        f"onboarding: inputs shifted {frame['onboarding_inputs'].mean():.0%}, outcomes shifted "
        f"{frame['onboarding_outcomes'].mean():.0%}; tracking: data broken {frame['tracking_data_broken'].mean():.0%}, "
        f"retrain refused {frame['tracking_retrain_refused'].mean():.0%}; estimated AUC MAE "
        f"{frame['est_auc_mae'].mean():.3f} (bias {frame['est_auc_bias'].mean():+.3f})"
    )
    if args.demo:
        print(bench_demo(args.demo))
    print(f"load: {os.getloadavg()}")


if __name__ == "__main__":  # pragma: no cover
    main()
