"""Job functions behind ``trialcast serve`` and ``trialcast score`` (the CLI wires them).

``run_score_job`` loads the company's tables and the served models, scores every
open trial with its reasons (``serving.batch.score_accounts``) and writes the
table the service's sales view reads. ``run_serve`` starts the BentoML service
with the settings passed as environment variables.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from features.config import CompanyConfig, load_config
from features.loaders import load_tables
from features.tables import Tables
from models.loader import ENV_MODEL_ALIAS
from serving.batch import score_and_close, write_scores
from serving.scoring import ScoringModels, load_scoring_models

SERVICE = "serving.service:TrialcastService"


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


def run_score_job(
    config: CompanyConfig,
    *,
    out: str | Path | None = None,
    as_of: pd.Timestamp | None = None,
    tracking_uri: str | None = None,
    alias: str | None = None,
    top_k: int = 5,
    tables: Tables | None = None,
    models: ScoringModels | None = None,
) -> ScoreJobResult:
    """Score the open trials at ``as_of`` (default: the export time) and write them.

    Args:
        config: the company config.
        out: output Parquet path (default ``TRIALCAST_SCORES_PATH`` or
            ``models/scores/latest.parquet``).
        as_of: the scoring moment.
        tracking_uri, alias: which registry and alias to load (defaults as the service).
        top_k: factors of each sign kept per account.
        tables, models: already loaded tables / models to reuse (loaded here if omitted).
    """
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    if tables is None:
        tables = load_tables(config).tables
    seconds["load"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    if models is None:
        models = load_scoring_models(config, alias=alias, tracking_uri=tracking_uri)
    seconds["models"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    moment = pd.Timestamp(as_of) if as_of is not None else tables.export_time()
    frame, closed = score_and_close(config, tables, models, as_of=moment, top_k=top_k)
    seconds["score"] = time.perf_counter() - t0
    path = write_scores(frame, out)
    closed_path = write_scores(closed, path.with_name(f"{path.stem}_closed.parquet"))
    return ScoreJobResult(
        path=path,
        closed_path=closed_path,
        n_closed=len(closed),
        n_accounts=len(frame),
        as_of=moment,
        models={m.kind: f"{m.name} v{m.version} ({m.source})" for m in models.loaded()},
        seconds=seconds,
    )


def bentoml_executable() -> str:
    """The ``bentoml`` command of this environment."""
    beside = Path(sys.executable).with_name("bentoml")
    return str(beside) if beside.exists() else (shutil.which("bentoml") or "bentoml")


def serve_command(*, host: str = "127.0.0.1", port: int = 3000) -> list[str]:
    """The command line that starts the service."""
    return [bentoml_executable(), "serve", SERVICE, "--host", host, "--port", str(port)]


def serve_environment(
    *,
    config_path: str | Path | None = None,
    tracking_uri: str | None = None,
    alias: str | None = None,
    scores_path: str | Path | None = None,
) -> dict[str, str]:
    """The environment of the service process: ours plus the given settings."""
    env = dict(os.environ)
    if config_path is not None:
        load_config(config_path)  # fail here, with the config's own message
        env["TRIALCAST_CONFIG"] = str(Path(config_path).resolve())
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
    """Run the service in the foreground until it stops; returns its exit code.

    ``TRIALCAST_API_TOKEN`` must be set (the service refuses to start without it).
    """
    env = serve_environment(
        config_path=config_path, tracking_uri=tracking_uri, alias=alias, scores_path=scores_path
    )
    if len(env.get("TRIALCAST_API_TOKEN", "")) < 16:
        raise SystemExit("set TRIALCAST_API_TOKEN (16+ characters) before `trialcast serve`")
    return subprocess.call(serve_command(host=host, port=port), env=env)
