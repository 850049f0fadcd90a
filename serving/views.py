"""The sales view: server-rendered HTML pages.

Pages: the ranked account list (expected value = p_convert x deal value) with
persona and PQL filters, one page per account with its reasons as a waterfall
from the average account's log-odds to its own (``serving.charts``), and the
login form. Templates are Jinja2 with autoescaping on.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any
from urllib.parse import quote, urlencode

import pandas as pd
from jinja2 import DictLoader, Environment, select_autoescape
from markupsafe import Markup

from features.personas import PERSONAS, observed_rate_note
from serving.charts import day_label as _day
from serving.charts import probability_points, render_trend, render_waterfall, sigmoid

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
.deciding{background:#fef3c7;color:#92400e}
nav.pager{margin:1rem 0;display:flex;gap:1rem}
</style></head><body>
<header><a href="/ui">trialcast &middot; sales view</a><span><a href="/ui/forecast">finance</a> &middot; <a href="/ui/funnel">funnel</a> &middot; {{ subtitle }} &middot; <a href="/ui/logout">sign out</a></span></header>
<main>{% block body %}{% endblock %}</main><script src="/ui/app.js"></script></body></html>"""

_LIST = """{% extends "base" %}{% block title %}Accounts - trialcast{% endblock %}
{% block body %}
<h1>Open trials by expected value</h1>
{% if not scored %}<p id="empty">No batch scores yet: run the score job (<code>trialcast score</code>).</p>
{% else %}
<form class="filters" method="get" action="/ui" id="filters">
 <label>Search <input type="search" name="q" id="search" value="{{ search }}" placeholder="account id"></label>
 <label>Persona
  <select name="persona" id="persona-filter" class="autosubmit">
   <option value="">All personas</option>
   {% for p in personas %}<option value="{{ p }}"{% if p == persona %} selected{% endif %}>{{ p }}</option>{% endfor %}
  </select></label>
 <label>PQL
  <select name="pql" id="pql-filter" class="autosubmit">
   <option value=""{% if pql is none %} selected{% endif %}>All</option>
   <option value="yes"{% if pql == true %} selected{% endif %}>PQL only</option>
   <option value="no"{% if pql == false %} selected{% endif %}>Not PQL</option>
  </select></label>
 <button type="submit" id="apply">Apply</button>
 <span class="muted" id="count">{{ matched }} of {{ total }} accounts &middot; page {{ page }} of {{ pages }} &middot; scored {{ as_of }}</span>
</form>
<table id="accounts"><thead><tr><th>#</th><th>Account</th><th class="num">P(convert)</th>
<th class="num">Deal value</th><th class="num">Expected value</th><th>Persona</th><th>PQL</th>
<th>Trial</th></tr></thead><tbody>
{% for r in rows %}<tr data-persona="{{ r.persona }}" data-pql="{{ 'yes' if r.pql else 'no' }}" data-state="{{ state(r) }}">
<td>{{ first_rank + loop.index0 }}</td>
<td><a class="account-link" href="/ui/accounts/{{ r.account_id|path_segment }}">{{ r.account_id }}</a></td>
<td class="num">{{ '%.0f%%'|format(r.p_convert * 100) }}</td>
<td class="num">{{ money(r.deal_value) }}</td><td class="num">{{ money(r.expected_value) }}</td>
<td>{{ r.persona }}{% if rates.get(r.persona) %} <span class="muted">seen {{ '%.0f%%'|format(rates[r.persona].observed * 100) }}</span>{% endif %}</td>
<td>{% if r.pql %}<span class="badge pql">PQL</span>{% else %}<span class="badge nopql">-</span>{% endif %}</td>
<td class="trial">{% if state(r) == 'deciding' %}<span class="badge deciding">deciding</span>
 <span class="muted">ended {{ day(r.trial_end) }}, window to {{ day(window_end(r)) }}</span>
 {% else %}{{ days_left(r.trial_days_left) }} left{% endif %}</td></tr>
{% endfor %}</tbody></table>
{% if lead_types %}<details class="card" id="lead-types" open><summary><strong>Lead types: stated chance vs what this company sees</strong>
 <span class="muted">(finished trials of the model's training window, 95% interval)</span></summary>
<table><thead><tr><th>Lead type</th><th class="num">Stated</th><th class="num">Observed</th><th class="num">Trials</th><th>Playbook</th><th>Note</th></tr></thead><tbody>
{% for t in lead_types %}<tr data-type="{{ t.name }}"{% if t.note %} class="neg"{% endif %}><td>{{ t.name }}</td>
<td class="num">{{ '%.0f%%'|format(t.stated * 100) }}</td>
<td class="num">{% if t.trials %}{{ '%.0f%%'|format(t.observed * 100) }} <span class="muted">({{ '%.0f'|format(t.low * 100) }}-{{ '%.0f%%'|format(t.high * 100) }})</span>{% else %}<span class="muted">not observed</span>{% endif %}</td>
<td class="num">{{ '{:,}'.format(t.trials) }}</td><td>{{ t.playbook }}</td><td class="note">{{ t.note }}</td></tr>
{% endfor %}</tbody></table></details>{% endif %}
<nav class="pager" id="pager">
{% if page > 1 %}<a id="prev" href="{{ page_url(page - 1) }}">&larr; Previous</a>{% endif %}
<span>Page {{ page }} of {{ pages }}</span>
{% if page < pages %}<a id="next" href="{{ page_url(page + 1) }}">Next &rarr;</a>{% endif %}
</nav>{% endif %}
{% endblock %}"""

