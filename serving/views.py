"""The sales view: server-rendered HTML pages and the explanation waterfall (inline SVG).

Pages: the ranked account list (expected value = p_convert x deal value) with
persona and PQL filters, one page per account with its reasons as a waterfall
from the average account's log-odds to its own, and the login form. Templates
are Jinja2 with autoescaping on; the SVG is built here with every text escaped.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from typing import Any

from jinja2 import DictLoader, Environment, select_autoescape
from markupsafe import Markup

from features.personas import PERSONAS

_BASE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{% block title %}trialcast{% endblock %}</title>
<style>
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:0;color:#1f2933;background:#f7f8fa}
header{background:#1f3a5f;color:#fff;padding:.8rem 1.5rem;display:flex;justify-content:space-between}
header a{color:#fff;text-decoration:none}
main{padding:1rem 1.5rem;max-width:1200px}
table{border-collapse:collapse;width:100%;background:#fff}
th,td{padding:.45rem .6rem;border-bottom:1px solid #e4e7eb;text-align:left}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.badge{display:inline-block;padding:.1rem .45rem;border-radius:.6rem;font-size:.8rem}
.pql{background:#d1fae5;color:#065f46}.nopql{background:#eef0f3;color:#52606d}
.card{background:#fff;padding:1rem;border-radius:.4rem;margin-bottom:1rem}
.pos{color:#047857}.neg{color:#b91c1c}
form.filters{margin:.5rem 0 1rem;display:flex;gap:1rem;align-items:center}
.muted{color:#7b8794}
</style></head><body>
<header><a href="/ui">trialcast &middot; sales view</a><span class="muted">{{ subtitle }}</span></header>
<main>{% block body %}{% endblock %}</main></body></html>"""

_LIST = """{% extends "base" %}{% block title %}Accounts - trialcast{% endblock %}
{% block body %}
<h1>Open trials by expected value</h1>
{% if not scored %}<p id="empty">No batch scores yet: run the score job (<code>trialcast score</code>).</p>
{% else %}
<form class="filters" method="get" action="/ui" id="filters">
 <label>Persona
  <select name="persona" id="persona-filter" onchange="this.form.submit()">
   <option value="">All personas</option>
   {% for p in personas %}<option value="{{ p }}"{% if p == persona %} selected{% endif %}>{{ p }}</option>{% endfor %}
  </select></label>
 <label>PQL
  <select name="pql" id="pql-filter" onchange="this.form.submit()">
   <option value=""{% if pql is none %} selected{% endif %}>All</option>
   <option value="yes"{% if pql == true %} selected{% endif %}>PQL only</option>
   <option value="no"{% if pql == false %} selected{% endif %}>Not PQL</option>
  </select></label>
 <noscript><button type="submit">Filter</button></noscript>
 <span class="muted" id="count">{{ rows|length }} of {{ total }} accounts &middot; scored {{ as_of }}</span>
</form>
<table id="accounts"><thead><tr><th>#</th><th>Account</th><th class="num">P(convert)</th>
<th class="num">Deal value</th><th class="num">Expected value</th><th>Persona</th><th>PQL</th>
<th class="num">Trial days left</th></tr></thead><tbody>
{% for r in rows %}<tr data-persona="{{ r.persona }}" data-pql="{{ 'yes' if r.pql else 'no' }}">
<td>{{ loop.index }}</td>
<td><a class="account-link" href="/ui/accounts/{{ r.account_id|urlencode }}">{{ r.account_id }}</a></td>
<td class="num">{{ '%.0f%%'|format(r.p_convert * 100) }}</td>
<td class="num">{{ money(r.deal_value) }}</td><td class="num">{{ money(r.expected_value) }}</td>
<td>{{ r.persona }}</td>
<td>{% if r.pql %}<span class="badge pql">PQL</span>{% else %}<span class="badge nopql">-</span>{% endif %}</td>
<td class="num">{{ '%.0f'|format(r.trial_days_left) }}</td></tr>
{% endfor %}</tbody></table>{% endif %}
{% endblock %}"""

