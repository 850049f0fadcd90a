"""The "Model health" page (``/ui/health``) and its Prometheus gauges.

Both read what ``trialcast monitor`` wrote last (``<output root>/monitoring/
latest.json``, docs/monitoring.md; ``TRIALCAST_MONITORING_DIR`` moves the
folder): the verdict and its alerts, a chart of conversions expected so far vs
realised per weekly cohort, estimated vs realised ROC AUC per cohort (the
estimate with its interval), the features that moved most, the churn
champion's own section (its verdict and alerts, churns so far vs expected per
snapshot cohort, its estimated AUC shown as reported, not judged, its drift; or,
in words, that there is none), and the data alerts. The service never judges
health itself; it shows the monitor's report.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, DictLoader
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

_MACROS = """{% macro cohort_table(cohorts, table_id, rows, counted) %}
<table id="{{ table_id }}"><thead><tr><th>Cohort</th><th class="num">{{ rows|capitalize }}</th>
<th class="num">{{ counted|capitalize }} expected so far</th><th class="num">Realised so far</th><th>Matured</th></tr></thead><tbody>
{% for c in cohorts %}<tr data-cohort="{{ c.cohort }}"><td>{{ c.cohort }}</td><td class="num">{{ c.trials }}</td>
<td class="num">{{ '%.1f'|format(c.expected_so_far) }}</td><td class="num">{{ c.realised_so_far }}</td>
<td>{{ 'yes' if c.matured else 'no' }}</td></tr>{% endfor %}</tbody></table>
{% endmacro %}
{% macro drift_table(model, table_id, rows) %}
<p class="muted">Prediction drift (PSI): {{ psi(model.drift.prediction_psi) }}
&middot; {{ model.drift.n_recent }} recent {{ rows }} vs {{ model.drift.n_reference }} in the training window</p>
<table id="{{ table_id }}"><thead><tr><th>Feature</th><th class="num">PSI</th><th class="num">Share of gain</th><th class="num">With near-copies</th><th>Material</th></tr></thead><tbody>
{% for f in model.drift.top_features %}<tr><td>{{ f.feature }}</td><td class="num">{{ psi(f.psi) }}</td>
<td class="num">{{ '%.0f%%'|format(100 * (f.importance or 0)) }}</td>
<td class="num">{{ '%.0f%%'|format(100 * (f.group_importance or f.importance or 0)) }}</td><td>{{ 'yes' if f.material else 'no' }}</td></tr>{% endfor %}
</tbody></table>
{% endmacro %}
{% macro alert_list(alerts, list_id) %}
{% if alerts %}<ul id="{{ list_id }}">{% for a in alerts %}<li data-kind="{{ a.kind }}">
<strong>{{ a.kind }}</strong> &middot; {{ a.subject }}{% if a.since %} &middot; since {{ a.since }}{% endif %}:
{{ a.evidence }}</li>{% endfor %}</ul>{% else %}<p class="muted">No alert.</p>{% endif %}
{% endmacro %}"""

_HEALTH = """{% extends "base" %}{% import "health_macros" as h with context %}
{% block title %}Model health - trialcast{% endblock %}
{% block body %}
<h1>Model health</h1>
{% if r is none %}<p id="empty">No health report yet: run <code>trialcast monitor -c CONFIG</code>.</p>
{% else %}
<div class="card" id="verdict-card"><h2>Verdict as of {{ r.as_of }}</h2>
<p><strong id="verdict" class="{{ vclass }}">{{ r.verdict }}</strong>
{% if model %} &middot; conversion model v{{ model.version }} trained at {{ model.trained_at }}{% endif %}
{% if churn %} &middot; churn model v{{ churn.version }} trained at {{ churn.trained_at }}{% endif %}</p>
{{ h.alert_list(r.alerts, "alerts") }}</div>
<div class="card" id="cohorts"><h2>Conversions so far: expected vs realised, per weekly cohort</h2>
{{ cohort_chart }}
{{ h.cohort_table(r.cohorts, "cohort-table", "trials", "conversions") }}</div>
<div class="card" id="auc"><h2>ROC AUC per cohort: estimated (before outcomes land) vs realised</h2>
{{ auc_chart }}{% if model and model.promised.test_auc %}<p class="muted">The gate's test AUC at promotion:
{{ model.promised.test_auc[:5] }} (over every snapshot; these are at the first snapshot day).</p>{% endif %}</div>
<div class="card" id="drift"><h2>Inputs that moved most (weighted by importance)</h2>
{% if model %}{{ h.drift_table(model, "features", "trials") }}{% endif %}</div>
<div class="card" id="churn"><h2>Churn model</h2>
{% if churn is none %}<p id="churn-none">No churn champion is monitored in this report: no churn model
has been promoted (the gate promotes one only when it beats the baselines on held-out paying
accounts), so there are no churns to judge. The verdict above is the conversion model's and the data's.</p>
{% else %}<p>Its own verdict: <strong id="churn-verdict" class="{{ churn_vclass }}">{{ churn.verdict or 'not in this report' }}</strong>
&middot; {{ churn.outcome_test.realised_so_far }} churns so far vs {{ '%.1f'|format(churn.outcome_test.expected_so_far or 0) }}
expected in the snapshots since it was trained (test statistic {{ psi(churn.outcome_test.log_likelihood_ratio) }},
alarm at {{ psi(churn.outcome_test.threshold) }})</p>
{{ h.alert_list(churn.alerts or [], "churn-alerts") }}
<h3>Churns so far: expected vs realised, per weekly snapshot cohort</h3>
<p class="muted">Paying accounts at their monthly snapshots; a snapshot's churns land over its
churn horizon (<code>churn_horizon_days</code>), so a cohort matures only when that has run.</p>
{{ churn_cohort_chart }}
{{ h.cohort_table(churn.cohorts or [], "churn-cohort-table", "snapshots", "churns") }}
<h3>ROC AUC per snapshot cohort: estimated vs realised</h3>
<p id="churn-auc-note"><strong>Reported, not judged.</strong> The churn model's estimated AUC is
shown for reference only: on generated companies it ran 0.06-0.15 above the realised AUC of the
first matured snapshot cohorts, so no alert and no verdict depend on it (docs/monitoring.md).</p>
{{ churn_auc_chart }}
<h3>Inputs that moved most (weighted by importance)</h3>
{{ h.drift_table(churn, "churn-features", "snapshots") }}{% endif %}</div>
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


