"""Job functions behind ``trialcast serve`` and ``trialcast score`` (the CLI wires them).

``run_score_job`` loads the company's tables and the served models, scores every
open trial with its reasons (``serving.batch.score_accounts``) and writes the
table the service's sales view reads. ``run_serve`` starts the BentoML service
with the settings passed as environment variables, in place of the CLI process.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from features.activation import milestone_slugs
from features.build import FeatureBuilder
from features.config import CompanyConfig, load_config
from features.loaders import load_tables
from features.tables import Tables
from models.loader import ENV_MODEL_ALIAS
from serving.batch import score_and_close, write_scores
from serving.open_trials import NoOpenTrialError, no_open_trial_message
from serving.score_history import write_daily_snapshot
from serving.scoring import ScoringModels, load_scoring_models
from serving.security import token_problem

SERVICE = "serving.service:TrialcastService"
ENV_CONFIG = "TRIALCAST_CONFIG"


@dataclass
class ScoreJobResult:
    """What the score job wrote."""

    path: Path
    n_accounts: int
    as_of: pd.Timestamp
    closed_path: Path | None = None
    n_closed: int = 0
    models: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ModelSource:
    """Where a scoring job's models come from: already loaded, or the registry.

    Attributes:
        models: loaded models to reuse (then the registry is not asked).
        tracking_uri, alias: which registry and alias to load from (defaults as
            the service).
    """

    models: ScoringModels | None = None
    tracking_uri: str | None = None
    alias: str | None = None


def run_score_job(
    config: CompanyConfig,
    *,
    out: str | Path | None = None,
    as_of: pd.Timestamp | None = None,
    top_k: int = 5,
    tables: Tables | None = None,
    source: ModelSource | None = None,
    allow_before_trial_end: bool | None = None,
) -> ScoreJobResult:
    """Score the open trials at ``as_of`` (default: the export time) and write them.

    Args:
        config: the company config.
        out: output Parquet path (default ``TRIALCAST_SCORES_PATH`` or
            ``models/scores/latest.parquet``).
        as_of: the scoring moment.
        top_k: factors of each sign kept per account.
        tables: already loaded tables to reuse (loaded here if omitted).
        source: loaded models to reuse, or the registry and alias to load them
            from (``ModelSource``; default: the service's registry and alias).
        allow_before_trial_end: let a trial-end model (feature table without
            ``as_of``) score trials still running (default: the config's choice).

    Raises:
        NoOpenTrialError: no trial is open at ``as_of`` (nothing is written).
    """
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    if tables is None:
        tables = load_tables(config).tables
    seconds["load"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    source = source or ModelSource()
    models = source.models
    if models is None:
        models = load_scoring_models(config, alias=source.alias, tracking_uri=source.tracking_uri)
    seconds["models"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    moment = pd.Timestamp(as_of) if as_of is not None else tables.export_time()
    frame, closed = score_and_close(
        config,
        tables,
        models,
        as_of=moment,
        top_k=top_k,
        allow_before_trial_end=allow_before_trial_end,
    )
    if frame.empty and not frame.attrs.get("held_back"):
        window = config.trial.conversion_window_days
        raise NoOpenTrialError(no_open_trial_message(tables.accounts, moment, window))
    frame["checklist"] = build_checklists(config, tables, models, frame, moment)
    seconds["score"] = time.perf_counter() - t0
    path = write_scores(frame, out)
    write_daily_snapshot(frame, path)  # the account page's score trend
    closed_path = write_scores(closed, path.with_name(f"{path.stem}_closed.parquet"))
    return ScoreJobResult(
        path=path,
        closed_path=closed_path,
        n_closed=len(closed),
        n_accounts=len(frame),
        as_of=moment,
        models={m.kind: f"{m.name} v{m.version} ({m.source})" for m in models.loaded()},
        seconds=seconds,
        notes=list(frame.attrs.get("notes", [])),
    )


def build_checklists(
    config: CompanyConfig,
    tables: Tables,
    models: ScoringModels,
    scores: pd.DataFrame,
    as_of: pd.Timestamp,
) -> list[str]:
    """Each scored account's activation checklist as JSON: ``[{"step", "done", "date"}]``.

    Built with the training feature code at the same ``as_of`` (``activation_<step>_done``
    and ``_days`` from trial start), for the account page's checklist with dates.
    """
    if not len(scores):
        return []
    builder = FeatureBuilder.from_tables(tables, config, models.spec())
    ids = scores["account_id"].astype(str).tolist()
    moment = int(pd.Timestamp(as_of).value // 10**9)
    features = builder.build(builder.positions(ids), np.full(len(ids), moment))
    starts = pd.to_datetime(scores["trial_start"]).reset_index(drop=True)
    steps = list(zip(milestone_slugs(config.activation), config.activation.milestones, strict=True))
    out = []
    for i in range(len(ids)):
        row = features.iloc[i]
        items = []
        for slug, milestone in steps:
            done = bool(row.get(f"activation_{slug}_done", 0) or 0)
            days = row.get(f"activation_{slug}_days")
            date = starts[i] + pd.Timedelta(days=float(days)) if done and pd.notna(days) else None
            items.append(
                {
                    "step": milestone.name,
                    "done": done,
                    "date": None if date is None else f"{date:%Y-%m-%d}",
                }
            )
        out.append(json.dumps(items))
    return out


def bentoml_executable() -> str:
    """The ``bentoml`` command of this environment."""
    beside = Path(sys.executable).with_name("bentoml")
    return str(beside) if beside.exists() else (shutil.which("bentoml") or "bentoml")


def serve_command(*, host: str = "127.0.0.1", port: int = 3000) -> list[str]:
    """The command line that starts the service."""
    return [bentoml_executable(), "serve", SERVICE, "--host", host, "--port", str(port)]


def instance_home(host: str, port: int) -> Path:
    """BentoML's home folder for the instance on ``host:port``.

    BentoML keeps Prometheus' multi-process files in ``<home>/prometheus_multiproc_dir``
    and empties that folder when a service starts: with one shared home, starting a
    second instance wiped the first one's counters. One home per address (no two
    running instances share one) keeps each instance's ``/metrics`` its own.
    """
    root = Path(os.environ.get("TRIALCAST_STATE_DIR") or tempfile.gettempdir())
    safe = "".join(c if c.isalnum() else "_" for c in host)
    return root / f"trialcast-bentoml-{os.getuid()}" / f"{safe}-{port}"


def serve_environment(
    *,
    config_path: str | Path | None = None,
    tracking_uri: str | None = None,
    alias: str | None = None,
    scores_path: str | Path | None = None,
    address: tuple[str, int] = ("127.0.0.1", 3000),
) -> dict[str, str]:
    """The environment of the service process: ours plus the given settings, and a
    BentoML home of its own for the instance at ``address`` (``instance_home``)."""
    env = dict(os.environ)
    env["BENTOML_HOME"] = str(instance_home(*address))
    if config_path is not None:
        load_config(config_path)  # fail here, with the config's own message
        env[ENV_CONFIG] = str(Path(config_path).resolve())
    if tracking_uri:
        env["TRIALCAST_TRACKING_URI"] = tracking_uri
    if alias:
        env[ENV_MODEL_ALIAS] = alias
    if scores_path is not None:
        env["TRIALCAST_SCORES_PATH"] = str(Path(scores_path).resolve())
    return env


def run_serve(
    *,
    config_path: str | Path | None = None,
    host: str = "127.0.0.1",
    port: int = 3000,
    tracking_uri: str | None = None,
    alias: str | None = None,
    scores_path: str | Path | None = None,
) -> int:
    """Run the service in the foreground until it stops (does not return on success).

    The process *becomes* ``bentoml serve`` (``exec``): SIGTERM / SIGINT reach
    BentoML's arbiter directly, which stops its workers, so stopping ``trialcast
    serve`` stops the whole tree and frees the port. ``TRIALCAST_API_TOKEN`` must
    be set: without it this exits with code 2 at once.
    """
    problem = token_problem(os.environ.get("TRIALCAST_API_TOKEN"))
    if problem:
        print(f"trialcast serve: {problem}", file=sys.stderr)
        return 2
    env = serve_environment(
        config_path=config_path,
        tracking_uri=tracking_uri,
        alias=alias,
        scores_path=scores_path,
        address=(host, port),
    )
    command = serve_command(host=host, port=port)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvpe(command[0], command, env)
    return 0  # not reached