_ACCOUNT = """{% extends "base" %}{% block title %}{{ a.account_id }} - trialcast{% endblock %}
{% block body %}
<p><a href="/ui" id="back">&larr; All accounts</a></p>
<h1 id="account-id">{{ a.account_id }}</h1>
<div class="card">
 <p><strong id="probability">{{ '%.0f%%'|format(a.p_convert * 100) }}</strong> likely to convert
  &middot; deal value {{ money(a.deal_value) }} &middot; expected value <strong>{{ money(a.expected_value) }}</strong>
  &middot; {% if a.pql %}<span class="badge pql" id="pql">PQL</span>{% else %}<span class="badge nopql" id="pql">not PQL</span>{% endif %}</p>
 <p>Persona: <strong id="persona">{{ a.persona }}</strong>
  <span id="persona-chance" class="muted">&middot; stated chance {{ '%.0f%%'|format(stated * 100) }}{% if observed %},
  observed {{ '%.0f%%'|format(observed.observed * 100) }} ({{ '%.0f'|format(observed.low * 100) }}-{{ '%.0f%%'|format(observed.high * 100) }}, {{ '%d'|format(observed.trials) }} trials) in the model's training window{% endif %}</span></p>
 <p id="playbook">Playbook: {{ a.playbook }}</p>
 <p class="muted">Model {{ e.model_name }} v{{ e.model_version }}, scored {{ a.as_of }}</p>
</div>
<div class="card" id="waterfall"><h2>Why this score</h2>{{ svg }}</div>
<div class="card"><h2>Reasons</h2><ul id="reasons">
{% for f in e.positive %}<li class="pos" data-code="{{ f.code }}">&#9650; {{ f.text }} <span class="muted">({{ '%+.2f'|format(f.contribution) }})</span></li>{% endfor %}
{% for f in e.negative %}<li class="neg" data-code="{{ f.code }}">&#9660; {{ f.text }} <span class="muted">({{ '%+.2f'|format(f.contribution) }})</span></li>{% endfor %}
</ul><p class="muted">Contributions are in log-odds; with the average account ({{ '%+.2f'|format(e.base_value) }})
and all other factors ({{ '%+.2f'|format(e.other) }}) they add up exactly to this account's {{ '%+.2f'|format(e.logit) }}.</p></div>
{% endblock %}"""

_LOGIN = """{% extends "base" %}{% block title %}Sign in - trialcast{% endblock %}
{% block body %}<h1>Sign in</h1>
{% if failed %}<p class="neg" id="login-error">That token is not valid.</p>{% endif %}
<form method="post" action="/ui/login" class="card"><label>API token
<input type="password" name="token" id="token" autocomplete="current-password" required></label>
<button type="submit" id="sign-in">Sign in</button></form>{% endblock %}"""

_NOT_FOUND = """{% extends "base" %}{% block body %}<h1>Not found</h1>
<p>No scored account {{ account_id }} in the latest batch scores.</p><p><a href="/ui">All accounts</a></p>
{% endblock %}"""


