"""The Funnel page (``/ui/funnel``) in the sales view's style.

For one motion or segment at a time (the toggle): the funnel chart (share of
trials reaching each stage, pooled over finished cohorts, with the stage-to-stage
conversion and its Wilson interval) and the cohorts x stages heat table (share
reaching each stage; cells whose rate changed beyond chance are marked; for
cohorts still deciding, the paid cell shows the champion's expected share with
its P10-P90 beside the share so far). It shows what ``trialcast funnel`` wrote.
"""

from __future__ import annotations

from typing import Any, cast

import pandas as pd
from markupsafe import Markup

from features.funnel_stats import wilson_interval
from serving.funnel_data import LatestFunnel
from serving.views import _ENV

_FUNNEL = """{% extends "base" %}{% block title %}Funnel - trialcast{% endblock %}
{% block body %}
<h1>Trial funnel</h1>
{% if f is none %}<p id="empty">No funnel yet: run <code>trialcast funnel -c CONFIG</code>.</p>
{% else %}
<p class="muted">As of {{ f.meta.as_of }} &middot; cohorts by {{ f.meta.by }} &middot; {{ f.meta.model_version or "no champion: no expected paid share" }}</p>
<form class="filters" method="get" action="/ui/funnel" id="view-form">
 <label>Motion / segment <select name="view" id="motion-toggle" class="autosubmit">
 {% for key, label in views %}<option value="{{ key }}"{% if key == current %} selected{% endif %}>{{ label }}</option>{% endfor %}
 </select></label></form>
<div class="card" id="funnel-chart"><h2>Funnel ({{ current_label }}, finished cohorts)</h2>{{ chart }}
<table id="steps"><thead><tr><th>Stage</th><th class="num">Trials</th><th class="num">Reached</th><th class="num">Share</th>
<th class="num">From previous stage</th><th class="num">95% interval</th></tr></thead><tbody>
{% for s in steps %}<tr data-stage="{{ s.stage }}"><td>{{ s.stage }}</td><td class="num">{{ s.trials }}</td><td class="num">{{ s.reached }}</td>
<td class="num">{{ pct(s.share) }}</td><td class="num">{{ pct(s.step_rate) }}</td><td class="num">{{ s.interval }}</td></tr>{% endfor %}
</tbody></table></div>
<div class="card"><h2>Share reaching each stage, by signup cohort</h2>
<p class="muted">Hover a cell for its count, interval and median days. <span class="flag">&#9650;&#9660;</span> = changed beyond chance
vs the previous cohorts (Benjamini-Hochberg, false discovery rate {{ f.meta.false_discovery_rate }}); <em>italic</em> = cohort still running for that stage.</p>
<table id="heat"><thead><tr><th>Cohort</th><th class="num">Trials</th>{% for s in stages %}<th class="num">{{ s }}</th>{% endfor %}</tr></thead><tbody>
{% for r in rows %}<tr data-cohort="{{ r.cohort }}"><td>{{ r.cohort }}</td><td class="num">{{ r.trials }}</td>
{% for c in r.cells %}<td class="num heat{% if c.flag %} flagged{% endif %}{% if not c.finished %} open{% endif %}" data-stage="{{ c.stage }}" data-share="{{ c.share }}"
 data-reached="{{ c.reached }}" style="background:{{ c.colour }}" title="{{ c.title }}">{{ pct(c.share) }}{% if c.flag %} <span class="flag">{{ c.flag }}</span>{% endif %}
{% if c.expected is not none %}<br><span class="expected" title="expected by the champion, P10-P90">&rarr; {{ pct(c.expected) }} ({{ pct(c.p10) }}-{{ pct(c.p90) }})</span>{% endif %}</td>{% endfor %}</tr>{% endfor %}
</tbody></table></div>{% endif %}
<style>td.heat{min-width:4.5rem}td.open{font-style:italic}td.flagged{outline:2px solid #dc2626}.flag{color:#b91c1c;font-weight:bold}.expected{font-size:.75rem;color:#92400e}</style>
{% endblock %}"""

_ENV.loader.mapping["funnel"] = _FUNNEL  # type: ignore[union-attr]


def _pct(value: Any) -> str:
    return "-" if value is None or pd.isna(value) else f"{100 * float(value):.0f}%"


def _colour(share: float) -> str:
    """A blue whose strength is the share (white at 0); text stays readable."""
    s = 0.0 if pd.isna(share) else max(0.0, min(1.0, float(share)))
    r, g, b = (round(255 - s * (255 - c)) for c in (147, 197, 253))
    return f"rgb({r},{g},{b})"


