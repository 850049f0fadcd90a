"""The "Model health" page (``/ui/health``) and its Prometheus gauges.

Both read what ``trialcast monitor`` wrote last (``<output root>/monitoring/
latest.json``, docs/monitoring.md; ``TRIALCAST_MONITORING_DIR`` moves the
folder): the verdict and its alerts, a chart of conversions expected so far vs
realised per weekly cohort, estimated vs realised ROC AUC per cohort (the
estimate with its interval), the features that moved most, and the data
alerts. The service never judges health itself; it shows the monitor's report.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from markupsafe import Markup

from models.settings import output_root
from serving.views import _ENV

ENV_MONITORING_DIR = "TRIALCAST_MONITORING_DIR"
LATEST = "latest.json"
VERDICT_CLASS = {
    "healthy": "ok",
    "too early to tell": "muted",
    "inputs shifted": "warn",
    "outcomes shifted": "bad",
    "data broken": "bad",
}

_HEALTH = """{% extends "base" %}{% block title %}Model health - trialcast{% endblock %}
{% block body %}
<h1>Model health</h1>
{% if r is none %}<p id="empty">No health report yet: run <code>trialcast monitor -c CONFIG</code>.</p>
{% else %}
<div class="card" id="verdict-card"><h2>Verdict as of {{ r.as_of }}</h2>
<p><strong id="verdict" class="{{ vclass }}">{{ r.verdict }}</strong>
{% if model %} &middot; conversion model v{{ model.version }} trained at {{ model.trained_at }}{% endif %}</p>
{% if r.alerts %}<ul id="alerts">{% for a in r.alerts %}<li data-kind="{{ a.kind }}">
<strong>{{ a.kind }}</strong> &middot; {{ a.subject }}{% if a.since %} &middot; since {{ a.since }}{% endif %}:
{{ a.evidence }}</li>{% endfor %}</ul>{% else %}<p class="muted">No alert.</p>{% endif %}</div>
<div class="card" id="cohorts"><h2>Conversions so far: expected vs realised, per weekly cohort</h2>
{{ cohort_chart }}
<table id="cohort-table"><thead><tr><th>Cohort</th><th class="num">Trials</th>
<th class="num">Expected so far</th><th class="num">Realised so far</th><th>Matured</th></tr></thead><tbody>
{% for c in r.cohorts %}<tr data-cohort="{{ c.cohort }}"><td>{{ c.cohort }}</td><td class="num">{{ c.trials }}</td>
<td class="num">{{ '%.1f'|format(c.expected_so_far) }}</td><td class="num">{{ c.realised_so_far }}</td>
<td>{{ 'yes' if c.matured else 'no' }}</td></tr>{% endfor %}</tbody></table></div>
<div class="card" id="auc"><h2>ROC AUC per cohort: estimated (before outcomes land) vs realised</h2>
{{ auc_chart }}{% if model and model.promised.test_auc %}<p class="muted">The gate's test AUC at promotion:
{{ model.promised.test_auc[:5] }} (over every snapshot; these are at the first snapshot day).</p>{% endif %}</div>
<div class="card" id="drift"><h2>Inputs that moved most (weighted by importance)</h2>
{% if model %}<p class="muted">Prediction drift (PSI): {{ psi(model.drift.prediction_psi) }}
&middot; {{ model.drift.n_recent }} recent trials vs {{ model.drift.n_reference }} in the training window</p>
<table id="features"><thead><tr><th>Feature</th><th class="num">PSI</th><th class="num">Share of gain</th><th>Material</th></tr></thead><tbody>
{% for f in model.drift.top_features %}<tr><td>{{ f.feature }}</td><td class="num">{{ psi(f.psi) }}</td>
<td class="num">{{ '%.0f%%'|format(100 * (f.importance or 0)) }}</td><td>{{ 'yes' if f.material else 'no' }}</td></tr>{% endfor %}
</tbody></table>{% endif %}</div>
<div class="card" id="data"><h2>Data</h2>
{% set data_alerts = r.alerts|selectattr('kind', 'equalto', 'data')|list %}
{% if data_alerts %}<ul id="data-alerts">{% for a in data_alerts %}<li>{{ a.evidence }}</li>{% endfor %}</ul>
{% else %}<p class="muted" id="data-ok">No broken pipeline found.</p>{% endif %}
{% for n in r.notes %}<p class="muted">{{ n }}</p>{% endfor %}</div>
{% endif %}{% endblock %}"""


def resolve_monitoring_dir(folder: str | Path | None = None) -> Path:
    """``folder``, else ``TRIALCAST_MONITORING_DIR``, else ``<output root>/monitoring``."""
    if folder is not None:
        return Path(folder)
    env = os.environ.get(ENV_MONITORING_DIR)
    return Path(env) if env else output_root() / "monitoring"


def read_latest_health(folder: str | Path | None = None) -> dict[str, Any] | None:
    """The newest monitoring report, or ``None`` when there is none (or it is unreadable)."""
    path = resolve_monitoring_dir(folder) / LATEST
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _bars(cohorts: list[dict[str, Any]], *, width: int = 760, height: int = 180) -> str:
    """Grouped bars: expected so far (outline) and realised so far (filled) per cohort."""
    if not cohorts:
        return '<p class="muted">No cohort since the champion was trained.</p>'
    top = max(max(c["expected_so_far"] or 0, c["realised_so_far"] or 0) for c in cohorts) or 1.0
    step = width / len(cohorts)
    bar = max(step * 0.35, 1.0)
    parts = [
        f'<svg role="img" aria-label="expected vs realised conversions so far" '
        f'width="{width}" height="{height + 20}" id="cohort-chart">'
    ]
    for i, c in enumerate(cohorts):
        x = i * step + step * 0.1
        for j, (key, style) in enumerate(
            (
                ("expected_so_far", 'fill="none" stroke="#555"'),
                ("realised_so_far", 'fill="#2b6cb0"'),
            )
        ):
            h = height * float(c[key] or 0) / top
            parts.append(
                f'<rect class="{key}" x="{x + j * bar:.1f}" y="{height - h:.1f}" '
                f'width="{bar:.1f}" height="{h:.1f}" {style}><title>{c["cohort"]}: '
                f"{key.replace('_', ' ')} {float(c[key] or 0):.1f}</title></rect>"
            )
    parts.append(
        f'<text x="0" y="{height + 15}" font-size="11">{cohorts[0]["cohort"]}</text>'
        f'<text x="{width - 70}" y="{height + 15}" font-size="11">{cohorts[-1]["cohort"]}</text>'
        "</svg>"
    )
    return "".join(parts)


def _auc_points(cohorts: list[dict[str, Any]], *, width: int = 760, height: int = 160) -> str:
    """Estimated AUC (dot, with its interval) and realised AUC (square) per cohort, 0.5-1."""
    shown = [c for c in cohorts if c.get("auc_estimated") is not None]
    if not shown:
        return '<p class="muted">Too few trials per cohort for an AUC yet.</p>'
    step = width / len(shown)

    def y(v: float) -> float:
        return height - (min(max(v, 0.5), 1.0) - 0.5) / 0.5 * height

    parts = [
        f'<svg role="img" aria-label="estimated vs realised AUC" width="{width}" '
        f'height="{height + 20}" id="auc-chart">'
    ]
    for i, c in enumerate(shown):
        x = i * step + step / 2
        low, high = c.get("auc_estimated_low"), c.get("auc_estimated_high")
        if low is not None and high is not None:
            parts.append(
                f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{y(low):.1f}" y2="{y(high):.1f}" '
                'stroke="#999"/>'
            )
        est = float(c["auc_estimated"])
        parts.append(
            f'<circle class="estimated" cx="{x:.1f}" cy="{y(est):.1f}" r="3" fill="#555">'
            f"<title>{c['cohort']}: estimated {est:.3f}</title></circle>"
        )
        if c.get("auc_realised") is not None:
            real = float(c["auc_realised"])
            parts.append(
                f'<rect class="realised" x="{x - 3:.1f}" y="{y(real) - 3:.1f}" width="6" '
                f'height="6" fill="#2b6cb0"><title>{c["cohort"]}: realised {real:.3f}</title></rect>'
            )
    parts.append("</svg>")
    return "".join(parts)


def _psi(value: Any) -> str:
    return "-" if value is None else f"{float(value):.2f}"


def render_health(report: dict[str, Any] | None, *, company: str = "") -> str:
    """The Model health page for ``report`` (``None``: say how to make one)."""
    model = None if report is None else report.get("models", {}).get("conversion")
    cohorts = [] if report is None else list(report.get("cohorts", []))
    return _ENV.from_string(_HEALTH).render(
        r=report,
        model=model,
        company=company,
        vclass=VERDICT_CLASS.get(str((report or {}).get("verdict")), ""),
        cohort_chart=Markup(_bars(cohorts)),
        auc_chart=Markup(_auc_points(cohorts)),
        psi=_psi,
    )
