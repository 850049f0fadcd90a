"""``trialcast monitor``'s job: the champion's health on the data known at ``as_of``.

Reading and writing happen here only: the tables are cut at ``as_of``
(``trialcast.backtest.truncate_tables``: data after it is invisible, exactly as
if exported then), the champion comes from the registry, and the report goes to
``<output root>/monitoring/<as_of>.json`` plus ``latest.json`` and one MLflow run
(reused when the same as-of and champion are monitored again, so the job is
safe to run twice). The parts (scoring, outcomes, estimation, drift, data
checks, verdict) are pure functions of what is passed in.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features.build import FeatureBuilder
from features.config import CompanyConfig
from features.spec import FeatureSpec
from features.tables import Tables
from models.kinds import KINDS, model_kind
from serving.forecast.timing import fit_conversion_timing
from trialcast.backtest import truncate_tables
from trialcast.monitoring.alerts import Alert
from trialcast.monitoring.champion import Champion
from trialcast.monitoring.churn import score_paying
from trialcast.monitoring.data_checks import run_data_checks
from trialcast.monitoring.drift import DriftReport, compute_drift
from trialcast.monitoring.estimation import cohort_performance, estimation_summary
from trialcast.monitoring.outcomes import OutcomeTest, run_outcome_test, summarise_cohorts
from trialcast.monitoring.scoring import ScoredTrials, score_trials
from trialcast.monitoring.verdict import Verdict, decide_verdict, input_alerts, outcome_alert

MONITORING_DIR = "monitoring"
#: Recent trials for drift: those scored in the last this many days.
RECENT_DAYS = 28
#: Drifting features listed in the report.
TOP_FEATURES = 10


@dataclass
class KindHealth:
    """One champion's health: its cohorts, test, drift and alerts (and the scored trials)."""

    champion: Champion
    cohorts: pd.DataFrame
    test: OutcomeTest
    drift: DriftReport
    alerts: list[Alert]
    recalibration: dict[str, float] = field(default_factory=dict)
    estimate_calibration: dict[str, float] = field(default_factory=dict)
    scored: ScoredTrials | None = None
    estimation: dict[str, Any] = field(default_factory=dict)


@dataclass
class MonitorReport:
    """Everything one monitor run found (``to_json`` is the file's contract)."""

    as_of: pd.Timestamp
    verdict: Verdict
    alerts: list[Alert]
    kinds: dict[str, KindHealth]
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """The monitoring JSON (docs/monitoring.md): no wall-clock field, so reruns match."""
        out: dict[str, Any] = {
            "as_of": self.as_of.isoformat(),
            "verdict": self.verdict.value,
            "alerts": [a.to_dict() for a in self.alerts],
            "notes": list(self.notes),
            "models": {},
        }
        conversion = self.kinds.get("conversion")
        for kind, health in self.kinds.items():
            out["models"][kind] = kind_json(health)
            if health is not conversion:  # the conversion table is the top-level "cohorts"
                out["models"][kind]["cohorts"] = _records(health.cohorts)
        out["cohorts"] = [] if conversion is None else _records(conversion.cohorts)
        return out


def _clean(value: Any) -> Any:
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat() if value == value.normalize() else value.isoformat()
    if isinstance(value, (np.floating, float)):
        return None if not math.isfinite(float(value)) else round(float(value), 6)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.bool_,)):
        return bool(value)
    return value


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): _clean(v) for k, v in row.items()} for row in frame.to_dict("records")]


def kind_json(health: KindHealth) -> dict[str, Any]:
    """One champion's section of the monitoring JSON: its own ``verdict`` and ``alerts``
    (outcomes and inputs; data alerts concern every model and are only top-level)."""
    test, drift = health.test, health.drift
    matured = health.cohorts[health.cohorts["matured"]] if len(health.cohorts) else health.cohorts
    errors = matured["auc_error"].dropna() if "auc_error" in matured else pd.Series(dtype=float)
    verdict = decide_verdict(health.alerts, enough_outcomes=test.enough)
    return {
        "verdict": verdict.value,
        "alerts": [a.to_dict() for a in health.alerts],
        "version": health.champion.version,
        "trained_at": health.champion.trained_at.isoformat(),
        "promised": health.champion.promised,
        "recalibration": health.recalibration,
        "estimate_calibration": health.estimate_calibration,
        "outcome_test": {
            "log_likelihood_ratio": _clean(test.log_lr),
            "threshold": _clean(test.threshold),
            "alarm": test.alarm,
            "since": None if test.since is None else test.since.date().isoformat(),
            "direction": test.direction,
            "expected_so_far": _clean(test.expected),
            "realised_so_far": test.realised,
            "p_value": _clean(test.p_value),
            "enough_expected": test.enough,
        },
        "estimated_auc_error": {
            "matured_cohorts": len(errors),
            "mean_abs": _clean(errors.abs().mean()) if len(errors) else None,
            **{k: _clean(v) for k, v in sorted(health.estimation.items())},
        },
        "drift": {
            "prediction_psi": _clean(drift.prediction_psi),
            "n_reference": drift.n_reference,
            "n_recent": drift.n_recent,
            "shifted": drift.shifted,
            "top_features": _records(drift.features.head(TOP_FEATURES)),
        },
    }


def monitor_conversion(
    known: Tables, config: CompanyConfig, champion: Champion, as_of: pd.Timestamp
) -> KindHealth:
    """Outcomes, estimated performance and drift of the conversion champion."""
    builder = _builder(known, config, champion)
    window = config.trial.conversion_window_days
    timing = fit_conversion_timing(
        known.accounts, as_of=min(champion.trained_at, as_of), window_days=window
    )
    days = config.trial.snapshot_days
    scored = score_trials(
        builder,
        champion.model,
        timing,
        as_of=as_of,
        trained_at=champion.trained_at,
        scoring_day=float(min(days)) if days else 1.0,
        unfitted_from=champion.validation_from,
    )
    return judge("conversion", champion, scored, as_of)


