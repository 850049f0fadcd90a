"""The funnel's routes on the service: ``GET /funnel`` (JSON, bearer token like every
endpoint) and the ``/ui/funnel`` page (sales-view session). Both read what
``trialcast funnel`` last wrote (``serving.funnel_data``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import HTTPException, Query
from fastapi.responses import HTMLResponse

from serving.funnel_data import funnel_payload, read_latest_funnel
from serving.funnel_page import render_funnel
from serving.web import State, web

Text = Annotated[str | None, Query(max_length=200)]


@web.get("/funnel", tags=["funnel"])
def funnel(dimension: Text = None, segment: Text = None) -> dict[str, Any]:
    """The latest trial funnel (``trialcast funnel``): per signup cohort, motion / segment
    and stage, the trials, how many reached the stage, share (Wilson interval), median
    days, stage-to-stage conversion, the change flag and, for cohorts still deciding,
    the champion's expected paid share with P10-P90. Filter with ``dimension`` /
    ``segment`` (e.g. ``dimension=motion&segment=sales-assisted``)."""
    latest = read_latest_funnel()
    if latest is None:
        raise HTTPException(404, "no funnel yet: run `trialcast funnel -c CONFIG`")
    return funnel_payload(latest, dimension=dimension, segment=segment)


@web.api_route(
    "/ui/funnel", methods=["GET", "HEAD"], response_class=HTMLResponse, include_in_schema=False
)
def ui_funnel(state: State, view: Text = None) -> HTMLResponse:
    """The Funnel page: heat table of cohorts x stages, funnel chart, motion toggle."""
    return HTMLResponse(
        render_funnel(read_latest_funnel(), company=state.config.company, view=view)
    )