_ACCOUNT = """{% extends "base" %}{% block title %}{{ a.account_id }} - trialcast{% endblock %}
{% block body %}
<p><a href="/ui" id="back">&larr; All accounts</a></p>
<h1 id="account-id">{{ a.account_id }}</h1>
<div class="card">
 <p><strong id="probability">{{ '%.0f%%'|format(a.p_convert * 100) }}</strong> likely to convert
  &middot; deal value {{ money(a.deal_value) }} &middot; expected value <strong>{{ money(a.expected_value) }}</strong>
  &middot; {% if a.pql %}<span class="badge pql" id="pql">PQL</span>{% else %}<span class="badge nopql" id="pql">not PQL</span>{% endif %}</p>
 <p id="trial-dates">{% if a.trial_start %}Trial {{ day(a.trial_start) }} to {{ day(a.trial_end) }}
  {% if a.lifecycle == 'deciding' %}&middot; <span class="badge deciding" id="state">deciding</span> until {{ day(window_end(a)) }} (conversion window)
  {% else %}&middot; <span id="state">{{ days_left(a.trial_days_left) }} left</span>{% endif %}{% endif %}</p>
 <p>Persona: <strong id="persona">{{ a.persona }}</strong>
  <span id="persona-chance" class="muted">&middot; stated chance {{ '%.0f%%'|format(stated * 100) }}{% if observed %},
  observed {{ '%.0f%%'|format(observed.observed * 100) }} ({{ '%.0f'|format(observed.low * 100) }}-{{ '%.0f%%'|format(observed.high * 100) }}, {{ '%d'|format(observed.trials) }} trials) in the model's training window{% endif %}</span></p>
 <p id="playbook">Playbook: {{ a.playbook }}</p>
 <p class="muted">Model {{ e.model_name }} v{{ e.model_version }}, scored {{ a.as_of }}</p>
</div>
{% if a.checklist %}<div class="card"><h2>Activation checklist</h2><ul id="checklist">
{% for c in a.checklist %}<li class="{{ 'pos' if c.done else 'muted' }}" data-done="{{ 'yes' if c.done else 'no' }}">{{ '&#10003;'|safe if c.done else '&#9675;'|safe }} {{ c.step }}{% if c.done and c.date %} <span class="muted">({{ c.date }})</span>{% elif not c.done %} <span class="muted">(not yet)</span>{% endif %}</li>{% endfor %}
</ul></div>{% endif %}
<div class="card" id="trend"><h2>Score over the trial</h2>{{ trend_svg }}</div>
<div class="card" id="waterfall"><h2>Why this score</h2>{{ svg }}</div>
<div class="card"><h2>Reasons</h2><ul id="reasons">
{% for f in e.positive %}<li class="pos" data-code="{{ f.code }}" title="{{ '%+.3f'|format(f.contribution) }} log-odds">&#9650; {{ f.text }} <span class="muted">({{ pts(f) }})</span></li>{% endfor %}
{% for f in e.negative %}<li class="neg" data-code="{{ f.code }}" title="{{ '%+.3f'|format(f.contribution) }} log-odds">&#9660; {{ f.text }} <span class="muted">({{ pts(f) }})</span></li>{% endfor %}
</ul><p class="muted" id="reasons-note">&#9650; raises and &#9660; lowers the {{ 'churn risk' if e.model == 'churn' else 'chance to convert' }}, in percentage points,
from the average account's {{ '%.0f%%'|format(base_p * 100) }} to this account's {{ '%.0f%%'|format(e.probability * 100) }}
(all other factors: {{ '%+.1f'|format(other_pts) }} pts); they add up exactly. Hover a reason for its log-odds.</p></div>
{% endblock %}"""

