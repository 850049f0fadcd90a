"""The scheduled retraining job: fresh features, a challenger, a fair duel, one atomic promotion.

``run_retrain`` is what ``trialcast retrain -c CONFIG`` runs from cron, a systemd
timer or a Kubernetes CronJob (see docs/retraining.md). For each model kind:

1. **Idempotency.** The input fingerprint (a hash of the tables and of the data's
   "now") and the config hash are compared with the registry tags of the champion
   and of the last evaluated challenger. Equal: nothing is trained; the decision
   says so (status ``unchanged``).
2. **Fresh features.** A new feature spec and training sets from today's tables.
3. **Challenger.** ``training.train.train_models`` fits, logs and registers it with
   the ``challenger`` alias (and makes it champion only when there is none yet and
   it beats the base rate).
4. **Duel.** Challenger and current champion are scored on the same recent holdout
   (the newest cohorts' test part of today's training set, which the challenger
   never saw); the champion on features built with its own feature spec.
5. **Rule.** Promote only if the challenger beats the base rate on the holdout and
   beats the champion's log loss by more than 0 and by at least
   ``[model].promote_min_logloss_gain``.
6. **Promotion.** A single ``set_registered_model_alias`` call moves ``champion``
   (atomic in MLflow). The alias is never deleted or cleared first, so a job that
   dies at any point leaves the previous champion in place.
7. **Record.** A ``retrain-<id>`` MLflow run (tags and metrics per kind) and a JSON
   decision file under ``<project>/models/retrain_decisions/`` (plus ``latest.json``).

Concurrency: one file lock per registry (``filelock``, an OS-level ``flock`` that
the kernel releases when the holder dies, so a crash never leaves a stale lock).
By default a second job does not queue: it returns at once with status ``busy``
("another retrain is running") and changes nothing; ``wait_seconds`` makes it wait
that long for the lock first. Nothing here prints; ``progress`` receives one-line
status messages.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from filelock import FileLock, Timeout
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from features.build import FeatureBuilder
from features.config import CompanyConfig
from features.tables import Tables
from models.kinds import model_kind
from training.guards import NotEnoughDataError, check_base_rate
from training.holdout import Holdout, recent_holdout
from training.recipe import RecipeOptions
from training.registry import (
    CHALLENGER,
    CHAMPION,
    load_model_version,
    registered_name,
    set_champion,
    version_by_alias,
)
from training.retrain_decision import (
    KindAction,
    KindDecision,
    RetrainDecision,
    RetrainStatus,
    input_fingerprint,
    summarise,
    write_decision,
    write_json_atomic,
)
from training.settings import (
    MODELS_DIR,
    output_root,
    resolve_artifact_location,
    resolve_tracking_uri,
)
from training.tracking import get_or_create_experiment, use_tracking_uri
from training.train import (
    KINDS,
    ModelOutcome,
    RecordTarget,
    TrainingSets,
    build_training_sets,
    point_in_time_builder,
    train_models,
)

log = logging.getLogger("trialcast.retrain")

#: Registry tag: the input fingerprint a version was trained on.
FINGERPRINT_TAG = "retrain_fingerprint"
#: Registry tag: the retrain job that trained a version.
RETRAIN_ID_TAG = "retrain_id"
#: Registry tag: what the retrain job decided about a version (set after the decision).
DECISION_TAG = "retrain_decision"
DECISIONS_DIR = "retrain_decisions"

#: Points at which ``run_retrain`` calls ``on_stage`` (tests kill the job there).
STAGES = ("locked", "trained", "evaluated", "promoting", "recorded")

Progress = Callable[[str], None]


def default_lock_path(config: CompanyConfig, tracking_uri: str, project_dir: Path) -> Path:
    """``<project>/models/retrain-<registry key>.lock``: one lock per registry.

    Jobs of two companies with different registries never block each other; two
    jobs on the same registry (same tracking URI and model names) do.
    """
    key = "|".join([tracking_uri, config.registry.conversion_model, config.registry.churn_model])
    return (
        project_dir / MODELS_DIR / f"retrain-{hashlib.sha256(key.encode()).hexdigest()[:12]}.lock"
    )


def _now_utc() -> pd.Timestamp:
    return pd.Timestamp.now(tz="UTC").floor("s")


def _float(x: float | None) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


def _already_done(
    client: MlflowClient, name: str, fingerprint: str, config_hash: str
) -> tuple[str, str | None] | None:
    """Why ``name`` needs no retraining on this data and config (None: it does)."""
    champion = version_by_alias(client, name, CHAMPION)
    champion_v = str(champion.version) if champion is not None else None
    for alias, version in (
        (CHAMPION, champion),
        (CHALLENGER, version_by_alias(client, name, CHALLENGER)),
    ):
        if version is None:
            continue
        tags = version.tags or {}
        if tags.get(FINGERPRINT_TAG) != fingerprint or tags.get("config_hash") != config_hash:
            continue
        if alias == CHAMPION:
            return (
                f"champion version {champion_v} was trained on exactly this data with this "
                "config; nothing to do",
                champion_v,
            )
        if tags.get(DECISION_TAG):  # evaluated to the end (not a job that died midway)
            return (
                f"challenger version {version.version} was already trained and judged on "
                f"exactly this data with this config (decision: {tags[DECISION_TAG]}); "
                f"champion version {champion_v} stays",
                champion_v,
            )
    return None


def _judge(
    client: MlflowClient,
    config: CompanyConfig,
    builder: FeatureBuilder,
    frame: pd.DataFrame,
    outcome: ModelOutcome,
    decision: KindDecision,
) -> Holdout | None:
    """Score challenger and champion on the same holdout; fill in the numbers and the
    verdict (``decision.action`` is ``promote?`` when the rule says promote)."""
    cfg = config.model
    holdout = recent_holdout(
        frame,
        outcome.kind,
        valid_fraction=cfg.valid_fraction,
        test_fraction=cfg.test_fraction,
        horizon_days=config.trial.churn_horizon_days,
    )
    when = model_kind(outcome.kind).entry_column
    decision.holdout_rows = len(holdout.test)
    decision.holdout_positives = int(holdout.labels.sum())
    decision.holdout_from = str(pd.to_datetime(holdout.test[when]).min())
    holdout.score("challenger", outcome.model)
    base = check_base_rate(
        holdout.labels, holdout.test["p_challenger"], float(holdout.train["label"].mean())
    )
    decision.challenger_log_loss = _float(base.model_log_loss)
    decision.base_rate_log_loss = _float(base.base_log_loss)
    try:
        champion = load_model_version(client, decision.registered_name, CHAMPION)
        holdout.score("champion", champion, builder)
    except (KeyError, ValueError, OSError, MlflowException) as exc:
        decision.action = KindAction.KEPT
        decision.reason = (
            f"champion version {decision.champion_before} could not be scored on the new "
            f"holdout ({exc}); it stays. Promote by hand if the challenger should replace it: "
            f"`trialcast promote -c CONFIG --kind {outcome.kind} "
            f"--version {decision.challenger_version} --force`"
        )
        return holdout
    metrics = holdout.metrics()
    overall = metrics[metrics["segment"] == "all"].set_index("model")
    decision.challenger_roc_auc = _float(float(overall.loc["challenger", "roc_auc"]))  # type: ignore[arg-type]
    decision.champion_roc_auc = _float(float(overall.loc["champion", "roc_auc"]))  # type: ignore[arg-type]
    champion_ll = holdout.log_loss("champion")
    decision.champion_log_loss = _float(champion_ll)
    gain = champion_ll - base.model_log_loss
    decision.log_loss_gain = _float(gain)
    numbers = (
        f"holdout log loss challenger v{decision.challenger_version} "
        f"{base.model_log_loss:.4f} vs champion v{decision.champion_before} {champion_ll:.4f} "
        f"(gain {gain:+.4f}, rule >= {cfg.promote_min_logloss_gain:g}) on "
        f"{decision.holdout_rows:,} rows"
    )
    if not base.beats:
        decision.action, decision.reason = (
            KindAction.KEPT,
            f"challenger does not beat the base rate ({base.model_log_loss:.4f} vs "
            f"{base.base_log_loss:.4f}); never promoted. {numbers}",
        )
    elif gain <= 0 or gain < cfg.promote_min_logloss_gain:
        decision.action, decision.reason = KindAction.KEPT, f"champion stays: {numbers}"
    else:
        decision.action, decision.reason = KindAction.TO_PROMOTE, f"challenger is better: {numbers}"
    return holdout


def _record_run(
    client: MlflowClient,
    config: CompanyConfig,
    decision: RetrainDecision,
    tracking_uri: str,
    project_dir: Path,
) -> str:
    experiment_id = get_or_create_experiment(
        client,
        config.registry.experiment,
        resolve_artifact_location(tracking_uri, project_dir=project_dir),
    )
    tags = {
        "trialcast.retrain": "true",
        "trialcast.retrain_id": decision.retrain_id,
        "retrain.status": decision.status,
        "retrain.fingerprint": decision.fingerprint,
        "config_hash": decision.config_hash,
        "company": config.company,
        "data_as_of": str(decision.data_as_of),
    }
    metrics: dict[str, float] = {f"seconds_{k}": v for k, v in decision.seconds.items()}
    for kind, kd in decision.kinds.items():
        tags[f"{kind}.action"] = kd.action
        tags[f"{kind}.reason"] = kd.reason[:4900]
        for key in ("champion_before", "champion_after", "challenger_version", "challenger_run_id"):
            value = getattr(kd, key)
            if value is not None:
                tags[f"{kind}.{key}"] = str(value)
        metrics[f"{kind}.promoted"] = float(kd.promoted)
        metrics[f"{kind}.holdout_rows"] = float(kd.holdout_rows)
        for key in (
            "challenger_log_loss",
            "champion_log_loss",
            "base_rate_log_loss",
            "log_loss_gain",
            "challenger_roc_auc",
            "champion_roc_auc",
        ):
            value = getattr(kd, key)
            if value is not None:
                metrics[f"{kind}.{key}"] = float(value)
    with mlflow.start_run(
        experiment_id=experiment_id, run_name=f"retrain-{decision.retrain_id}"
    ) as run:
        mlflow.set_tags(tags)
        mlflow.log_metrics(metrics)
        mlflow.log_dict(decision.to_dict(), "retrain_decision.json")
        return str(run.info.run_id)


def _lock_owner(lock_path: Path) -> str:
    try:
        info = json.loads(lock_path.with_suffix(".owner").read_text())
        return f" (pid {info['pid']} on {info['host']}, started {info['started_at']})"
    except (OSError, ValueError, KeyError):
        return ""


@dataclass(frozen=True)
class RetrainOptions:
    """Where a retrain writes and how it runs (not what it decides).

    Attributes:
        tracking_uri: MLflow store (else ``TRIALCAST_TRACKING_URI`` / config / default).
        lock_path: the lock file (default ``<output root>/models/retrain-<registry>.lock``).
        project_dir: the output root ``models/`` lives under (default: ``output_root()``).
        decisions_dir: where decision files go (default
            ``<output root>/models/retrain_decisions``).
        wait_seconds: how long to wait for a running retrain to finish (0: do not
            wait, return ``busy``).
        truth: demo truth table (adds the ceiling to the training run's metrics).
        progress: called with one-line status messages.
        on_stage: called with each name in ``STAGES`` as the job passes it (hooks for
            monitoring and for the crash tests).
    """

    tracking_uri: str | None = None
    lock_path: str | Path | None = None
    project_dir: str | Path | None = None
    decisions_dir: str | Path | None = None
    wait_seconds: float = 0.0
    truth: pd.DataFrame | None = None
    progress: Progress | None = None
    on_stage: Callable[[str], None] | None = None


def run_retrain(
    config: CompanyConfig,
    tables: Tables | Callable[[], Tables],
    *,
    now: pd.Timestamp | str | None = None,
    kinds: tuple[str, ...] = KINDS,
    options: RetrainOptions | None = None,
) -> RetrainDecision:
    """Retrain, judge the challenger against the champion, promote only if it is better.

    Args:
        config: the company config (``[model]`` rule, ``[registry]`` names).
        tables: the fresh tables, or a function loading them (called only once the
            lock is held, so a ``busy`` job does not load anything).
        now: the data's "now" for labels (default: the latest timestamp in the data).
        kinds: which models to retrain.
        options: the store, lock, folders, wait and hooks (``RetrainOptions``).

    Returns:
        The decision (also written as JSON and, when something was trained, logged
        as a ``retrain`` MLflow run).
    """
    opts = options or RetrainOptions()
    tracking_uri, lock_path, decisions_dir = opts.tracking_uri, opts.lock_path, opts.decisions_dir
    wait_seconds, truth, progress, on_stage = (
        opts.wait_seconds,
        opts.truth,
        opts.progress,
        opts.on_stage,
    )
    project_dir = opts.project_dir
    started = _now_utc()
    t0 = time.perf_counter()
    project = output_root(project_dir)
    uri = resolve_tracking_uri(config, tracking_uri, project_dir=project)
    lock_file = (
        Path(lock_path) if lock_path is not None else default_lock_path(config, uri, project)
    )
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    out_dir = (
        Path(decisions_dir) if decisions_dir is not None else project / MODELS_DIR / DECISIONS_DIR
    )
    retrain_id = uuid.uuid4().hex[:12]
    config_hash = config.config_hash()

    def say(message: str) -> None:
        log.info(message)
        if progress is not None:
            progress(message)

    def stage(name: str) -> None:
        if on_stage is not None:
            on_stage(name)

    decision = RetrainDecision(
        status=RetrainStatus.BUSY,
        message="",
        retrain_id=retrain_id,
        started_at=started.isoformat(),
        fingerprint="",
        config_hash=config_hash,
        data_as_of=None,
        kinds={},
        tracking_uri=uri,
        lock_path=lock_file,
    )
    lock = FileLock(str(lock_file), timeout=wait_seconds)
    try:
        lock.acquire(timeout=wait_seconds)
    except Timeout:
        decision.message = (
            f"another retrain is running{_lock_owner(lock_file)}; nothing done "
            f"(lock {lock_file}, waited {wait_seconds:g}s)"
        )
        decision.seconds["total"] = time.perf_counter() - t0
        return decision
    try:
        write_json_atomic(
            lock_file.with_suffix(".owner"),
            {
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "started_at": started.isoformat(),
                "retrain_id": retrain_id,
            },
        )
        stage("locked")
        try:
            _retrain_locked(
                config, tables, decision, uri=uri, project=project, now=now, kinds=kinds,
                truth=truth, say=say, stage=stage, t0=t0,
            )  # fmt: skip
        except BaseException as exc:
            decision.status = RetrainStatus.FAILED
            decision.error = f"{type(exc).__name__}: {exc}"
            decision.message = f"retrain failed: {decision.error}"
            decision.seconds["total"] = time.perf_counter() - t0
            try:
                write_decision(decision, out_dir, started)
            except OSError:
                log.exception("could not write the failed decision")
            raise
        decision.seconds["total"] = time.perf_counter() - t0
        if decision.status != RetrainStatus.UNCHANGED:
            with use_tracking_uri(uri) as client:
                decision.run_id = _record_run(client, config, decision, uri, project)
        write_decision(decision, out_dir, started)
        stage("recorded")
        return decision
    finally:
        lock.release()


def _retrain_locked(
    config: CompanyConfig,
    tables: Tables | Callable[[], Tables],
    decision: RetrainDecision,
    *,
    uri: str,
    project: Path,
    now: pd.Timestamp | str | None,
    kinds: tuple[str, ...],
    truth: pd.DataFrame | None,
    say: Progress,
    stage: Callable[[str], None],
    t0: float,
) -> None:
    """The body of ``run_retrain`` once the lock is held; fills in ``decision``."""
    seconds = decision.seconds
    if callable(tables):
        say("loading the tables...")
        tables = tables()
    seconds["load"] = time.perf_counter() - t0
    data_as_of = pd.Timestamp(now) if now is not None else tables.export_time()
    decision.data_as_of = str(data_as_of)
    fingerprint = input_fingerprint(tables, data_as_of)
    decision.fingerprint = fingerprint
    seconds["fingerprint"] = time.perf_counter() - t0 - seconds["load"]
    min_gain = config.model.promote_min_logloss_gain

    to_train: list[str] = []
    with use_tracking_uri(uri) as client:
        for kind in kinds:
            name = registered_name(config, kind)
            champion = version_by_alias(client, name, CHAMPION)
            before = str(champion.version) if champion is not None else None
            kd = KindDecision(
                kind=kind, action=KindAction.KEPT, reason="", registered_name=name,
                champion_before=before, champion_after=before, min_gain=min_gain,
            )  # fmt: skip
            done = _already_done(client, name, fingerprint, decision.config_hash)
            if done is not None:
                kd.action, kd.reason = KindAction.UNCHANGED, done[0]
            else:
                to_train.append(kind)
            decision.kinds[kind] = kd
    if not to_train:
        decision.status, decision.message = summarise(decision.kinds)
        return

    say("building fresh features and training sets...")
    started = time.perf_counter()
    # The spec is fitted before the validation cut, as ``train`` does (not on test cohorts).
    builder = point_in_time_builder(config, tables, data_as_of)
    sets = build_training_sets(config, builder, kinds=tuple(to_train), export_time=data_as_of)
    seconds["features"] = time.perf_counter() - started
    trainable = tuple(k for k in to_train if sets.frame(k) is not None)
    for kind, message in sets.refused.items():
        kd = decision.kinds[kind]
        kd.action, kd.reason = KindAction.REFUSED, f"{message}; the champion stays"
    outcomes: dict[str, ModelOutcome] = {}
    if trainable:
        started = time.perf_counter()
        try:
            result = train_models(
                config,
                TrainingSets(
                    conversion=sets.conversion,
                    churn=sets.churn,
                    spec=sets.spec,
                    refused={},
                    path="retrain",
                ),
                kinds=trainable,
                export_time=data_as_of,
                options=RecipeOptions(truth=truth, progress=say),
                target=RecordTarget(tracking_uri=uri, project_dir=project),
            )
        except NotEnoughDataError as exc:
            for kind in trainable:
                kd = decision.kinds[kind]
                kd.action, kd.reason = KindAction.REFUSED, f"{exc}; the champion stays"
        else:
            outcomes = result.models
            for kind, message in result.refused.items():
                kd = decision.kinds[kind]
                kd.action, kd.reason = KindAction.REFUSED, f"{message}; the champion stays"
        seconds["train"] = time.perf_counter() - started

    started = time.perf_counter()
    with use_tracking_uri(uri) as client:
        for kind, outcome in outcomes.items():
            kd = decision.kinds[kind]
            kd.challenger_version, kd.challenger_run_id = outcome.version, outcome.run_id
            for key, value in (
                (FINGERPRINT_TAG, decision.fingerprint),
                (RETRAIN_ID_TAG, decision.retrain_id),
            ):
                client.set_model_version_tag(outcome.registered_name, outcome.version, key, value)
        stage("trained")

        for kind, outcome in outcomes.items():
            kd = decision.kinds[kind]
            frame = sets.frame(kind)
            assert frame is not None
            if kd.champion_before is None:
                # No champion existed: train_models made this version the first champion
                # if it beats the base rate (the rule with nothing to compare against).
                _judge_first(config, frame, outcome, kd)
                continue
            _judge(client, config, builder, frame, outcome, kd)
            client.set_model_version_tag(
                kd.registered_name,
                outcome.version,
                "beats_champion",
                str(kd.action == KindAction.TO_PROMOTE).lower()
                if kd.champion_log_loss is not None
                else "unknown",
            )
            if kd.champion_log_loss is not None:
                client.set_model_version_tag(
                    kd.registered_name,
                    outcome.version,
                    "champion_test_log_loss",
                    f"{kd.champion_log_loss:.6f}",
                )
                client.set_model_version_tag(
                    kd.registered_name,
                    outcome.version,
                    "compared_champion_version",
                    str(kd.champion_before),
                )
        stage("evaluated")
        seconds["evaluate"] = time.perf_counter() - started

        for kind, outcome in outcomes.items():
            kd = decision.kinds[kind]
            if kd.action != KindAction.TO_PROMOTE:
                continue
            stage("promoting")
            current = version_by_alias(client, kd.registered_name, CHAMPION)
            if current is None or str(current.version) != kd.champion_before:
                kd.action = KindAction.KEPT
                kd.reason = (
                    f"the champion moved to version {None if current is None else current.version} "
                    f"while this job ran (by hand?); not overriding it. {kd.reason}"
                )
                kd.champion_after = None if current is None else str(current.version)
                continue
            # The one and only write to the champion alias: atomic, never cleared first.
            version = client.get_model_version(kd.registered_name, outcome.version)
            promotion = set_champion(client, kd.registered_name, version)
            if promotion.promoted:
                kd.action, kd.champion_after = KindAction.PROMOTED, outcome.version
                kd.reason = f"{promotion.reason}; {kd.reason}"
            else:
                kd.action, kd.reason = KindAction.KEPT, f"{promotion.reason}; {kd.reason}"
        for kind, outcome in outcomes.items():
            kd = decision.kinds[kind]
            client.set_model_version_tag(
                kd.registered_name, outcome.version, DECISION_TAG, kd.action
            )
    decision.status, decision.message = summarise(decision.kinds)


def _judge_first(
    config: CompanyConfig, frame: pd.DataFrame, outcome: ModelOutcome, kd: KindDecision
) -> None:
    """The first model of a registry: champion iff ``train_models`` promoted it."""
    cfg = config.model
    holdout = recent_holdout(
        frame,
        outcome.kind,
        valid_fraction=cfg.valid_fraction,
        test_fraction=cfg.test_fraction,
        horizon_days=config.trial.churn_horizon_days,
    )
    kd.holdout_rows = len(holdout.test)
    kd.holdout_positives = int(holdout.labels.sum())
    kd.challenger_log_loss = _float(outcome.base_rate.model_log_loss)
    kd.base_rate_log_loss = _float(outcome.base_rate.base_log_loss)
    promotion = outcome.promotion
    if promotion is not None and promotion.promoted:
        kd.action, kd.champion_after = KindAction.PROMOTED, outcome.version
        kd.reason = (
            f"no champion yet: {promotion.reason} (beats the base rate, log loss "
            f"{outcome.base_rate.model_log_loss:.4f} vs {outcome.base_rate.base_log_loss:.4f})"
        )
    else:
        kd.action = KindAction.KEPT
        kd.reason = "no champion yet, and the challenger was not promoted: " + (
            promotion.reason if promotion is not None else "a champion appeared meanwhile"
        )