def _steps(view: pd.DataFrame) -> list[dict[str, Any]]:
    """The view's funnel pooled over finished cohorts, with stage-to-stage conversion."""
    done = view[view["finished"].astype(bool)]
    sums = done.groupby(["stage_order", "stage"], sort=True)[
        ["trials", "reached", "step_trials", "step_reached"]
    ].sum(min_count=1)
    low, high = wilson_interval(sums["step_reached"].fillna(0), sums["step_trials"].fillna(0))
    out = []
    for (order, stage), r, lo, hi in zip(
        sums.index, sums.to_dict("records"), low, high, strict=True
    ):
        step = r["step_reached"] / r["step_trials"] if r["step_trials"] and order else None
        out.append({"stage": stage, "trials": f"{int(r['trials']):,}",
                    "reached": f"{int(r['reached']):,}", "share": r["reached"] / r["trials"],
                    "step_rate": step,
                    "interval": f"{_pct(lo)} - {_pct(hi)}" if step is not None else "-"})  # fmt: skip
    return out


def _chart(steps: list[dict[str, Any]], width: int = 760) -> str:
    """The funnel as horizontal bars (inline SVG): share reaching each stage."""
    row, left = 26, 260
    height = row * len(steps) + 10
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             'role="img" aria-label="Share of trials reaching each stage">']  # fmt: skip
    for i, s in enumerate(steps):
        y = 5 + i * row
        w = (width - left - 60) * float(s["share"])
        label = str(s["stage"]).replace("&", "&amp;").replace("<", "&lt;")
        parts.append(f'<text x="{left - 8}" y="{y + 16}" font-size="12" text-anchor="end">{label}</text>'
                     f'<rect class="funnel-bar" data-share="{float(s["share"]):.6f}" x="{left}" y="{y + 3}" '
                     f'width="{w:.1f}" height="{row - 8}" fill="#1f3a5f"/>'
                     f'<text x="{left + w + 6:.1f}" y="{y + 16}" font-size="12">{_pct(s["share"])}</text>')  # fmt: skip
    parts.append("</svg>")
    return "".join(parts)


def _cell(r: dict[str, Any]) -> dict[str, Any]:
    flag = ""
    if bool(r["flagged"]):
        flag = "\u25b2" if r["share"] > r["baseline_share"] else "\u25bc"
    median = "-" if pd.isna(r["median_days"]) else f"{r['median_days']:.1f} days"
    title = (f"{int(r['reached']):,} of {int(r['trials']):,} ({_pct(r['share_low'])}-{_pct(r['share_high'])}); "
             f"median {median}")  # fmt: skip
    if not pd.isna(r["step_rate"]):
        title += (f"; from {r['from_stage']}: {_pct(r['step_rate'])} "
                  f"({_pct(r['step_low'])}-{_pct(r['step_high'])})")  # fmt: skip
    if not pd.isna(r["baseline_share"]):
        title += f"; previous cohorts {_pct(r['baseline_share'])}"
    expected = r.get("expected_share")
    has_expected = expected is not None and not pd.isna(expected)
    return {"stage": r["stage"], "share": f"{float(r['share']):.6f}", "reached": int(r["reached"]),
            "colour": _colour(r["share"]), "title": title, "flag": flag,
            "finished": bool(r["finished"]),
            "expected": expected if has_expected else None,
            "p10": r.get("expected_p10"), "p90": r.get("expected_p90")}  # fmt: skip


def _label(dimension: str, segment: str) -> str:
    return "All trials" if dimension == "total" else f"{dimension}: {segment}"


def render_funnel(funnel: LatestFunnel | None, *, company: str, view: str | None = None) -> str:
    """The Funnel page for ``view`` (``"dimension:segment"``; default the whole funnel)."""
    context: dict[str, Any] = {"f": funnel, "subtitle": company, "pct": _pct}
    if funnel is not None:
        views = funnel.views()
        keys = [f"{d}:{s}" for d, s in views]
        current = view if view in keys else keys[0]
        dimension, segment = views[keys.index(current)]
        part = funnel.view(dimension, segment)
        steps = _steps(part)
        rows = []
        for cohort, cells in part.groupby("cohort", sort=True):
            records = cast(
                list[dict[str, Any]], cells.sort_values("stage_order").to_dict("records")
            )
            rows.append({"cohort": cohort, "trials": f"{int(records[0]['trials']):,}",
                         "cells": [_cell(r) for r in records]})  # fmt: skip
        context.update(
            views=[(k, _label(d, s)) for k, (d, s) in zip(keys, views, strict=True)],
            current=current,
            current_label=_label(dimension, segment),
            steps=steps,
            chart=Markup(_chart(steps)),
            stages=list(dict.fromkeys(part.sort_values("stage_order")["stage"])),
            rows=rows[::-1],  # newest cohort first
        )
    return _ENV.get_template("funnel").render(**context)