def _money(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{float(value):,.0f}"


_ENV = Environment(
    loader=DictLoader(
        {
            "base": _BASE,
            "list": _LIST,
            "account": _ACCOUNT,
            "login": _LOGIN,
            "not_found": _NOT_FOUND,
        }
    ),
    autoescape=select_autoescape(default=True, default_for_string=True),
)
_ENV.globals["money"] = _money


def render_list(
    rows: list[dict[Any, Any]],
    *,
    total: int,
    persona: str | None,
    pql: bool | None,
    as_of: Any,
    company: str,
) -> str:
    """The ranked account list page."""
    return _ENV.get_template("list").render(
        rows=rows,
        total=total,
        persona=persona,
        pql=pql,
        as_of=as_of,
        scored=as_of is not None,
        personas=list(PERSONAS),
        subtitle=company,
    )


def render_account(
    account: dict[str, Any],
    *,
    company: str,
    persona_rates: Mapping[str, Mapping[str, float]] | None = None,
) -> str:
    """One account's page: score, persona with its stated and observed chance, playbook
    line, waterfall and reasons."""
    explanation = account["explanations"][0]
    persona = PERSONAS.get(str(account.get("persona")))
    return _ENV.get_template("account").render(
        a=account,
        e=explanation,
        svg=Markup(render_waterfall(explanation)),
        subtitle=company,
        stated=persona.stated_chance if persona is not None else float("nan"),
        observed=(persona_rates or {}).get(str(account.get("persona"))),
    )


def render_login(*, failed: bool = False, company: str = "") -> str:
    """The sign-in form (the token becomes an HttpOnly cookie)."""
    return _ENV.get_template("login").render(failed=failed, subtitle=company)


def render_not_found(account_id: str, *, company: str = "") -> str:
    """The page for an account that is not in the latest scores."""
    return _ENV.get_template("not_found").render(account_id=account_id, subtitle=company)


def _prob(logit: float) -> str:
    return f"{100 / (1 + math.exp(-logit)):.0f}%"


def render_waterfall(explanation: dict[str, Any], *, width: int = 760) -> str:
    """An SVG waterfall: average account -> each listed factor -> the rest -> this account.

    Bars are in log-odds (the unit in which contributions add up exactly); the
    running total is also shown as a probability at the start and the end.
    """
    steps: list[tuple[str, float, str]] = []
    factors = sorted(
        explanation["positive"] + explanation["negative"],
        key=lambda f: -abs(f["contribution"]),
    )
    for f in factors:
        steps.append(
            (f["text"], float(f["contribution"]), "pos" if f["contribution"] > 0 else "neg")
        )
    steps.append(("All other factors", float(explanation["other"]), "other"))
    base = float(explanation["base_value"])
    totals = [base]
    for _, delta, _ in steps:
        totals.append(totals[-1] + delta)
    lo, hi = min(totals), max(totals)
    pad = max((hi - lo) * 0.05, 0.1)
    lo, hi = lo - pad, hi + pad
    label_w, row_h, top = 330, 24, 10
    plot_w = width - label_w - 70

    def x(v: float) -> float:
        return label_w + (v - lo) / (hi - lo) * plot_w

    rows = len(steps) + 2
    height = top + rows * row_h + 24
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="Score waterfall">'
    ]
    colours = {"pos": "#059669", "neg": "#dc2626", "other": "#9aa5b1"}

    def label(row: int, text: str, weight: str = "normal") -> None:
        y = top + row * row_h + row_h * 0.65
        short = text if len(text) <= 48 else text[:47] + "..."
        parts.append(
            f'<text x="{label_w - 8}" y="{y:.1f}" text-anchor="end" font-size="12" '
            f'font-weight="{weight}">{html.escape(short)}</text>'
        )

    def marker(row: int, value: float, text: str) -> None:
        y = top + row * row_h
        parts.append(
            f'<rect x="{x(value) - 2:.1f}" y="{y + 3}" width="4" height="{row_h - 6}" fill="#1f3a5f"/>'
        )
        parts.append(
            f'<text x="{x(value) + 6:.1f}" y="{y + row_h * 0.65:.1f}" font-size="11">'
            f"{html.escape(text)}</text>"
        )

    label(0, "Average account", "bold")
    marker(0, base, f"{base:+.2f} ({_prob(base)})")
    for i, (text, delta, kind) in enumerate(steps, start=1):
        start, end = totals[i - 1], totals[i]
        y = top + i * row_h
        left, right = min(start, end), max(start, end)
        label(i, text)
        parts.append(
            f'<rect class="bar {kind}" x="{x(left):.1f}" y="{y + 4}" '
            f'width="{max(x(right) - x(left), 1):.1f}" height="{row_h - 8}" fill="{colours[kind]}"/>'
        )
        parts.append(
            f'<text x="{x(right) + 4:.1f}" y="{y + row_h * 0.65:.1f}" font-size="11">'
            f"{delta:+.2f}</text>"
        )
    final = totals[-1]
    label(rows - 1, "This account", "bold")
    marker(rows - 1, final, f"{final:+.2f} ({_prob(final)})")
    axis_y = top + rows * row_h + 4
    parts.append(
        f'<line x1="{label_w}" y1="{axis_y}" x2="{label_w + plot_w}" y2="{axis_y}" stroke="#cbd2d9"/>'
    )
    parts.append(
        f'<text x="{label_w}" y="{axis_y + 14}" font-size="10" fill="#7b8794">'
        f"{lo:+.1f}</text>"
        f'<text x="{label_w + plot_w}" y="{axis_y + 14}" font-size="10" fill="#7b8794" '
        f'text-anchor="end">{hi:+.1f} log-odds</text>'
    )
    parts.append("</svg>")
    return "".join(parts)
