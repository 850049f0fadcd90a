"""MLflow process settings shared by training and serving: no usage telemetry.

MLflow 3 (from 3.2) sends anonymous usage records by default: it wraps its
public calls (``log_model``, ``create_model_version``, ...) to build them and,
on the first one, starts sender threads that try to reach the internet. A
trialcast job runs on a company's own machines, often without internet, so it
pays for every wrapper and a network timeout for nothing. MLflow's documented
opt-out is ``MLFLOW_DISABLE_TELEMETRY=true`` (``DO_NOT_TRACK=true`` also
works); MLflow checks it on every call, and when it is set before ``import
mlflow`` no telemetry client is created at all. A value the user set
explicitly is kept.
"""

from __future__ import annotations

import os

TELEMETRY_ENV = "MLFLOW_DISABLE_TELEMETRY"


def disable_mlflow_telemetry() -> None:
    """Set ``MLFLOW_DISABLE_TELEMETRY=true`` for this process (unless already set)."""
    os.environ.setdefault(TELEMETRY_ENV, "true")
