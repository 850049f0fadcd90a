"""The finance page (``/ui/forecast``) in the sales view's style.

It shows what ``trialcast forecast`` wrote (``serving.forecast.view``): expected
new revenue from open trials with P10 / P50 / P90, by month (with a line for
whatever falls outside the months shown, so the months add up to the total), by
segment, the churn-adjusted MRR of paying accounts (``forecast_recurring.csv``),
and forecast history against actuals once outcomes land (``forecast_history.csv``
when present, with human headers and "not yet known" where a run's outcome window
is still open; else the backtest picture). Money carries the company's currency
and thousands separators; optional files and columns may be missing.
"""

from __future__ import annotations

import base64
import math
from pathlib import Path
from typing import Any

import pandas as pd
from markupsafe import Markup

from serving.forecast.view import LatestForecast, resolve_forecast_dir
from serving.views import _ENV

_FINANCE = """{% extends "base" %}{% block title %}Revenue forecast - trialcast{% endblock %}
{% block body %}
<h1>Revenue forecast</h1>
{% if f is none %}<p id="empty">No forecast yet: run <code>trialcast forecast -c CONFIG</code>.</p>
{% else %}
<p class="muted">As of {{ f.as_of }} &middot; models: {{ f.model_version }} &middot; amounts in {{ currency }}</p>
{% if total %}<div class="card" id="total"><h2>Expected new revenue from open trials</h2>
<p><strong id="total-expected">{{ money(total.expected) }}</strong> expected
 &middot; P10 {{ money(total.p10) }} &middot; P50 {{ money(total.p50) }} &middot; P90 {{ money(total.p90) }}
 &middot; {{ count(total.n_accounts) }} trials</p></div>{% endif %}
{% if months %}<div class="card"><h2>By month</h2>{{ chart }}
<table id="months"><thead><tr><th>Month</th><th class="num">Trials</th><th class="num">Expected</th>
<th class="num">P10</th><th class="num">P50</th><th class="num">P90</th></tr></thead><tbody>
{% for r in months %}<tr><td>{{ r.segment }}</td><td class="num">{{ count(r.n_accounts) }}</td>
<td class="num">{{ money(r.expected) }}</td><td class="num">{{ money(r.p10) }}</td>
<td class="num">{{ money(r.p50) }}</td><td class="num">{{ money(r.p90) }}</td></tr>{% endfor %}
{% if remainder %}<tr id="remainder"><td>Outside the months shown</td><td></td><td class="num">{{ money(remainder) }}</td><td colspan="3"></td></tr>{% endif %}
</tbody><tfoot><tr><th>Total</th><th></th><th class="num" id="months-total">{{ money(total.expected) }}</th>
<th colspan="3" class="muted">Percentiles do not add up across months; expected values do.</th></tr></tfoot></table></div>{% endif %}
{% if segments %}<div class="card"><h2>By segment</h2><table id="forecast"><thead><tr><th>Dimension</th><th>Segment</th>
<th class="num">Trials</th><th class="num">Expected</th><th class="num">P10</th><th class="num">P50</th><th class="num">P90</th></tr></thead><tbody>
{% for r in segments %}<tr><td>{{ r.dimension }}</td><td>{{ r.segment }}</td><td class="num">{{ count(r.n_accounts) }}</td>
<td class="num">{{ money(r.expected) }}</td><td class="num">{{ money(r.p10) }}</td><td class="num">{{ money(r.p50) }}</td>
<td class="num">{{ money(r.p90) }}</td></tr>{% endfor %}</tbody></table></div>{% endif %}
{% if mrr %}<div class="card" id="mrr"><h2>Churn-adjusted MRR of paying accounts</h2>
<table><thead><tr><th>Segment</th><th class="num">Customers</th><th class="num">MRR now</th><th class="num">Expected retained</th>
<th class="num">Expected lost to churn</th><th class="num">Retained P10 - P90</th></tr></thead><tbody>
{% for r in mrr %}<tr><td>{{ r.label }}</td><td class="num">{{ count(r.n) }}</td><td class="num">{{ money(r.mrr) }}</td>
<td class="num">{{ money(r.retained) }}</td><td class="num">{{ money(r.lost) }}</td>
<td class="num">{{ money(r.p10) }} - {{ money(r.p90) }}</td></tr>{% endfor %}</tbody></table></div>
{% else %}<div class="card" id="mrr"><h2>Churn-adjusted MRR of paying accounts</h2>
<p class="muted">Not in this forecast run (it needs a churn model and paying accounts).</p></div>{% endif %}
<div class="card" id="history"><h2>Forecast history vs actual</h2>
{% if history is not none %}<table id="history-table"><thead><tr>{% for c in history.headers %}<th>{{ c }}</th>{% endfor %}</tr></thead><tbody>
{% for r in history.rows %}<tr{% if not r.complete %} class="open-window"{% endif %}>{% for v in r.cells %}<td class="num">{{ v }}</td>{% endfor %}</tr>{% endfor %}</tbody></table>
<p class="muted">A run's outcome is known once every trial it counted has passed its conversion window; until then "Actual" is what has landed so far.</p>
{% elif backtest %}{{ backtest }}
{% else %}<p class="muted">No outcomes yet: history appears once forecast months have closed (or after <code>trialcast backtest</code>).</p>{% endif %}
</div>{% endif %}
{% endblock %}"""

