"""MLflow run logging: what was trained, on which data, how well, with which plots.

Every run records enough to reproduce and audit it: parameters, a fingerprint of
the data (row counts, date range, a SHA-256 of the account ids, snapshots and
labels), the config hash, the git commit, the feature list, the leakage report,
metrics of the model and every baseline (overall and per snapshot), diagnostic
plots and the model itself (pyfunc, with signature and input example).

A run costs what its work costs: one ``MlflowClient`` per run (no fluent calls,
each of which builds its own client), parameters, metrics and tags in one
``log_batch``, every artifact written to a local folder and uploaded in one
``log_artifacts``, and the pyfunc model saved with ``mlflow.pyfunc.save_model``
into that folder rather than ``log_model`` (which, in MLflow 3, also creates a
logged-model entity and reads back the history of every metric of the run to
link it: most of the logging time). The registry version points at the run's
``model`` folder, so ``models:/<name>@<alias>`` loads as before.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import math
import os
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from models.kinds import model_kind
from models.mlflow_env import disable_mlflow_telemetry
from training.model import TrialcastModel
from training.pyfunc import ARTIFACT_KEY, ENTRY_FILE, signature_frame
from training.split import Split

if TYPE_CHECKING:
    from concurrent.futures import Future

    from mlflow import MlflowClient

    from training.shap_sample import ShapSample

ENV_GIT_COMMIT = "TRIALCAST_GIT_COMMIT"
PROGRESS_BAR_ENV = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
_MLFLOW_URI_ENVS = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


@contextlib.contextmanager
def use_tracking_uri(uri: str) -> Iterator[MlflowClient]:
    """Point MLflow (tracking and registry) at ``uri`` for the block, then restore.

    Yields the one ``MlflowClient`` the block should use for everything it
    records. MLflow keeps the URIs as process globals (and mirrors them into
    environment variables); both are put back afterwards so callers are not
    surprised. MLflow's usage telemetry is switched off first (see
    ``models.mlflow_env``). A SQLite store that does not exist yet starts as a copy
    of an empty store MLflow migrated once (``training.store_template``).
    """
    disable_mlflow_telemetry()
    import mlflow
    from mlflow import MlflowClient

    from training.store_template import seed_new_store

    seed_new_store(uri)

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
    a = frame["account_id"].astype(str).to_numpy(dtype=object)
    s = (
        frame["snapshot"].astype(str).to_numpy(dtype=object)
        if "snapshot" in frame
        else np.full(len(frame), "", dtype=object)
    )
    y = frame["label"].astype(int).astype(str).to_numpy(dtype=object)
    order = np.lexsort((s, a))  # by account, then snapshot; ties keep their row order
    rows = zip(a[order].tolist(), s[order].tolist(), y[order].tolist(), strict=True)
    text = "\n".join(map("|".join, rows))
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


def metrics_to_mlflow(
    table: pd.DataFrame, *, every_segment: tuple[str, ...] = ("model",)
) -> dict[str, float]:
    """Flatten a tidy metrics table to ``<model>.<segment>.<metric>`` keys (NaN dropped).

    The models in ``every_segment`` (the one being logged) keep every segment;
    the comparators (baselines, champion, ceiling) keep the ``all`` segment. The
    whole table is the run's ``metrics.csv``: logging each comparator's segments
    too would put ~900 metrics in the run (a third of its logging time and an
    unreadable metrics list) to repeat that file.
    """
    out: dict[str, float] = {}
    skip = {"model", "segment"}
    for row in table.to_dict("records"):
        if row["model"] not in every_segment and row["segment"] != "all":
            continue
        for name, value in row.items():
            if name in skip or value is None:
                continue
            v = float(value)
            if math.isfinite(v):
                out[f"{row['model']}.{row['segment']}.{name}"] = v
    return out


#: The pyfunc model's runtime packages (pinned to the installed versions), and the
#: module each provides.
MODEL_PACKAGES = ("mlflow", "lightgbm", "pandas", "numpy", "scipy", "scikit-learn")
_MODULE_OF = {"scikit-learn": "sklearn"}


@contextlib.contextmanager
def requirements_checked_by_name() -> Iterator[None]:
    """Let MLflow check the model's pinned requirements without scanning every install.

    ``save_model`` checks the pip requirements against the installed packages and,
    to do so, first maps every module of every installed distribution to its
    package (``importlib_metadata.packages_distributions``: about 0.5 s on this
    project's environment, once a process). The requirements are the installed
    versions of ``MODEL_PACKAGES``, so their own module map gives MLflow the same
    answer. Done only while MLflow has not built its map, and undone after, so
    any other MLflow call still sees the full map; a MLflow without this
    internal is left alone (the check then costs its usual time).
    """
    from mlflow.utils import requirements_utils

    if getattr(requirements_utils, "_MODULES_TO_PACKAGES", ()) is not None:
        yield
        return
    seeded = {_MODULE_OF.get(p, p): [p] for p in MODEL_PACKAGES}
    requirements_utils._MODULES_TO_PACKAGES = seeded  # type: ignore[assignment]
    try:
        yield
    finally:
        requirements_utils._MODULES_TO_PACKAGES = None


def pip_requirements() -> list[str]:
    """Pinned requirements of the pyfunc model (given explicitly: inference is slow).

    Versions come from the installed distributions' metadata, so none of the
    libraries is imported just to read its ``__version__``.
    """
    pins = []
    for package in MODEL_PACKAGES:
        try:
            pins.append(f"{package}=={version(package)}")
        except PackageNotFoundError:
            pins.append(package)
    return pins


@contextlib.contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for the block (then restore it as it was).

    Recording a model imports MLflow's SQL store and matplotlib and builds
    SQLAlchemy's mappers: hundreds of thousands of new objects, which set off
    full collections, each of which walks every object of the process (pandas,
    scikit-learn, LightGBM, MLflow...): 0.3-0.6 s of the recording of two models.
    Reference counting still frees everything that is not in a cycle; cycles made
    meanwhile (figures, say) wait for the first collection after the block.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


#: Test rows drawn in a run's SHAP summary plot.
SHAP_SAMPLE = 1000


@contextlib.contextmanager
def explain_ahead(
    tests: Mapping[str, tuple[TrialcastModel, pd.DataFrame]], *, sample: int = SHAP_SAMPLE
) -> Iterator[dict[str, Future[ShapSample]]]:
    """Compute the SHAP summary plots' contributions in a thread while the block runs.

    ``tests``: per kind, the model and the test rows its run plots. The rows are
    drawn here (``training.shap_sample.shap_rows``, the plot's own sample); one
    worker thread then runs the TreeSHAP passes, one kind after the other, on one
    LightGBM thread each. LightGBM's C code runs without Python's lock, so on a
    second core this overlaps the recording's Python work (importing MLflow's SQL
    store, the champion comparison, the plots' imports) instead of adding to it.
    Yields a future per kind for ``RunRecord.explained``; an error in the thread is
    raised where the plot reads its future. Leaving the block waits for a pass
    still running and cancels those not started.
    """
    from concurrent.futures import ThreadPoolExecutor

    from training.shap_sample import explain_rows, shap_rows

    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="trialcast-shap")
    try:
        rows = {
            kind: (model, shap_rows(frame, sample=sample)) for kind, (model, frame) in tests.items()
        }
        yield {
            kind: executor.submit(explain_rows, model, part, num_threads=1)
            for kind, (model, part) in rows.items()
        }
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


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
        shap_sample: test rows drawn in the SHAP summary plot (TreeSHAP costs
            about 0.5 ms a row on the demo's conversion model; 1,000 dots per
            feature show its spread as well as more would).
        explained: those rows' contributions, being computed ahead (``explain_ahead``);
            None: computed when the plot is drawn.
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
    shap_sample: int = SHAP_SAMPLE
    explained: Future[ShapSample] | None = None


@dataclass(frozen=True)
class LoggedRun:
    """Where a run and its model ended up."""

    run_id: str
    model_uri: str
    experiment_id: str


def log_training_run(
    record: RunRecord,
    *,
    experiment_id: str,
    run_name: str,
    client: MlflowClient | None = None,
) -> LoggedRun:
    """Log one model's run through ``client`` (default: one for the active tracking URI).

    Parameters, metrics and tags go in one batch; documents, plots and the pyfunc
    model are written to a local folder and uploaded in one call (see the module
    docstring). Register the returned ``model_uri`` with ``training.registry``.

    Returns:
        The run id and the logged model's URI (the run's ``model`` artifact folder).
    """
    if client is None:
        disable_mlflow_telemetry()
        from mlflow import MlflowClient

        client = MlflowClient()
    from mlflow.entities import RunStatus

    tags = {**_context_tags(), **record.tags}
    run = client.create_run(experiment_id, run_name=run_name, tags=tags)
    run_id = run.info.run_id
    try:
        _log_values(client, run_id, record)
        with tempfile.TemporaryDirectory(prefix="trialcast-run-") as tmp:
            folder = Path(tmp)
            write_run_files(record, folder)
            client.log_artifacts(run_id, str(folder))
    except BaseException:
        client.set_terminated(run_id, RunStatus.to_string(RunStatus.FAILED))
        raise
    client.set_terminated(run_id)
    model_uri = f"{run.info.artifact_uri.rstrip('/')}/{MODEL_ARTIFACT}"
    return LoggedRun(run_id=run_id, model_uri=model_uri, experiment_id=experiment_id)


#: The run's artifact folder holding the pyfunc model (registered by its URI).
MODEL_ARTIFACT = "model"


def _context_tags() -> dict[str, str]:
    """Who ran what: the tags ``mlflow.start_run`` would add (without probing git)."""
    import getpass
    import sys

    from mlflow.utils.mlflow_tags import MLFLOW_SOURCE_NAME, MLFLOW_SOURCE_TYPE, MLFLOW_USER

    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return {MLFLOW_USER: user, MLFLOW_SOURCE_NAME: sys.argv[0], MLFLOW_SOURCE_TYPE: "LOCAL"}


def _log_values(client: MlflowClient, run_id: str, record: RunRecord) -> None:
    """Parameters (the run's and the data fingerprint's) and metrics, in one batch."""
    from mlflow.entities import Metric, Param

    params = {k: str(v)[:6000] for k, v in record.params.items()}
    params.update({f"data_{k}": str(v)[:6000] for k, v in record.fingerprint.items()})
    now = int(time.time() * 1000)
    values = {**metrics_to_mlflow(record.metrics), **record.extra_metrics}
    client.log_batch(
        run_id,
        metrics=[Metric(k, float(v), now, 0) for k, v in values.items()],
        params=[Param(k, v) for k, v in params.items()],
    )


def write_run_files(record: RunRecord, folder: Path) -> None:
    """Write every artifact of a run under ``folder``: documents, plots and the model.

    ``data_fingerprint.json``, ``features.json``, the record's documents,
    ``metrics.csv``, ``feature_spec.json``, ``plots/*.png`` and ``model/`` (the
    pyfunc model with signature and input example).
    """
    documents = {
        "data_fingerprint.json": record.fingerprint,
        "features.json": {"features": record.model.features},
        **record.documents,
    }
    for name, data in documents.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(json.dumps(data, indent=2, default=_plain))
    (folder / "metrics.csv").write_text(record.metrics.to_csv(index=False))
    (folder / "feature_spec.json").write_text(record.model.spec_json or "{}")
    write_plots(record, folder / "plots")
    save_pyfunc_model(record.model, record.example, folder / MODEL_ARTIFACT)


#: PNG encoding of the plots: zlib's fastest level (same pixels; files about 8%
#: larger, the encoding of eight plots about 0.04 s shorter than at the default 6).
PNG_OPTIONS = {"compress_level": 1}


def write_plots(record: RunRecord, folder: Path) -> None:
    """The four diagnostic plots of a run as PNG files in ``folder``."""
    from training.plots import (
        build_lift_plot,
        build_reliability_plot,
        build_roc_pr_plot,
        build_shap_summary_plot,
    )

    folder.mkdir(parents=True, exist_ok=True)
    title = f"{record.kind} (test)"
    frame, cols = record.test_predictions, record.prob_cols
    figures = {
        "reliability.png": lambda: build_reliability_plot(frame, cols, title),
        "roc_pr.png": lambda: build_roc_pr_plot(frame, cols, title),
        "lift.png": lambda: build_lift_plot(frame, cols, title),
        "shap_summary.png": lambda: build_shap_summary_plot(
            record.model,
            frame,
            sample=record.shap_sample,
            explained=record.explained.result() if record.explained is not None else None,
        ),
    }
    for name, build in figures.items():
        build().savefig(folder / name, pil_kwargs=PNG_OPTIONS)


def save_pyfunc_model(model: TrialcastModel, example_rows: pd.DataFrame, path: Path) -> Path:
    """Save ``model`` as an MLflow pyfunc model folder at ``path`` (models-from-code).

    The folder holds the ``MLmodel`` file, the signature and input example, the
    pinned requirements and the model files under ``artifacts/trialcast_model``.
    """
    import mlflow.pyfunc
    from mlflow.models import infer_signature

    example = signature_frame(model, example_rows)
    signature = infer_signature(example, model.predict_proba(example_rows))
    with tempfile.TemporaryDirectory(prefix="trialcast-model-") as tmp:
        model_dir = model.save(Path(tmp) / ARTIFACT_KEY)
        with requirements_checked_by_name():
            mlflow.pyfunc.save_model(
                path=str(path),
                python_model=str(ENTRY_FILE),
                artifacts={ARTIFACT_KEY: str(model_dir)},
                signature=signature,
                input_example=example,
                pip_requirements=pip_requirements(),
            )
    return path


def _plain(value: Any) -> Any:
    """JSON fallback: numpy scalars as Python numbers, anything else as text."""
    return value.item() if hasattr(value, "item") else str(value)


def dump_json(data: Any) -> str:
    """JSON text with numpy scalars made plain."""
    return json.dumps(data, default=_plain)
