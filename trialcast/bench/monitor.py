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
- estimation: on ``none`` at the last run, |estimated - realised| ROC AUC
  over matured weekly cohorts, over monthly groups of them and pooled over
  their trials, each beside the error sampling alone gives
  (``monitoring.estimation.estimation_summary``).

``--oracle`` adds the statistical floor of the pricing target: at the run 28
days after the change, with the champion's probabilities and timing law taken
as the truth, the chance that (i) an oracle that knows the change's date and
size (one likelihood ratio, one look, 5% false alarms; and at the test's own
per-run level ``ALPHA``) rings, (ii) this
version's test rings, (iii) the previous test (mixture over +-0.6/1.2,
Bonferroni over 12 starts, Ville) rings; on the company's trials and on them
repeated ``--oracle-scale`` times (a company with that many times the trials);
for the nominal shift -0.8 and for the shift the champion actually sees
(fitted on the matured cohorts from the change, minus the same fit on the
unchanged company: the generator's -0.8 acts on sharper latent chances than
the model's, so the model sees less).

``--demo N`` also times one monitor run on an N-account demo (target < 30 s);
with ``--demo-pricing K`` it also replays the pricing change on K seeds of that
demo (champion trained at ``DEMO_TRAINED_AT``, change from ``DEMO_SINCE``): the
issue's "the same on the demo". ``--shapes ""`` skips the generated companies.
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
from scipy.optimize import brentq

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
from trialcast.monitoring.estimation import estimation_summary
from trialcast.monitoring.job import MonitorReport, run_monitor
from trialcast.monitoring.need import NeedAction, decide_need
from trialcast.monitoring.outcomes import (
    ALPHA,
    MAX_STARTS,
    _design,
    _statistic,
    simulated_threshold,
)
from trialcast.monitoring.scoring import ScoredTrials
from trialcast.monitoring.spread import spread_weight, weighted_map

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


def train_champion(company: Company, root: Path, trained_at: pd.Timestamp = TRAINED_AT) -> Champion:
    """The conversion champion trained on the data known at ``trained_at``."""
    uri = f"sqlite:///{root}/mlflow.db"
    train_models(
        company.config,
        truncate_tables(company.tables, trained_at),
        export_time=trained_at,
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


ORACLE_SIMS = 4000
OLD_DELTAS = (-1.2, -0.6, 0.6, 1.2)


def effective_shift(scored: ScoredTrials, since: pd.Timestamp) -> float:
    """The log-odds shift, on the champion's (recalibrated) ``p``, that fits the matured
    monitored trials of cohorts from ``since`` (maximum likelihood; 0 = calibrated)."""
    frame = scored.frame
    m = (frame["monitored"] & frame["matured"] & (frame["cohort"] >= since)).to_numpy()
    p = np.clip(frame.loc[m, "p"].to_numpy(dtype=np.float64), 1e-9, 1 - 1e-9)
    y = frame.loc[m, "y"].to_numpy()
    logit = np.log(p / (1 - p))
    return float(brentq(lambda d: float(np.sum(y - 1 / (1 + np.exp(-(logit + d))))), -5, 5))


def oracle_power(
    scored: ScoredTrials, since: pd.Timestamp, *, delta: float, scale: int = 1
) -> dict[str, float]:
    """Chance of ringing at this run under a ``delta`` shift from ``since`` (module docstring).

    Outcomes are drawn from the champion's (recalibrated) ``p`` and the timing
    law's landed share, shifted by ``delta`` for cohorts from ``since``: the
    model is taken as the truth, so this is what the best test could reach.
    """
    frame = scored.frame
    keep = frame["monitored"].to_numpy(dtype=bool)
    data = frame[keep]
    p = np.tile(np.clip(data["p"].to_numpy(dtype=np.float64), 1e-9, 1 - 1e-9), scale)
    share = np.tile(data["share"].to_numpy(dtype=np.float64), scale)
    when = np.tile(data["cohort"].to_numpy(), scale)
    idx = np.argsort(when, kind="mergesort")
    p, share, when = p[idx], share[idx], when[idx]
    shifted = when >= np.datetime64(since)
    logit = np.log(p / (1 - p))
    p_true = np.where(shifted, 1 / (1 + np.exp(-(logit + delta))), p)
    rng = np.random.default_rng(7)
    y0 = (rng.random((ORACLE_SIMS, len(p))) < (p * share)[None, :]).astype(np.float64)
    y1 = (rng.random((ORACLE_SIMS, len(p))) < (p_true * share)[None, :]).astype(np.float64)
    # (i) the oracle: one start, one shift, one look at 5%
    oracle = _design(p, share[:, None], when, [pd.Timestamp(since)], (delta,))
    s0, s1 = _statistic(oracle, y0, 0)[:, 0], _statistic(oracle, y1, 0)[:, 0]
    level = float(np.quantile(s0, 0.95))
    level_same = float(np.quantile(s0, 1 - ALPHA))
    starts = list(pd.unique(when))[-MAX_STARTS:]
    # (ii) this test
    new = _design(p, share[:, None], when, starts)
    threshold = simulated_threshold(new, p, share)
    new_stat = _statistic(new, y1, 0).max(axis=1)
    # (iii) the previous test
    old = _design(p, share[:, None], when, starts, OLD_DELTAS)
    raw = _statistic(old, y1, 0).reshape(ORACLE_SIMS, len(starts), len(OLD_DELTAS))
    mixed = np.logaddexp.reduce(raw, axis=2) - np.log(len(OLD_DELTAS))
    return {
        "expected_shifted": float((p * share)[shifted].sum()),
        "expected_shifted_h1": float((p_true * share)[shifted].sum()),
        "oracle": float(np.mean(s1 > level)),
        "oracle_at_alpha": float(np.mean(s1 > level_same)),
        "new": float(np.mean(new_stat >= threshold)),
        "old": float(np.mean(mixed.max(axis=1) >= np.log(MAX_STARTS / 0.05))),
    }


def spread_variants(frame: pd.DataFrame, champion: Champion) -> dict[str, np.ndarray]:
    """The estimate's probabilities under other choices of its out-of-sample re-spread
    (diagnostics): the champion's own; the out-of-sample Platt fit (``spread``'s
    ``fitted_a``, ``fitted_b``) taken all the way (``full``), halfway (``half``) and by
    the precision weight ``n / (n + spread.PRIOR_TRIALS)`` (``weighted``, the monitor's own
    since session 8); the fit on the
    validation part only; on the test part only."""
    from training.model import fit_platt

    p = frame["p_champion"].clip(1e-9, 1 - 1e-9).to_numpy(dtype=np.float64)
    logit = np.log(p / (1 - p))
    out = {"own": frame["p_champion"].to_numpy(dtype=np.float64)}
    fit = frame.attrs.get("estimate_calibration", {})
    if fit:
        weights = {
            "full": 1.0,
            "half": 0.5,
            "weighted": spread_weight(fit["trials"]),
        }
        for name, weight in weights.items():
            a, b = weighted_map(fit["fitted_a"], fit["fitted_b"], weight)
            out[name] = 1 / (1 + np.exp(-(a * logit + b)))
    start = frame["trial_start"]
    parts = {
        "valid": start < (champion.holdout_from or start.max()),
        "test": start >= (champion.holdout_from or start.max()),
    }
    for name, part in parts.items():
        rows = (frame["out_of_sample"] & part).to_numpy()
        if rows.sum() < 100:
            continue
        a, b = fit_platt(logit[rows], frame["y"].to_numpy()[rows])
        out[name] = 1 / (1 + np.exp(-(a * logit + b)))
    return out


def bench_company(
    shape: str,
    seed: int,
    n: int,
    *,
    scenarios: tuple[str, ...] = ("pricing", "onboarding", "tracking"),
    oracle_scales: tuple[int, ...] = (),
) -> dict[str, object]:
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
        row["none_outcome_alerts"] = sum(r.verdict.value == "outcomes shifted" for r in quiet)
        row["none_thresholds"] = " ".join(
            f"{r.kinds['conversion'].test.threshold:.1f}" for r in quiet[::4]
        )
        last = quiet[-1].kinds["conversion"]
        cohorts = last.cohorts
        matured = cohorts[cohorts["matured"]].dropna(subset=["auc_error"])
        row["est_auc_mae"] = float(matured["auc_error"].abs().mean()) if len(matured) else np.nan
        row["est_auc_bias"] = float(matured["auc_error"].mean()) if len(matured) else np.nan
        row["matured_cohorts"] = len(matured)
        for key in (
            "weekly_noise_mean_abs",
            "monthly_mean_abs",
            "monthly_bias",
            "monthly_noise_mean_abs",
            "monthly_cohorts",
            "pooled_error",
            "pooled_noise",
            "pooled_trials",
        ):
            row[f"est_{key}"] = last.estimation.get(key)
        if last.scored is not None:  # the estimate from other probabilities (diagnostics)
            frame = last.scored.frame
            mon = frame[frame["monitored"]]
            rescaled = estimation_summary(mon.assign(p_champion=mon["p"], p_estimate=mon["p"]))
            row["est_rescaled_monthly_mean_abs"] = rescaled.get("monthly_mean_abs")
            row["est_rescaled_pooled_error"] = rescaled.get("pooled_error")
            for name, p_est in spread_variants(frame, champion).items():
                found = estimation_summary(
                    mon.assign(p_estimate=p_est[frame["monitored"].to_numpy()])
                )
                for key in ("monthly_mean_abs", "monthly_bias", "pooled_error"):
                    row[f"est_{name}_{key}"] = found.get(key)
            row["est_spread_a"] = last.estimate_calibration.get("a")
            row["est_spread_fitted_a"] = last.estimate_calibration.get("fitted_a")
            row["est_spread_trials"] = last.estimate_calibration.get("trials")
            row["est_spread_weight"] = last.estimate_calibration.get("weight")
        row["run_s_median"] = float(np.median([r.seconds for r in quiet]))
        if "pricing" not in scenarios:
            return row

        priced = build_company(root, shape, seed, "pricing", n)
        runs = []
        for k in range(10):  # weekly until it rings, at least to the run 28 days after
            runs += replay(priced, champion, SINCE + (k + 1) * WEEK, 1)
            if k >= 3 and runs[-1].verdict.value == "outcomes shifted":
                break
        hit = [r for r in runs if r.verdict.value == "outcomes shifted"]
        row["pricing_delay_days"] = (hit[0].as_of - SINCE).days if hit else np.nan
        row["pricing_by_28d"] = bool(hit and (hit[0].as_of - SINCE).days <= 28)
        at28 = runs[3].kinds["conversion"]
        row["pricing_llr_28d"] = f"{at28.test.log_lr:.1f}/{at28.test.threshold:.1f}"
        if oracle_scales:
            # The shift as the champion sees it: fitted on matured cohorts from SINCE at
            # the last quiet run's date, minus the same fit on the unchanged company.
            late = replay(priced, champion, quiet[-1].as_of, 1)[0].kinds["conversion"]
            assert late.scored is not None and last.scored is not None and at28.scored
            base_shift = effective_shift(last.scored, SINCE)
            seen = effective_shift(late.scored, SINCE) - base_shift
            row["shift_none"], row["shift_seen"] = base_shift, seen
            for scale in oracle_scales:
                for name, delta in (("seen", seen), ("nominal", -0.8)):
                    power = oracle_power(at28.scored, SINCE, delta=delta, scale=scale)
                    for key, value in power.items():
                        row[f"x{scale}_{name}_{key}"] = value
        if "onboarding" not in scenarios:
            return row

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


#: The demo's pricing replay: champion trained then, the change a month later.
DEMO_TRAINED_AT = pd.Timestamp("2026-05-04")
DEMO_SINCE = pd.Timestamp("2026-06-01")


def bench_demo_pricing(n: int, seed: int) -> dict[str, object]:
    """The pricing change (-0.8 log-odds from ``DEMO_SINCE``) on an ``n``-account demo:
    weekly runs from a week after it until ``outcomes shifted`` (at least to day 28, at
    most 10 weeks), beside the same runs on the unchanged demo (false alerts)."""
    row: dict[str, object] = {"accounts": n, "seed": seed}
    with tempfile.TemporaryDirectory(prefix="bench-monitor-demo-pricing-") as tmp:
        root = Path(tmp)
        os.environ["TRIALCAST_OUTPUT_DIR"] = str(root)
        demo = generate_demo_data(n, seed=seed)
        companies = {}
        for scenario in ("none", "pricing"):
            folder = root / scenario
            write_demo_data(apply_scenario(demo, scenario, since=DEMO_SINCE, seed=seed), folder)
            config = load_demo_config(folder)
            companies[scenario] = Company(config, load_tables(config).tables, "")
        base = companies["none"]
        started = time.perf_counter()
        champion = train_champion(base, root, DEMO_TRAINED_AT)
        row["train_s"] = time.perf_counter() - started
        runs: list[MonitorReport] = []
        for k in range(10):
            runs += replay(companies["pricing"], champion, DEMO_SINCE + (k + 1) * WEEK, 1)
            if k >= 3 and runs[-1].verdict.value == "outcomes shifted":
                break
        hit = [r for r in runs if r.verdict.value == "outcomes shifted"]
        row["pricing_delay_days"] = (hit[0].as_of - DEMO_SINCE).days if hit else np.nan
        row["pricing_by_28d"] = bool(hit and (hit[0].as_of - DEMO_SINCE).days <= 28)
        at28 = runs[3].kinds["conversion"].test
        row["pricing_llr_28d"] = f"{at28.log_lr:.1f}/{at28.threshold:.1f}"
        row["expected_realised_28d"] = f"{at28.expected:.0f}/{at28.realised} since {at28.since}"
        quiet = replay(base, champion, DEMO_SINCE + WEEK, len(runs))
        row["none_alerts"] = sum(r.verdict.exit_code for r in quiet)
        row["none_alert_verdicts"] = ", ".join(
            f"{r.as_of.date()}: {r.verdict.value}" for r in quiet if r.verdict.exit_code
        )
        row["none_runs"] = len(quiet)
    return row


def summary(frame: pd.DataFrame) -> str:
    """One paragraph of the results against the targets (columns that were run)."""

    def mean(col: str, fmt: str) -> str:
        return format(frame[col].mean(), fmt) if col in frame else "-"

    runs = frame["none_runs"].sum()
    alerts = frame["none_false_alerts"].sum()
    parts = [
        f"no change: {alerts} alerts in {runs} runs ({100 * alerts / runs:.1f}%), "
        f"max per company {frame['none_false_alerts'].max()}, outcome alerts "
        f"{frame['none_outcome_alerts'].sum()}",
        f"estimated AUC: weekly MAE {mean('est_auc_mae', '.3f')} (bias "
        f"{mean('est_auc_bias', '+.3f')}, sampling alone {mean('est_weekly_noise_mean_abs', '.3f')}); "
        f"monthly MAE {mean('est_monthly_mean_abs', '.3f')} (bias {mean('est_monthly_bias', '+.3f')}, "
        f"sampling alone {mean('est_monthly_noise_mean_abs', '.3f')}); pooled |error| "
        f"{frame['est_pooled_error'].abs().mean():.3f} (sampling alone {mean('est_pooled_noise', '.3f')})",
    ]
    if "pricing_by_28d" in frame:
        parts.append(
            f"pricing: detected by 28 days in {frame['pricing_by_28d'].mean():.0%}, median delay "
            f"{frame['pricing_delay_days'].median()} days"
        )
    for col in [str(c) for c in frame.columns if str(c).endswith(("_oracle", "_new", "_old"))]:
        parts.append(f"{col} {frame[col].mean():.2f}")
    if "onboarding_inputs" in frame:
        parts.append(
            f"onboarding: inputs shifted {frame['onboarding_inputs'].mean():.0%}, outcomes "
            f"shifted {frame['onboarding_outcomes'].mean():.0%}"
        )
    if "tracking_data_broken" in frame:
        parts.append(
            f"tracking: data broken {frame['tracking_data_broken'].mean():.0%}, retrain "
            f"refused {frame['tracking_retrain_refused'].mean():.0%}"
        )
    return "; ".join(parts)


def main() -> None:  # pragma: no cover - command line
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--first-seed", type=int, default=0, help="seeds first..first+seeds-1")
    parser.add_argument("--shapes", default="short,long")
    parser.add_argument("--accounts", type=int, default=6000)
    parser.add_argument("--demo", type=int, default=10_000, help="0: skip the demo timing")
    parser.add_argument(
        "--scenarios",
        default="pricing,onboarding,tracking",
        help="besides no change; pricing,onboarding,tracking (in that order, a prefix)",
    )
    parser.add_argument(
        "--demo-pricing", type=int, default=0, help="seeds of the pricing replay on the demo"
    )
    parser.add_argument("--oracle", action="store_true", help="pricing: the statistical floor")
    parser.add_argument("--oracle-scale", type=int, default=4)
    parser.add_argument("--csv", default="", help="also write the per-company rows here")
    args = parser.parse_args()
    scenarios = tuple(x for x in args.scenarios.split(",") if x)
    scales = (1, args.oracle_scale) if args.oracle else ()
    print(f"load: {os.getloadavg()}", flush=True)
    rows = []
    for shape in [s for s in args.shapes.split(",") if s]:
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            t0 = time.perf_counter()
            rows.append(
                bench_company(shape, seed, args.accounts, scenarios=scenarios, oracle_scales=scales)
            )
            print(
                pd.Series(rows[-1]).to_string(), f"\n({time.perf_counter() - t0:.0f} s)", flush=True
            )
    if rows:
        frame = pd.DataFrame(rows)
        print(frame.to_string())
        print(summary(frame))
        if args.csv:
            frame.to_csv(args.csv, index=False)
    if args.demo:
        print(bench_demo(args.demo))
        for seed in range(args.demo_pricing):
            print(pd.Series(bench_demo_pricing(args.demo, seed)).to_string(), flush=True)
    print(f"load: {os.getloadavg()}")


if __name__ == "__main__":  # pragma: no cover
    main()