_ENV.loader.mapping["finance"] = _FINANCE  # type: ignore[union-attr]


def _read_csv(path: Path) -> pd.DataFrame | None:
    try:
        return pd.read_csv(path) if path.exists() else None
    except (OSError, ValueError, pd.errors.ParserError):
        return None


#: Column of ``forecast_history.csv`` -> its header on the page (unknown columns keep their name).
HISTORY_HEADERS = {
    "as_of": "Forecast made",
    "model_version": "Models",
    "n_open": "Open trials",
    "expected_count": "Expected deals",
    "actual_count": "Deals won",
    "forecast": "Forecast",
    "p10": "P10",
    "p50": "P50",
    "p90": "P90",
    "actual": "Actual",
    "error_pct": "Error",
    "inside": "Inside P10-P90",
    "complete": "Outcome",
}
#: Cells that need the closed outcome window to mean anything.
_NEEDS_OUTCOME = ("error_pct", "inside")
NOT_YET_KNOWN = "not yet known"


def history_table(history: pd.DataFrame | None, money: Any) -> dict[str, Any] | None:
    """``forecast_history.csv`` as page rows: human headers, money as money, and "not yet
    known" for the error and the inside-the-range check of a run whose window is still open."""
    if history is None or history.empty:
        return None
    columns = list(history.columns)
    rows = []
    for record in history.to_dict("records"):
        complete = str(record.get("complete", True)).lower() in ("true", "1", "1.0")
        cells = []
        for column in columns:
            value = record[column]
            if column in _NEEDS_OUTCOME and not complete:
                cells.append(NOT_YET_KNOWN)
            elif column == "complete":
                cells.append("known" if complete else "window still open")
            elif column in ("forecast", "p10", "p50", "p90", "actual"):
                cells.append(money(value) + ("" if complete or column != "actual" else " so far"))
            elif column == "error_pct":
                cells.append("-" if pd.isna(value) else f"{float(value):+.0f}%")
            elif column == "inside":
                cells.append("yes" if str(value).lower() in ("true", "1") else "no")
            elif column == "expected_count":
                cells.append("-" if pd.isna(value) else f"{float(value):,.1f}")
            elif column in ("n_open", "actual_count"):
                cells.append("-" if pd.isna(value) else f"{int(value):,}")
            else:
                cells.append(str(value))
        rows.append({"complete": complete, "cells": cells})
    return {"headers": [HISTORY_HEADERS.get(c, c) for c in columns], "rows": rows}


