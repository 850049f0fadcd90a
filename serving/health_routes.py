"""The Model health page and its Prometheus gauges, registered on ``serving.web.web``.

``/ui/health`` shows the monitor's latest report (``serving.health_view``).
The gauges (``trialcast_model_health_*`` on ``/metrics``) follow the same file
(per-model ones labelled ``model="conversion"`` / ``"churn"``, docs/monitoring.md):
they are refreshed at start, on every page view and every ``REFRESH_SECONDS``
by a background task, so an alert rule sees a new verdict within a minute.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from fastapi.responses import HTMLResponse
from prometheus_client import Gauge

from models.kinds import KINDS
from serving.health_view import read_latest_health, render_health
from serving.web import State, web

log = logging.getLogger("trialcast.serving")

REFRESH_SECONDS = 60.0
VERDICTS = ("healthy", "too early to tell", "inputs shifted", "outcomes shifted", "data broken")

VERDICT = Gauge(
    "trialcast_model_health_verdict",
    "1 for the monitor's latest verdict, 0 for the others",
    ["verdict"],
    multiprocess_mode="livemax",
)
ALERTS = Gauge(
    "trialcast_model_health_alerts",
    "Alerts in the monitor's latest report, by kind (outcomes, inputs, data)",
    ["kind"],
    multiprocess_mode="livemax",
)
VALUES = Gauge(
    "trialcast_model_health_value",
    "Numbers of the latest report per monitored model: expected_so_far, realised_so_far, "
    "outcome_log_lr, outcome_threshold, prediction_psi, as_of_timestamp",
    ["model", "name"],
    multiprocess_mode="livemax",
)
MODEL_VERDICT = Gauge(
    "trialcast_model_health_model_verdict",
    "1 for each model's own verdict in the latest report (its outcomes and inputs; data "
    "alerts are in trialcast_model_health_verdict), 0 for the others; all 0: not monitored",
    ["model", "verdict"],
    multiprocess_mode="livemax",
)
#: The model kinds the gauges always carry (NaN values and no verdict when absent).
MODELS = tuple(kind.name for kind in KINDS.values() if kind.monitored)


def update_gauges(report: dict[str, Any] | None) -> None:
    """Set the gauges from a monitoring report (all zero or NaN when there is none).

    The report-wide verdict and alert counts keep their series; per-model numbers
    and verdicts carry a ``model`` label (``conversion``, ``churn``), so one query
    covers both champions and ``{model="churn"}`` picks one.
    """
    verdict = None if report is None else report.get("verdict")
    for name in VERDICTS:
        VERDICT.labels(verdict=name).set(1.0 if name == verdict else 0.0)
    alerts = [] if report is None else report.get("alerts", [])
    for kind in ("outcomes", "inputs", "data"):
        ALERTS.labels(kind=kind).set(float(sum(a.get("kind") == kind for a in alerts)))
    models = {} if report is None else report.get("models", {})
    as_of = None if report is None else _timestamp(report["as_of"])
    for kind in MODELS:
        model = models.get(kind)
        own = None if model is None else model.get("verdict")
        for name in VERDICTS:
            MODEL_VERDICT.labels(model=kind, verdict=name).set(1.0 if name == own else 0.0)
        for name, value in _model_numbers(model, as_of).items():
            VALUES.labels(model=kind, name=name).set(
                float(value) if value is not None else float("nan")
            )


def _model_numbers(model: dict[str, Any] | None, as_of: float | None) -> dict[str, Any]:
    """The gauge values of one model's section (``None`` each when it is absent)."""
    model = model or {}
    test = model.get("outcome_test", {})
    return {
        "expected_so_far": test.get("expected_so_far"),
        "realised_so_far": test.get("realised_so_far"),
        "outcome_log_lr": test.get("log_likelihood_ratio"),
        "outcome_threshold": test.get("threshold"),
        "prediction_psi": model.get("drift", {}).get("prediction_psi"),
        "as_of_timestamp": as_of if model else None,
    }


def _timestamp(value: str) -> float:
    import pandas as pd

    return float(pd.Timestamp(value).timestamp())


def refresh_gauges() -> dict[str, Any] | None:
    """Read the latest report and set the gauges from it; returns the report."""
    report = read_latest_health()
    try:
        update_gauges(report)
    except (KeyError, TypeError, ValueError) as exc:  # a hand-edited file must not break serving
        log.warning("model health gauges not updated: %s", exc)
    return report


async def _refresh_forever() -> None:
    while True:
        refresh_gauges()
        await asyncio.sleep(REFRESH_SECONDS)


_tasks: set[asyncio.Task[None]] = set()


@web.on_event("startup")
async def _start_refresh() -> None:
    task = asyncio.get_running_loop().create_task(_refresh_forever())
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)


@web.on_event("shutdown")
async def _stop_refresh() -> None:
    for task in list(_tasks):
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@web.get("/ui/health", response_class=HTMLResponse, include_in_schema=False)
def ui_health(state: State) -> HTMLResponse:
    """The Model health page: the monitor's latest verdict, cohorts, AUC, drift, data."""
    return HTMLResponse(render_health(refresh_gauges(), company=state.config.company))
