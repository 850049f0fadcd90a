"""The latest revenue forecast, as the service shows it (``GET /forecast``, ``/ui/forecast``).

``trialcast forecast`` writes its breakdown, metadata and picture into one folder
(``TRIALCAST_FORECAST_DIR``, default ``models/forecast``) and ``trialcast
backtest`` its forecast-vs-actual picture into ``<that folder>/backtest``; the
service reads the newest ones on each request, so they show up without a restart.
"""

from __future__ import annotations

import base64
import html
import json
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from models.settings import output_root

ENV_FORECAST_DIR = "TRIALCAST_FORECAST_DIR"
DEFAULT_FORECAST_DIR = Path("models") / "forecast"


def resolve_forecast_dir(path: str | Path | None = None) -> Path:
    """The forecast folder: ``path``, else ``TRIALCAST_FORECAST_DIR``, else ``models/forecast``."""
    if path is not None:
        return Path(path)
    env = os.environ.get(ENV_FORECAST_DIR)
    return Path(env) if env else output_root() / DEFAULT_FORECAST_DIR


@dataclass(frozen=True)
class LatestForecast:
    """A written forecast: breakdown rows, when and with which models, and its picture."""

    breakdown: pd.DataFrame
    as_of: str
    model_version: str
    picture: Path | None
    backtest_picture: Path | None = None


def read_latest_forecast(folder: str | Path | None = None) -> LatestForecast | None:
    """The forecast in ``folder`` (see ``resolve_forecast_dir``), or ``None`` if there is none."""
    root = resolve_forecast_dir(folder)
    breakdown, meta = root / "forecast_breakdown.csv", root / "forecast_meta.json"
    if not breakdown.exists() or not meta.exists():
        return None
    info = json.loads(meta.read_text())
    picture = root / "forecast_by_month.png"
    backtest = root / "backtest" / "backtest_forecast_vs_actual.png"
    return LatestForecast(
        breakdown=pd.read_csv(breakdown),
        as_of=str(info.get("as_of", "")),
        model_version=str(info.get("model_version", "")),
        picture=picture if picture.exists() else None,
        backtest_picture=backtest if backtest.exists() else None,
    )


def _img(path: Path | None, alt: str) -> str:
    if path is None:
        return ""
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def render_forecast(forecast: LatestForecast | None, *, company: str) -> str:
    """The finance page: expected revenue with P10 / P50 / P90 and the by-month picture."""
    title = f"{html.escape(company)}: revenue forecast"
    if forecast is None:
        body = "<p>No forecast yet: run <code>trialcast forecast -c CONFIG</code>.</p>"
    else:
        rows = "".join(
            "<tr>"
            + f"<td>{html.escape(str(r['dimension']))}</td><td>{html.escape(str(r['segment']))}</td>"
            + f"<td class=num>{int(r['n_accounts']):,}</td>"
            + "".join(
                f"<td class=num>{float(r[c]):,.0f}</td>" for c in ("expected", "p10", "p50", "p90")
            )
            + "</tr>"
            for r in forecast.breakdown.to_dict("records")
        )
        picture = _img(forecast.picture, "expected revenue by month")
        backtest = _img(forecast.backtest_picture, "backtest: forecast vs actual with P10-P90")
        if backtest:
            backtest = "<h2>Backtest: forecast vs actual</h2>" + backtest
        body = (
            f"<p>As of {html.escape(forecast.as_of)}; models: {html.escape(forecast.model_version)}</p>"
            + picture
            + "<table id=forecast><tr><th>dimension</th><th>segment</th><th>trials</th>"
            + "<th>expected</th><th>P10</th><th>P50</th><th>P90</th></tr>"
            + rows
            + "</table>"
            + backtest
        )
    return (
        f"<!doctype html><html><head><meta charset=utf-8><title>{title}</title>"
        "<style>body{font-family:sans-serif;margin:2em}td.num{text-align:right}"
        "td,th{padding:2px 8px}img{max-width:800px}</style></head>"
        f"<body><h1>{title}</h1><p><a href='/ui'>accounts</a></p>{body}</body></html>"
    )
