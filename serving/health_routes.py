"""The Model health page and its Prometheus gauges, registered on ``serving.web.web``.

``/ui/health`` shows the monitor's latest report (``serving.health_view``).
The gauges (``trialcast_model_health_*`` on ``/metrics``) follow the same file:
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
    "Numbers of the latest report: expected_so_far, realised_so_far, outcome_log_lr, "
    "prediction_psi, as_of_timestamp",
    ["name"],
    multiprocess_mode="livemax",
)


def update_gauges(report: dict[str, Any] | None) -> None:
    """Set the gauges from a monitoring report (all zero when there is none)."""
    verdict = None if report is None else report.get("verdict")
    for name in VERDICTS:
        VERDICT.labels(verdict=name).set(1.0 if name == verdict else 0.0)
    alerts = [] if report is None else report.get("alerts", [])
    for kind in ("outcomes", "inputs", "data"):
        ALERTS.labels(kind=kind).set(float(sum(a.get("kind") == kind for a in alerts)))
    model = {} if report is None else report.get("models", {}).get("conversion", {})
    test = model.get("outcome_test", {})
    numbers = {
        "expected_so_far": test.get("expected_so_far"),
        "realised_so_far": test.get("realised_so_far"),
        "outcome_log_lr": test.get("log_likelihood_ratio"),
        "prediction_psi": model.get("drift", {}).get("prediction_psi"),
    }
    if report is not None:
        import pandas as pd

        numbers["as_of_timestamp"] = pd.Timestamp(report["as_of"]).timestamp()
    for name, value in numbers.items():
        VALUES.labels(name=name).set(float(value) if value is not None else float("nan"))


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