def monitor_churn(
    known: Tables, config: CompanyConfig, champion: Champion, as_of: pd.Timestamp
) -> KindHealth:
    """Outcomes (churns so far), estimated performance and drift of the churn champion
    (``monitoring.churn``: paying accounts at their monthly snapshots)."""
    scored = score_paying(
        _builder(known, config, champion),
        champion.model,
        as_of=as_of,
        trained_at=champion.trained_at,
        unfitted_from=champion.holdout_from,
    )
    return judge("churn", champion, scored, as_of)


#: How each monitored kind's champion is judged.
MONITORS = {"conversion": monitor_conversion, "churn": monitor_churn}


def _builder(known: Tables, config: CompanyConfig, champion: Champion) -> FeatureBuilder:
    spec = FeatureSpec.from_json(champion.model.spec_json) if champion.model.spec_json else None
    return FeatureBuilder.from_tables(known, config, spec)


def judge(kind: str, champion: Champion, scored: ScoredTrials, as_of: pd.Timestamp) -> KindHealth:
    """Cohorts, the outcome test, the estimate and drift of one champion's scored rows."""
    frame = scored.frame
    monitored = frame[frame["monitored"].to_numpy()]
    cohorts = summarise_cohorts(monitored)
    perf = cohort_performance(monitored)
    if len(perf):
        cohorts = cohorts.merge(perf, on="cohort", how="left")
    test = run_outcome_test(frame)
    ref = frame["reference"].to_numpy()
    recent = frame["monitored"] & (frame["scored_at"] >= as_of - pd.Timedelta(days=RECENT_DAYS))
    recent_mask = recent.to_numpy()
    gains = champion.model.booster.feature_importance(importance_type="gain")
    importance = dict(zip(champion.model.features, (float(g) for g in gains), strict=True))
    feats = scored.features.reset_index(drop=True)
    drift = compute_drift(
        feats[ref],
        feats[recent_mask],
        importance,
        p_reference=frame.loc[ref, "p"].to_numpy(),
        p_recent=frame.loc[recent_mask, "p"].to_numpy(),
    )
    alerts = [a for a in [outcome_alert(kind, test)] if a is not None]
    alerts += input_alerts(kind, drift)
    return KindHealth(
        champion=champion,
        cohorts=cohorts,
        test=test,
        drift=drift,
        alerts=alerts,
        recalibration=dict(frame.attrs.get("recalibration", {})),
        estimate_calibration=dict(frame.attrs.get("estimate_calibration", {})),
        scored=scored,
        estimation=estimation_summary(monitored),
    )


def run_monitor(
    config: CompanyConfig,
    tables: Tables,
    champions: dict[str, Champion],
    *,
    as_of: pd.Timestamp | None = None,
    rows_in: dict[str, int] | None = None,
    rows_quarantined: dict[str, int] | None = None,
) -> MonitorReport:
    """Judge each champion on the data known at ``as_of`` (default: the export's now).

    Raises:
        ValueError: ``as_of`` before any trial, or no champion to monitor.
    """
    started = time.perf_counter()
    moment = pd.Timestamp(as_of) if as_of is not None else tables.export_time()
    if not champions:
        raise ValueError("no champion to monitor: train and promote a model first")
    known = truncate_tables(tables, moment)
    if known.accounts.empty:
        raise ValueError(f"no trial started before {moment}: nothing to monitor")
    alerts, notes = run_data_checks(
        known.accounts,
        known.events,
        moment,
        rows_in=rows_in,
        rows_quarantined=rows_quarantined,
    )
    kinds: dict[str, KindHealth] = {}
    enough = False
    for kind, champion in champions.items():
        if not model_kind(kind).monitored or kind not in MONITORS:
            monitored = ", ".join(k.name for k in KINDS.values() if k.monitored)
            notes.append(
                f"{kind} champion v{champion.version}: not monitored yet ({monitored} only)"
            )
            continue
        health = MONITORS[kind](known, config, champion, moment)
        kinds[kind] = health
        alerts += health.alerts
        enough = enough or health.test.enough
    verdict = decide_verdict(alerts, enough_outcomes=enough)
    return MonitorReport(
        as_of=moment,
        verdict=verdict,
        alerts=alerts,
        kinds=kinds,
        notes=notes,
        seconds=time.perf_counter() - started,
    )


def report_stem(as_of: pd.Timestamp) -> str:
    """File name stem of an as-of: ``2026-03-02`` at midnight, else ``2026-03-02T101500``."""
    moment = pd.Timestamp(as_of)
    if moment == moment.normalize():
        return moment.date().isoformat()
    return moment.strftime("%Y-%m-%dT%H%M%S")


def write_report(report: MonitorReport, root: Path) -> Path:
    """Write ``<root>/monitoring/<as_of>.json`` and ``latest.json`` (atomically, by rename).

    ``latest.json`` follows the newest as-of written, so a replay of an older
    date does not hide today's verdict.
    """
    folder = root / MONITORING_DIR
    folder.mkdir(parents=True, exist_ok=True)
    text = json.dumps(report.to_json(), indent=2, sort_keys=True)
    path = folder / f"{report_stem(report.as_of)}.json"
    _atomic_write(path, text)
    latest = folder / "latest.json"
    current = None
    if latest.exists():
        try:
            current = pd.Timestamp(json.loads(latest.read_text())["as_of"])
        except (ValueError, KeyError, json.JSONDecodeError):
            current = None
    if current is None or current <= report.as_of:
        _atomic_write(latest, text)
    return path


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)
