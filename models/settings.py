"""Environment settings shared by training and serving: where models are tracked.

Precedence for the MLflow tracking URI (first wins): an explicit argument, the
``TRIALCAST_TRACKING_URI`` environment variable, ``[registry].tracking_uri`` in
the company config, and the default SQLite store
``sqlite:///<output root>/models/mlflow.db``. Any MLflow tracking URI works (SQLite,
PostgreSQL, an MLflow server). It lives here, below both ``training`` and
``serving``, so the two cannot disagree about where the models are.
"""

from __future__ import annotations

import os
from pathlib import Path

from features.config import (
    DEFAULT_OUTPUT_FOLDER,
    ENV_OUTPUT_DIR,
    CompanyConfig,
    env_output_root,
    outside_packages,
)

ENV_TRACKING_URI = "TRIALCAST_TRACKING_URI"
MODELS_DIR = "models"


def output_root(project_dir: str | Path | None = None) -> Path:
    """The one folder every output goes under (features, models, scores, forecasts).

    ``project_dir`` when given, else ``TRIALCAST_OUTPUT_DIR`` (the CLI sets it to
    the config's ``output_dir`` once the config is loaded, so a job and the
    service it starts agree), else ``trialcast_output/`` under the working
    directory. Never a folder whose ``models/`` or ``features/`` is a Python
    package (a source checkout): its ``trialcast_output/`` subfolder is used then.
    """
    if project_dir is not None:
        return outside_packages(Path(project_dir).resolve())
    return env_output_root() or Path.cwd().resolve() / DEFAULT_OUTPUT_FOLDER


def default_tracking_uri(project_dir: str | Path | None = None) -> str:
    """``sqlite:///<output root>/models/mlflow.db`` (the folder is created)."""
    models = output_root(project_dir) / MODELS_DIR
    models.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{models / 'mlflow.db'}"


def resolve_tracking_uri(
    config: CompanyConfig | None = None,
    explicit: str | None = None,
    *,
    project_dir: str | Path | None = None,
) -> str:
    """The tracking URI to use (see the module docstring for the precedence)."""
    if explicit:
        return explicit
    env = os.environ.get(ENV_TRACKING_URI)
    if env:
        return env
    if config is not None and config.registry.tracking_uri:
        return config.registry.tracking_uri
    return default_tracking_uri(project_dir)
