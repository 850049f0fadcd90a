"""Dask job entry points: features, training and batch scoring on a cluster.

Each ``run_*_dask`` function connects to the scheduler at ``scheduler`` (or
``$TRIALCAST_DASK_SCHEDULER``), or starts a ``LocalCluster`` of ``n_workers``
single-threaded worker processes when neither is given, runs one job and shuts
down what it started. The CLI wires them in as ``--dask-scheduler`` options.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from features.config import CompanyConfig
from features.distributed import (
    DistributedFeatureResult,
    replace_dir,
    require_event_sources,
    run_distributed_features,
)
from models.kinds import model_kind

#: Environment variable naming the scheduler address (``tcp://host:8786``).
SCHEDULER_ENV = "TRIALCAST_DASK_SCHEDULER"


def resolve_scheduler(scheduler: str | None) -> str | None:
    """The scheduler address: the argument, else ``$TRIALCAST_DASK_SCHEDULER``, else None (local)."""
    return scheduler or os.environ.get(SCHEDULER_ENV) or None


@contextmanager
def dask_client(
    scheduler: str | None = None,
    *,
    n_workers: int = 2,
    threads_per_worker: int = 1,
    memory_limit: str | float | None = "auto",
) -> Iterator[Any]:
    """A ``distributed.Client`` on the given cluster, or on a fresh ``LocalCluster``.

    A local cluster runs ``n_workers`` worker processes (one thread each: the
    feature code is numpy-bound and holds the GIL between calls) and is closed
    on exit; a remote cluster is only disconnected from.
    """
    from distributed import Client, LocalCluster

    address = resolve_scheduler(scheduler)
    if address is not None:
        client = Client(address)
        try:
            yield client
        finally:
            client.close()
        return
    cluster = LocalCluster(
        n_workers=n_workers,
        threads_per_worker=threads_per_worker,
        processes=True,
        memory_limit=memory_limit,
        dashboard_address=None,
    )
    client = Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def run_features_dask(
    config: CompanyConfig,
    out: str | Path,
    scheduler: str | None = None,
    n_workers: int = 2,
    *,
    as_of: pd.Timestamp | None = None,
    n_partitions: int | None = None,
    training_sets: bool = True,
) -> DistributedFeatureResult:
    """The feature job on Dask: same outputs as ``trialcast features`` (as Parquet folders).

    See ``features.distributed.run_distributed_features``.
    """
    require_event_sources(config)  # before a cluster starts
    with dask_client(scheduler, n_workers=n_workers) as client:
        return run_distributed_features(
            config,
            out,
            client,
            as_of=as_of,
            n_partitions=n_partitions,
            training_sets=training_sets,
        )


@dataclass
class DaskTrainResult:
    """Models trained on Dask, where they were saved and how they were recorded.

    Attributes:
        models: kind -> model folder (``TrialcastModel.save`` layout) of a promoted model.
        metrics: kind -> test metrics (``test_auc``, ``test_log_loss``, rows, rounds).
        refused: kind -> reason it was not trained, or the gate's verdict and
            evidence when it refused the model (saved under ``<model_dir>/rejected``).
        verdicts: kind -> the promotion gate's verdict.
        exclusions: kind -> features the single-feature guard excluded.
        features: kind -> the model's input columns.
        versions: kind -> registered MLflow model version (every judged model).
        tracking_uri: the MLflow store the models were logged and registered in.
        seconds: wall time per kind.
    """

    models: dict[str, Path] = field(default_factory=dict)
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)
    verdicts: dict[str, str] = field(default_factory=dict)
    exclusions: dict[str, list[str]] = field(default_factory=dict)
    features: dict[str, list[str]] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    tracking_uri: str | None = None
    seconds: dict[str, float] = field(default_factory=dict)


def run_train_dask(
    config: CompanyConfig,
    features_dir: str | Path,
    model_dir: str | Path,
    scheduler: str | None = None,
    n_workers: int = 2,
    *,
    kinds: tuple[str, ...] = ("conversion", "churn"),
    record: Any = None,
) -> DaskTrainResult:
    """Train the conversion and churn models on Dask through the one recipe.

    Reads ``<features_dir>/{trial,churn}_training.parquet`` and
    ``feature_spec.json`` (the Dask feature job's output: its spec was fitted
    like ``trialcast train``'s, leak scan and exclusions included) and calls
    ``training.recipe.fit_kind`` with the Dask engine (``training.dask_recipe``):
    the kind's split (churn: out of time, purged), the guards (single-feature
    guard included), small-data mode, ``lightgbm.dask``, calibration, baselines
    that need no training rows on the driver, and the gate's verdict. Each
    judged model is then logged and registered in MLflow like ``trialcast train``'s
    (``training.train.record_fitted``; ``record`` is a ``RecordTarget``, default:
    the config's store) and saved to ``<model_dir>/<kind>`` with its ``gate.json``;
    a model the gate refuses goes to ``<model_dir>/rejected/<kind>`` instead, and
    every Dask scoring job refuses it.
    """
    import dask.dataframe as dd

    from training.dask_recipe import DaskEngine
    from training.guards import NotEnoughDataError
    from training.recipe import RecipeOptions, fit_kind
    from training.train import RecordTarget, record_fitted
    from training.train_results import FittedKind

    features = Path(features_dir)
    spec_json = (features / "feature_spec.json").read_text()
    result = DaskTrainResult()
    root = Path(model_dir)
    root.mkdir(parents=True, exist_ok=True)
    fitted: dict[str, FittedKind] = {}
    with dask_client(scheduler, n_workers=n_workers) as client:
        engine = DaskEngine(client)
        for kind in kinds:
            path = features / model_kind(kind).training_file
            if not path.exists():
                result.refused[kind] = f"{kind} model: {path} not found (no labelled rows)"
                continue
            started = time.perf_counter()
            frame = dd.read_parquet(str(path))
            try:
                fit = fit_kind(
                    config,
                    frame,
                    kind,
                    spec_json=spec_json,
                    options=RecipeOptions(path="dask"),
                    engine=engine,
                )
            except NotEnoughDataError as exc:
                result.refused[kind] = str(exc)
                continue
            fitted[kind] = fit
            result.seconds[kind] = time.perf_counter() - started
    if not fitted:
        return result
    # Recorded first: against a champion the verdict is judged again on the same rows.
    recorded = record_fitted(config, fitted, record if record is not None else RecordTarget())
    result.tracking_uri = recorded.tracking_uri
    result.versions = {k: o.version for k, o in recorded.models.items()}
    for fit in fitted.values():
        _save_dask_model(fit, root, result)
    return result


def _save_dask_model(fit: Any, root: Path, result: DaskTrainResult) -> None:
    """Save one judged Dask model as a folder with its ``gate.json``: under ``root/<kind>``
    when promoted, else under ``root/rejected/<kind>``; fill in ``result``."""
    from training.dask_gate import write_gate

    kind, gate = fit.kind, fit.gate
    metrics = {
        "test_rows": float(gate.n_rows),
        "test_auc": gate.auc,
        "test_log_loss": gate.model_log_loss,
        "rounds": float(fit.model.best_iteration),
    }
    staging = root / f".{kind}.tmp-{uuid.uuid4().hex}"
    fit.model.save(staging)
    (staging / "dask_metrics.json").write_text(json.dumps(metrics, indent=2))
    write_gate(gate, staging, kind)
    result.metrics[kind] = metrics
    result.verdicts[kind] = gate.text
    result.exclusions[kind] = list(fit.leakage.excluded)
    result.features[kind] = list(fit.model.features)
    if gate.promotable:
        replace_dir(staging, root / kind)
        result.models[kind] = root / kind
    else:
        (root / "rejected").mkdir(exist_ok=True)
        replace_dir(staging, root / "rejected" / kind)
        result.refused[kind] = gate.message(kind)


def run_score_dask(
    model_dir: str | Path,
    features_path: str | Path,
    out: str | Path,
    scheduler: str | None = None,
    n_workers: int = 2,
    *,
    top_k: int = 3,
    lifecycle: tuple[str, ...] | None = None,
) -> dict[str, Any]:
    """Score a feature dataset on Dask with calibrated probabilities and the top reasons.

    Args:
        model_dir: a saved ``TrialcastModel`` folder.
        features_path: Parquet file or folder of feature rows (e.g. the feature
            job's ``account_features.parquet``).
        out: output Parquet folder (written under a temporary name, then renamed).
        top_k: reasons per row (largest positive and negative contributions).
        lifecycle: keep only rows in these lifecycle states (default: open
            trials for a conversion model, paying customers for a churn model).

    Returns:
        ``rows`` scored, ``seconds`` and the ``path`` written.
    """
    import dask.dataframe as dd

    from training.dask_gate import require_promoted
    from training.distributed import score_dask
    from training.model import TrialcastModel

    require_promoted(model_dir)
    model = TrialcastModel.load(model_dir)
    target = Path(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.tmp-{uuid.uuid4().hex}")
    started = time.perf_counter()
    with dask_client(scheduler, n_workers=n_workers):
        frame = dd.read_parquet(str(features_path))
        keep = lifecycle if lifecycle is not None else model_kind(model.kind).scored_lifecycles
        if keep and "lifecycle" in frame.columns:
            frame = frame[frame["lifecycle"].astype(str).isin(list(keep))]
        scored = score_dask(frame, model, top_k=top_k)
        scored.to_parquet(str(staging), write_index=True)
        rows = len(dd.read_parquet(str(staging)))
    replace_dir(staging, target)
    return {"rows": rows, "seconds": time.perf_counter() - started, "path": target}


@dataclass
class _ShippedScores:
    """What ``_score_on_dask`` returns: per-part results and the context to write them."""

    builder: Any
    moment: pd.Timestamp
    results: list[Any]
    staging: Path
    target: Path
    started: float


def _score_on_dask(
    config: CompanyConfig,
    model_dir: str | Path,
    out: str | Path,
    kind: str,
    predict: Any,
    *,
    scheduler: str | None,
    n_workers: int,
    as_of: pd.Timestamp | None,
    n_parts: int | None,
) -> _ShippedScores:
    """Run a shipping scoring function on Dask, one interleaved share per task.

    The model must have passed the promotion gate and be of ``kind``. The tables
    are loaded and indexed once and shipped to every worker with the model; each
    task runs ``predict(builder, model, as_of, part=(i, n))``: the very function
    the one-machine jobs and the backtest use, so the numbers are identical.
    """
    from features.build import FeatureBuilder
    from features.loaders import load_tables
    from features.spec import FeatureSpec
    from serving.batch import export_now
    from training.dask_gate import require_promoted
    from training.model import TrialcastModel

    started = time.perf_counter()
    require_promoted(model_dir)
    model = TrialcastModel.load(model_dir)
    if model.kind != kind:
        what = model_kind(kind).scored
        raise ValueError(f"{model_dir}: a {model.kind} model; {what} need a {kind} model")
    tables = load_tables(config).tables
    spec = FeatureSpec.from_json(model.spec_json) if model.spec_json else None
    builder = FeatureBuilder.from_tables(tables, config, spec)
    moment = pd.Timestamp(as_of) if as_of is not None else export_now(config, tables)
    target = Path(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.tmp-{uuid.uuid4().hex}")
    with dask_client(scheduler, n_workers=n_workers) as client:
        parts = n_parts or max(2 * len(client.scheduler_info()["workers"]), 1)
        shared_builder = client.scatter(builder, broadcast=True)
        shared_model = client.scatter(model, broadcast=True)
        futures = [
            client.submit(predict, shared_builder, shared_model, moment, part=(i, parts))
            for i in range(parts)
        ]
        results = client.gather(futures)
    staging.mkdir(parents=True)
    return _ShippedScores(builder, moment, results, staging, target, started)


def run_open_trials_dask(
    config: CompanyConfig,
    model_dir: str | Path,
    out: str | Path,
    scheduler: str | None = None,
    n_workers: int = 2,
    *,
    as_of: pd.Timestamp | None = None,
    n_parts: int | None = None,
) -> dict[str, Any]:
    """Score the open trials at ``as_of`` on Dask through the shipping path
    (``serving.batch.predict_open_trials``, as ``score``, ``forecast`` and the backtest).

    Writes a Parquet folder of ``account_id``, ``as_of``, ``p_convert``,
    ``trial_end``, ``past_end`` and returns ``rows``, ``closed`` (trials past
    their window: p = 0, not written), ``as_of``, ``seconds`` and ``path``.
    """
    from serving.batch import predict_open_trials

    run = _score_on_dask(
        config, model_dir, out, "conversion", predict_open_trials,
        scheduler=scheduler, n_workers=n_workers, as_of=as_of, n_parts=n_parts,
    )  # fmt: skip
    rows = closed = 0
    for i, res in enumerate(run.results):
        frame = pd.DataFrame(
            {
                "account_id": res.features.index.astype(str),
                "as_of": run.moment,
                "p_convert": res.p_convert,
                "trial_end": pd.to_datetime(run.builder.index.trial_end[res.positions], unit="s"),
                "past_end": res.past_end,
            }
        )
        frame.to_parquet(run.staging / f"part.{i}.parquet", index=False)
        rows += len(frame)
        closed += len(res.closed)
    replace_dir(run.staging, run.target)
    seconds = time.perf_counter() - run.started
    return {
        "rows": rows,
        "closed": closed,
        "as_of": run.moment,
        "seconds": seconds,
        "path": run.target,
    }


def run_customers_dask(
    config: CompanyConfig,
    model_dir: str | Path,
    out: str | Path,
    scheduler: str | None = None,
    n_workers: int = 2,
    *,
    as_of: pd.Timestamp | None = None,
    n_parts: int | None = None,
) -> dict[str, Any]:
    """Score the accounts paying at ``as_of`` for churn on Dask through the shipping path
    (``serving.batch.predict_paying_customers``: features at ``as_of``, never the
    trial-end snapshot). Writes ``account_id``, ``mrr``, ``p_churn``, ``as_of`` and
    returns ``rows``, ``as_of``, ``seconds`` and ``path``.
    """
    from serving.batch import predict_paying_customers

    run = _score_on_dask(
        config, model_dir, out, "churn", predict_paying_customers,
        scheduler=scheduler, n_workers=n_workers, as_of=as_of, n_parts=n_parts,
    )  # fmt: skip
    rows = 0
    for i, frame in enumerate(run.results):
        frame.assign(as_of=run.moment).to_parquet(run.staging / f"part.{i}.parquet", index=False)
        rows += len(frame)
    replace_dir(run.staging, run.target)
    seconds = time.perf_counter() - run.started
    return {"rows": rows, "as_of": run.moment, "seconds": seconds, "path": run.target}