def _mrr_rows(recurring: pd.DataFrame | None) -> list[dict[str, Any]]:
    if recurring is None or not {"dimension", "segment", "measure", "expected"} <= set(recurring):
        return []
    rows = []
    for (dim, seg), part in recurring.groupby(["dimension", "segment"], sort=False):
        by = part.set_index("measure")
        if "retained" not in by.index:
            continue
        kept = by.loc["retained"]
        rows.append(
            {
                "label": "All paying accounts" if dim == "total" else f"{dim}: {seg}",
                "n": kept.get("n_accounts"),
                "mrr": kept.get("mrr"),
                "retained": kept.get("expected"),
                "lost": by.loc["lost"].get("expected") if "lost" in by.index else None,
                "p10": kept.get("p10"),
                "p90": kept.get("p90"),
            }
        )
    return rows


def _month_chart(months: list[dict[str, Any]], currency: str, width: int = 760) -> str:
    """Expected revenue by month as bars with P10-P90 whiskers (inline SVG, plain numbers)."""
    if not months:
        return ""
    top = max(float(m.get("p90", m["expected"]) or 0) for m in months) or 1.0
    height, left, bottom = 200, 90, 24
    bar = (width - left - 10) / len(months)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'role="img" aria-label="Expected revenue by month">']  # fmt: skip

    def y(v: float) -> float:
        return 10 + (1 - v / top) * (height - 10 - bottom)

    for frac in (0, 0.5, 1):
        parts.append(f'<text x="{left - 6}" y="{y(top * frac) + 4:.1f}" font-size="10" '
                     f'text-anchor="end" fill="#7b8794">{top * frac:,.0f}</text>')  # fmt: skip
    for i, m in enumerate(months):
        x = left + i * bar
        e = float(m["expected"])
        parts.append(f'<rect class="month-bar" x="{x + 4:.1f}" y="{y(e):.1f}" width="{bar - 8:.1f}" '
                     f'height="{y(0) - y(e):.1f}" fill="#1f3a5f"><title>{m["segment"]}: '
                     f'{currency} {e:,.0f}</title></rect>')  # fmt: skip
        if m.get("p10") is not None and m.get("p90") is not None:
            cx = x + bar / 2
            parts.append(f'<line x1="{cx:.1f}" x2="{cx:.1f}" y1="{y(float(m["p10"])):.1f}" '
                         f'y2="{y(float(m["p90"])):.1f}" stroke="#dc2626"/>')  # fmt: skip
        parts.append(f'<text x="{x + bar / 2:.1f}" y="{height - 8}" font-size="10" '
                     f'text-anchor="middle">{m["segment"]}</text>')  # fmt: skip
    parts.append("</svg>")
    return "".join(parts)


def render_finance(
    forecast: LatestForecast | None, *, company: str, currency: str, folder: Path | None = None
) -> str:
    """The finance page for the latest forecast (``None``: a page saying how to make one)."""
    root = resolve_forecast_dir(folder)

    def money(value: Any) -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "-"
        return f"{currency} {float(value):,.0f}"

    def count(value: Any) -> str:
        return "-" if value is None or pd.isna(value) else f"{int(value):,}"

    context: dict[str, Any] = {"f": forecast, "currency": currency, "subtitle": company,
                               "money": money, "count": count}  # fmt: skip
    if forecast is not None:
        rows: list[dict[str, Any]] = forecast.breakdown.to_dict("records")  # type: ignore[assignment]
        total = next((r for r in rows if r["dimension"] == "total"), None)
        months = [r for r in rows if r["dimension"] == "month"]
        summed = sum(float(r["expected"]) for r in months)
        remainder = float(total["expected"]) - summed if total else 0.0
        backtest = forecast.backtest_picture
        context.update(
            total=total,
            months=months,
            remainder=remainder if abs(remainder) >= 0.5 else 0.0,
            segments=[r for r in rows if r["dimension"] not in ("total", "month")],
            mrr=_mrr_rows(_read_csv(root / "forecast_recurring.csv")),
            history=history_table(_read_csv(root / "forecast_history.csv"), money),
            chart=Markup(_month_chart(months, currency)),
            backtest=Markup(
                '<img alt="backtest: forecast vs actual" src="data:image/png;base64,'
                + base64.b64encode(backtest.read_bytes()).decode() + '">'
            ) if backtest else None,
        )  # fmt: skip
    return _ENV.get_template("finance").render(**context)