def _bars(
    cohorts: list[dict[str, Any]],
    *,
    chart_id: str = "cohort-chart",
    counted: str = "conversions",
    width: int = 760,
    height: int = 180,
) -> str:
    """Grouped bars: expected so far (outline) and realised so far (filled) per cohort."""
    if not cohorts:
        return '<p class="muted">No cohort since the champion was trained.</p>'
    top = max(max(c["expected_so_far"] or 0, c["realised_so_far"] or 0) for c in cohorts) or 1.0
    step = width / len(cohorts)
    bar = max(step * 0.35, 1.0)
    parts = [
        f'<svg role="img" aria-label="expected vs realised {counted} so far" '
        f'width="{width}" height="{height + 20}" id="{chart_id}">'
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


def _auc_points(
    cohorts: list[dict[str, Any]],
    *,
    chart_id: str = "auc-chart",
    width: int = 760,
    height: int = 160,
) -> str:
    """Estimated AUC (dot, with its interval) and realised AUC (square) per cohort, 0.5-1."""
    shown = [c for c in cohorts if c.get("auc_estimated") is not None]
    if not shown:
        return '<p class="muted">Too few trials per cohort for an AUC yet.</p>'
    step = width / len(shown)

    def y(v: float) -> float:
        return height - (min(max(v, 0.5), 1.0) - 0.5) / 0.5 * height

    parts = [
        f'<svg role="img" aria-label="estimated vs realised AUC" width="{width}" '
        f'height="{height + 20}" id="{chart_id}">'
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
    """The Model health page for ``report`` (``None``: say how to make one): the
    conversion champion, then the churn champion's own section (or why there is none)."""
    models = {} if report is None else report.get("models", {})
    model, churn = models.get("conversion"), models.get("churn")
    cohorts = [] if report is None else list(report.get("cohorts", []))
    churn_cohorts = [] if churn is None else list(churn.get("cohorts", []))
    return _HEALTH_ENV.get_template("health").render(
        r=report,
        model=model,
        churn=churn,
        company=company,
        vclass=VERDICT_CLASS.get(str((report or {}).get("verdict")), ""),
        churn_vclass=VERDICT_CLASS.get(str((churn or {}).get("verdict")), ""),
        cohort_chart=Markup(_bars(cohorts)),
        auc_chart=Markup(_auc_points(cohorts)),
        churn_cohort_chart=Markup(
            _bars(churn_cohorts, chart_id="churn-cohort-chart", counted="churns")
        ),
        churn_auc_chart=Markup(_auc_points(churn_cohorts, chart_id="churn-auc-chart")),
        psi=_psi,
    )


#: The shared page environment (base template, filters) plus this page's templates.
_HEALTH_ENV = _ENV.overlay(
    loader=ChoiceLoader(
        [DictLoader({"health": _HEALTH, "health_macros": _MACROS}), _ENV.loader]  # type: ignore[list-item]
    )
)