_LOGIN = """{% extends "base" %}{% block title %}Sign in - trialcast{% endblock %}
{% block body %}<h1>Sign in</h1>
{% if failed %}<p class="neg" id="login-error">{{ failed }}</p>{% endif %}
<form method="post" action="/ui/login" class="card"><label>API token
<input type="password" name="token" id="token" autocomplete="current-password" required></label>
<input type="hidden" name="csrf" value="{{ csrf }}"><input type="hidden" name="next" value="{{ next_path }}">
<button type="submit" id="sign-in">Sign in</button></form>
<p class="muted">Signing in starts a read-only session for these pages (not API access).</p>{% endblock %}"""

_BAD_REQUEST = """{% extends "base" %}{% block body %}<h1>That address is not valid</h1>
<p class="neg" id="bad-request">{{ message }}</p><p><a href="/ui">All accounts</a></p>
{% endblock %}"""

_NOT_FOUND = """{% extends "base" %}{% block body %}<h1>Not found</h1>
<p>No scored account {{ account_id }} in the latest batch scores.</p><p><a href="/ui">All accounts</a></p>
{% endblock %}"""

#: Rows per page of the account list.
PAGE_SIZE = 100
#: The sales view's one script: filters submit when changed (CSP forbids inline handlers).
APP_JS = (
    "document.querySelectorAll('select.autosubmit').forEach(function (s) {"
    " s.addEventListener('change', function () { s.form.submit(); }); });\n"
)


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
            "bad_request": _BAD_REQUEST,
        }
    ),
    autoescape=select_autoescape(default=True, default_for_string=True),
)
_ENV.globals["money"] = _money
# An id as one path segment: "/" encoded too (Jinja's urlencode keeps it, which made
# "acme/eu-1" a link to a deeper path).
_ENV.filters["path_segment"] = lambda value: quote(str(value), safe="")


def _days_left(value: Any) -> str:
    if value is None or pd.isna(value):
        return "-"
    days = max(0, math.ceil(float(value)))
    return f"{days} day" + ("" if days == 1 else "s")


def _state(row: Mapping[str, Any]) -> str:
    """``deciding`` for a trial past its end (waiting for the buyer), else ``trial``."""
    left = row.get("trial_days_left")
    if row.get("lifecycle") == "deciding" or (left is not None and not pd.isna(left) and left <= 0):
        return "deciding"
    return "trial"


_ENV.globals.update(day=_day, days_left=_days_left, state=_state)


def conversion_window_end(row: Mapping[str, Any], *, window_days: int) -> pd.Timestamp | None:
    """When a trial's conversion window closes (trial end + window), or None without an end."""
    end = row.get("trial_end")
    return (
        None if end is None or pd.isna(end) else pd.Timestamp(end) + pd.Timedelta(days=window_days)
    )


@dataclass(frozen=True)
class ListPage:
    """Which page of the ranked account list is shown: its filters and its place.

    Attributes:
        persona: only this lead type (``None``: all).
        pql: only product-qualified leads (``True``), only the others (``False``), or all.
        search: the account-id search text.
        number: this page's number (from 1) ...
        pages: ... of this many.
        first_rank: the rank of the page's first row.
        matched: accounts matching the filters (``None``: the rows shown).
    """

    persona: str | None = None
    pql: bool | None = None
    search: str = ""
    number: int = 1
    pages: int = 1
    first_rank: int = 1
    matched: int | None = None


