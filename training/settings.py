"""Where models are tracked: the MLflow tracking URI and artifact root.

Precedence (first wins): an explicit argument, the ``TRIALCAST_TRACKING_URI``
environment variable, ``[registry].tracking_uri`` in the company config, and the
default SQLite store ``sqlite:///<output root>/models/mlflow.db`` (the rule lives in
``models.settings`` so serving shares it without importing training).

Artifacts (plots, model files) go to ``TRIALCAST_ARTIFACT_ROOT`` if set; for a
SQLite store, next to the database file (``<db folder>/artifacts``); otherwise
under ``<output root>/models/artifacts``. This only applies to experiments trialcast
creates: an existing experiment keeps its artifact location.
"""

from __future__ import annotations

import os
from pathlib import Path

from models.settings import (
    ENV_TRACKING_URI,
    MODELS_DIR,
    default_tracking_uri,
    output_root,
    resolve_tracking_uri,
)

__all__ = [
    "ENV_ARTIFACT_ROOT",
    "ENV_TRACKING_URI",
    "MODELS_DIR",
    "default_tracking_uri",
    "output_root",
    "resolve_artifact_location",
    "resolve_tracking_uri",
]

ENV_ARTIFACT_ROOT = "TRIALCAST_ARTIFACT_ROOT"


def resolve_artifact_location(tracking_uri: str, *, project_dir: str | Path | None = None) -> str:
    """Artifact root URI for new experiments (see the module docstring)."""
    env = os.environ.get(ENV_ARTIFACT_ROOT)
    if env:
        return env if "://" in env or env.startswith("file:") else Path(env).resolve().as_uri()
    if tracking_uri.startswith("sqlite:///"):
        db = Path(tracking_uri.removeprefix("sqlite:///"))
        if not db.is_absolute():
            db = Path("/" + str(db)) if tracking_uri.startswith("sqlite:////") else db.resolve()
        folder = db.parent / "artifacts"
    else:
        folder = output_root(project_dir) / MODELS_DIR / "artifacts"
    folder.mkdir(parents=True, exist_ok=True)
    return folder.as_uri()
