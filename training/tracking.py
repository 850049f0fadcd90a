"""MLflow run logging: what was trained, on which data, how well, with which plots.

Every run records enough to reproduce and audit it: parameters, a fingerprint of
the data (row counts, date range, a SHA-256 of the account ids, snapshots and
labels), the config hash, the git commit, the feature list, the leakage report,
metrics of the model and every baseline (overall and per snapshot), diagnostic
plots and the model itself (pyfunc, with signature and input example).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightgbm as lgb
import matplotlib.pyplot as plt
import mlflow
import numpy as np
import pandas as pd
import scipy
import sklearn
from mlflow import MlflowClient
from mlflow.models import infer_signature

from models.kinds import model_kind
from training.model import TrialcastModel
from training.pyfunc import ARTIFACT_KEY, ENTRY_FILE, signature_frame
from training.split import Split

ENV_GIT_COMMIT = "TRIALCAST_GIT_COMMIT"
PROGRESS_BAR_ENV = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
_MLFLOW_URI_ENVS = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


@contextlib.contextmanager
def use_tracking_uri(uri: str) -> Iterator[MlflowClient]:
    """Point MLflow (tracking and registry) at ``uri`` for the block, then restore.

    MLflow keeps the URIs as process globals (and mirrors them into environment
    variables); both are put back afterwards so callers are not surprised.
    """
    saved_env = {k: os.environ.get(k) for k in (*_MLFLOW_URI_ENVS, PROGRESS_BAR_ENV)}
    previous_tracking = mlflow.get_tracking_uri() if mlflow.is_tracking_uri_set() else None
    previous_registry = mlflow.get_registry_uri() if previous_tracking else None
    os.environ[PROGRESS_BAR_ENV] = "false"  # no download bars in job logs
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        yield MlflowClient(tracking_uri=uri, registry_uri=uri)
    finally:
        mlflow.set_tracking_uri(previous_tracking)  # type: ignore[arg-type]
        mlflow.set_registry_uri(previous_registry)  # type: ignore[arg-type]
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def get_or_create_experiment(client: MlflowClient, name: str, artifact_location: str) -> str:
    """The id of experiment ``name``, created with ``artifact_location`` if new."""
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        if experiment.lifecycle_stage == "deleted":
            client.restore_experiment(experiment.experiment_id)
        return str(experiment.experiment_id)
    return str(client.create_experiment(name, artifact_location=artifact_location))


def git_commit(project_dir: str | Path | None = None) -> str:
    """The commit checked out in ``project_dir`` (or a parent), read from ``.git``; else 'unknown'.

    Reads the files directly (no git binary needed). ``TRIALCAST_GIT_COMMIT``
    overrides, for builds that ship without ``.git``.
    """
    env = os.environ.get(ENV_GIT_COMMIT)
    if env:
        return env
    start = Path(project_dir or Path.cwd()).resolve()
    for folder in (start, *start.parents):
        git = folder / ".git"
        if git.is_file():  # worktree: "gitdir: <path>"
            text = git.read_text().strip()
            if text.startswith("gitdir:"):
                git = (folder / text.split(":", 1)[1].strip()).resolve()
        if not git.is_dir():
            continue
        try:
            head = (git / "HEAD").read_text().strip()
            if not head.startswith("ref:"):
                return head
            ref = head.split(":", 1)[1].strip()
            for base in (git, _common_dir(git)):
                if (base / ref).is_file():
                    return (base / ref).read_text().strip()
                packed = base / "packed-refs"
                if packed.is_file():
                    for line in packed.read_text().splitlines():
                        if line.endswith(" " + ref):
                            return line.split(" ", 1)[0]
        except OSError:
            return "unknown"
        return "unknown"
    return "unknown"


def _common_dir(git: Path) -> Path:
    common = git / "commondir"
    return (git / common.read_text().strip()).resolve() if common.is_file() else git


def data_fingerprint(frame: pd.DataFrame, split: Split, kind: str) -> dict[str, Any]:
    """Row counts, date range and a SHA-256 of (account_id, snapshot, label) of a training set."""
    keys = pd.DataFrame(
        {
            "a": frame["account_id"].astype(str).to_numpy(),
            "s": frame["snapshot"].astype(str).to_numpy() if "snapshot" in frame else "",
            "y": frame["label"].astype(int).astype(str).to_numpy(),
        }
    ).sort_values(["a", "s"], kind="mergesort")
    text = "\n".join(keys["a"] + "|" + keys["s"] + "|" + keys["y"])
    when = pd.to_datetime(frame[model_kind(kind).entry_column])
    return {
        "rows": len(frame),
        "accounts": int(frame["account_id"].nunique()),
        "positives": int(frame["label"].sum()),
        **{f"rows_{k}": v for k, v in split.sizes().items()},
        "date_from": str(when.min()),
        "date_to": str(when.max()),
        "valid_from": str(split.cut_valid),
        "test_from": str(split.cut_test),
        "sha256": hashlib.sha256(text.encode()).hexdigest(),
    }


def metrics_to_mlflow(table: pd.DataFrame) -> dict[str, float]:
    """Flatten a tidy metrics table to ``<model>.<segment>.<metric>`` keys (NaN dropped)."""
    out: dict[str, float] = {}
    skip = {"model", "segment"}
    for row in table.to_dict("records"):
        for name, value in row.items():
            if name in skip or value is None:
                continue
            v = float(value)
            if math.isfinite(v):
                out[f"{row['model']}.{row['segment']}.{name}"] = v
    return out


def pip_requirements() -> list[str]:
    """Pinned requirements of the pyfunc model (given explicitly: inference is slow)."""
    return [
        f"mlflow=={mlflow.__version__}",
        f"lightgbm=={lgb.__version__}",
        f"pandas=={pd.__version__}",
        f"numpy=={np.__version__}",
        f"scipy=={scipy.__version__}",
        f"scikit-learn=={sklearn.__version__}",
    ]


@dataclass
class RunRecord:
    """Everything one training run logs.

    Attributes:
        kind: ``"conversion"`` or ``"churn"``.
        model: the fitted model.
        params: run parameters (LightGBM and training settings).
        metrics: tidy test metrics (``model``, ``segment`` + metric columns).
        extra_metrics: other scalar metrics (validation loss, timings...).
        tags: run tags (strings).
        fingerprint: the data fingerprint.
        test_predictions: the test part with a probability column per model.
        prob_cols: model name -> probability column in ``test_predictions``.
        example: a few feature rows (input example and signature).
        documents: JSON documents to log (name -> data).
    """

    kind: str
    model: TrialcastModel
    params: dict[str, Any]
    metrics: pd.DataFrame
    extra_metrics: dict[str, float]
    tags: dict[str, str]
    fingerprint: dict[str, Any]
    test_predictions: pd.DataFrame
    prob_cols: dict[str, str]
    example: pd.DataFrame
    documents: dict[str, Any] = field(default_factory=dict)
    shap_sample: int = 2000


@dataclass(frozen=True)
class LoggedRun:
    """Where a run and its model ended up."""

    run_id: str
    model_uri: str
    experiment_id: str


def _log_figure(fig: Any, path: str) -> None:
    mlflow.log_figure(fig, path)
    plt.close(fig)


def log_training_run(record: RunRecord, *, experiment_id: str, run_name: str) -> LoggedRun:
    """Log one model's run to the active tracking URI (see ``use_tracking_uri``).

    Returns:
        The run id and the logged model's URI (register it with ``training.registry``).
    """
    from training.plots import (
        build_lift_plot,
        build_reliability_plot,
        build_roc_pr_plot,
        build_shap_summary_plot,
    )

    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name) as run:
        mlflow.set_tags(record.tags)
        mlflow.log_params({k: str(v)[:6000] for k, v in record.params.items()})
        mlflow.log_params({f"data_{k}": v for k, v in record.fingerprint.items()})
        mlflow.log_metrics({**metrics_to_mlflow(record.metrics), **record.extra_metrics})
        mlflow.log_dict(record.fingerprint, "data_fingerprint.json")
        mlflow.log_dict({"features": record.model.features}, "features.json")
        for name, data in record.documents.items():
            mlflow.log_dict(data, name)
        mlflow.log_text(record.metrics.to_csv(index=False), "metrics.csv")
        mlflow.log_text(record.model.spec_json or "{}", "feature_spec.json")

        title = f"{record.kind} (test)"
        frame, cols = record.test_predictions, record.prob_cols
        _log_figure(build_reliability_plot(frame, cols, title), "plots/reliability.png")
        _log_figure(build_roc_pr_plot(frame, cols, title), "plots/roc_pr.png")
        _log_figure(build_lift_plot(frame, cols, title), "plots/lift.png")
        _log_figure(
            build_shap_summary_plot(record.model, frame, sample=record.shap_sample),
            "plots/shap_summary.png",
        )

        example = signature_frame(record.model, record.example)
        signature = infer_signature(example, record.model.predict_proba(record.example))
        with tempfile.TemporaryDirectory() as tmp:
            model_dir = record.model.save(Path(tmp) / ARTIFACT_KEY)
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=str(ENTRY_FILE),
                artifacts={ARTIFACT_KEY: str(model_dir)},
                signature=signature,
                input_example=example,
                pip_requirements=pip_requirements(),
            )
        return LoggedRun(
            run_id=run.info.run_id, model_uri=info.model_uri, experiment_id=experiment_id
        )


def dump_json(data: Any) -> str:
    """JSON text with numpy scalars made plain."""
    return json.dumps(data, default=lambda o: o.item() if hasattr(o, "item") else str(o))