def render_list(
    rows: list[dict[Any, Any]],
    *,
    total: int,
    as_of: Any,
    company: str,
    page: ListPage = ListPage(),
    window_days: int = 30,
    persona_rates: Mapping[str, Mapping[str, float]] | None = None,
) -> str:
    """The ranked account list page (one page of it), with search, filters and paging,
    and each lead type's observed chance beside the seed's stated one."""
    query = {
        "persona": page.persona or "",
        "pql": "" if page.pql is None else ("yes" if page.pql else "no"),
        "q": page.search,
    }

    def page_url(number: int) -> str:
        kept = {k: v for k, v in query.items() if v}
        return "/ui?" + urlencode({**kept, "page": number})

    return _ENV.get_template("list").render(
        rows=rows,
        total=total,
        matched=len(rows) if page.matched is None else page.matched,
        page=page.number,
        pages=page.pages,
        first_rank=page.first_rank,
        persona=page.persona,
        pql=page.pql,
        search=page.search,
        as_of=as_of,
        scored=as_of is not None,
        personas=list(PERSONAS),
        subtitle=company,
        page_url=page_url,
        window_end=partial(conversion_window_end, window_days=window_days),
        rates=dict(persona_rates or {}),
        lead_types=lead_type_rows(persona_rates or {}),
    )


def lead_type_rows(rates: Mapping[str, Mapping[str, float]]) -> list[dict[str, Any]]:
    """One row per lead type: stated chance, observed rate and interval, and a note
    where the company's data contradicts the playbook (empty without observed rates)."""
    if not rates:
        return []
    seen = [r for r in rates.values() if r.get("trials", 0) > 0]
    trials = sum(r["trials"] for r in seen)
    base = sum(r["observed"] * r["trials"] for r in seen) / trials if trials else float("nan")
    rows = []
    for name, persona in PERSONAS.items():
        r = rates.get(name)
        n = int(r["trials"]) if r else 0
        rows.append(
            {
                "name": name,
                "stated": persona.stated_chance,
                "playbook": persona.playbook,
                "trials": n,
                "observed": r["observed"] if r else float("nan"),
                "low": r["low"] if r else float("nan"),
                "high": r["high"] if r else float("nan"),
                "note": observed_rate_note(
                    name, r["observed"], r["low"], r["high"], persona.stated_chance, base
                )
                if r and n
                else "",
            }
        )
    return rows


def render_account(
    account: dict[str, Any],
    *,
    company: str,
    trend: pd.DataFrame | None = None,
    window_days: int = 30,
    persona_rates: Mapping[str, Mapping[str, float]] | None = None,
) -> str:
    """One account's page: dates, score, persona with its stated and observed chance,
    playbook, trend, waterfall and reasons."""
    explanation = account["explanations"][0]
    persona = PERSONAS.get(str(account.get("persona")))
    points, other = probability_points(explanation)

    def pts(factor: Mapping[str, Any]) -> str:
        return f"{points.get(factor['code'], 0.0):+.1f} pts"

    return _ENV.get_template("account").render(
        a=account,
        e=explanation,
        svg=Markup(render_waterfall(explanation)),
        trend_svg=Markup(render_trend(trend)),
        pts=pts,
        other_pts=other,
        base_p=sigmoid(float(explanation["base_value"])),
        window_end=partial(conversion_window_end, window_days=window_days),
        subtitle=company,
        stated=persona.stated_chance if persona is not None else float("nan"),
        observed=(persona_rates or {}).get(str(account.get("persona"))),
    )


def render_login(
    *, failed: str | bool | None = None, company: str = "", csrf: str = "", next_path: str = "/ui"
) -> str:
    """The sign-in form, with its CSRF token and the page to return to."""
    message = "That token is not valid." if failed is True else (failed or None)
    return _ENV.get_template("login").render(
        failed=message, subtitle=company, csrf=csrf, next_path=next_path
    )


def render_not_found(account_id: str, *, company: str = "") -> str:
    """The page for an account that is not in the latest scores."""
    return _ENV.get_template("not_found").render(account_id=account_id, subtitle=company)


def render_bad_request(message: str, *, company: str = "") -> str:
    """The page for a sales-view address with a value it cannot take (e.g. ``?page=x``)."""
    return _ENV.get_template("bad_request").render(message=message, subtitle=company)
