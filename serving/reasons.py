"""Plain-English reasons: one short sentence per feature, for sales to read.

A score's explanation is a list of features with their contributions; a feature
name such as ``activation_steps_done_all`` means nothing to a sales rep, so each
feature family gets a sentence template ("Completed 4 of 6 activation steps").
Company vocabulary comes from the config (milestone names, core events) and the
model's ``FeatureSpec`` (event names behind ``count_<slug>_all``); anything not
covered falls back to a generic "<what>: <value>" line, so every factor has text.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from features.activation import milestone_slugs
from features.config import CompanyConfig
from features.families import family_of
from features.spec import FeatureSpec


@dataclass(frozen=True)
class ReasonContext:
    """What the sentences need to know about the company.

    Attributes:
        milestones: milestone column slug -> milestone name ("Created a pipeline").
        events: event column slug -> event name ("Pipeline Run Succeeded").
        n_milestones: length of the activation checklist.
        n_core: number of core ("golden") feature events.
        table_columns: feature-table column -> (label, unit) from the config, as
            frozen in the model's spec (``features.feature_table``).
    """

    milestones: dict[str, str] = field(default_factory=dict)
    events: dict[str, str] = field(default_factory=dict)
    n_milestones: int = 0
    n_core: int = 0
    table_columns: dict[str, tuple[str, str]] = field(default_factory=dict)


def build_reason_context(config: CompanyConfig, spec: FeatureSpec | None) -> ReasonContext:
    """The ``ReasonContext`` of a company config and a model's feature spec."""
    milestones = config.activation.milestones
    names = dict(zip(milestone_slugs(config.activation), [m.name for m in milestones], strict=True))
    events = dict(zip(spec.event_slugs, spec.top_event_types, strict=True)) if spec else {}
    return ReasonContext(
        milestones=names,
        events=events,
        n_milestones=len(milestones),
        n_core=len(config.engagement.core_events),
        table_columns={
            name: (str(meta["label"]), str(meta.get("unit", "")))
            for name, meta in (spec.table_columns.items() if spec else ())
        },
    )


def _num(value: Any) -> float | None:
    if value is None or isinstance(value, str):
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(out) else out


def _n(value: float) -> str:
    """A count or amount as text: whole numbers without decimals, thousands separated."""
    if abs(value - round(value)) < 1e-9:
        return f"{round(value):,}"
    return f"{value:,.1f}"


def _plural(value: float, word: str, plural: str | None = None) -> str:
    return f"{_n(value)} {word if abs(value - 1) < 1e-9 else (plural or word + 's')}"


def _humanise(name: str) -> str:
    text = re.sub(r"_(all|\d+d)$", "", name).replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def _window(name: str) -> str:
    match = re.search(r"_(\d+)d$", name)
    return f" in the last {match.group(1)} days" if match else ""


Template = Callable[[str, float | None, Mapping[str, Any], ReasonContext], str | None]


def _timing(name: str, v: float | None, _: Mapping[str, Any], __: ReasonContext) -> str | None:
    if v is None:
        return "Not a paying customer" if name == "customer_days_paying" else None
    if name == "trial_days_elapsed":
        return f"{_plural(math.floor(v), 'day')} into the trial"
    if name == "trial_days_remaining":
        if v >= 0:
            return f"{_plural(math.ceil(v), 'day')} of trial left"
        return f"Trial ended {_plural(math.floor(-v), 'day')} ago"
    if name == "trial_length_days":
        return f"{_n(round(v))}-day trial"
    if name == "trial_weekend_days_elapsed":
        return f"{_plural(round(v, 1), 'weekend day')} in the trial so far (UTC)"
    if name == "trial_weekend_share_elapsed":
        return f"{v:.0%} of the trial so far fell on a weekend (UTC)"
    if name == "trial_weekend_days_2d":
        return f"{_plural(round(v, 1), 'weekend day')} in the last 2 days (UTC)"
    if name == "customer_days_paying":
        return f"Paying for {_plural(math.floor(v), 'day')}"
    if name == "customer_mrr":
        return f"Pays {_n(round(v))} a month"
    return None


def _activation(name: str, v: float | None, f: Mapping[str, Any], ctx: ReasonContext) -> str | None:
    if name == "activation_steps_done_all" and v is not None:
        return f"Completed {_n(v)} of {ctx.n_milestones} activation steps"
    if name == "activation_rate_all" and v is not None:
        return f"Activation checklist {v:.0%} complete"
    if name == "activation_stage_all" and v is not None:
        if v < 1:
            return "No activation step done yet"
        names = list(ctx.milestones.values())
        step = names[int(v) - 1] if 0 < v <= len(names) else f"step {_n(v)}"
        return f"Furthest activation step: {step}"
    match = re.fullmatch(r"activation_(.+)_(done|days)", name)
    if not match:
        return None
    slug, what = match.groups()
    step = ctx.milestones.get(slug, _humanise(slug))
    if what == "done":
        return f"Done: {step}" if v else f"Not yet: {step}"
    if v is None:
        return f"Not yet: {step}"
    return f"{step} on day {math.floor(v) + 1}"


def _engagement(name: str, v: float | None, f: Mapping[str, Any], ctx: ReasonContext) -> str | None:
    w = _window(name)
    if name == "engagement_recency_days":
        never = (
            _num(f.get("engagement_events_all")) == 0
            or _num(f.get("engagement_active_days_all")) == 0
        )
        if v is None or never:
            return "Never active"
        return f"Last active {_plural(math.floor(v), 'day')} ago"
    if name == "engagement_recency_usual_days":
        never = _num(f.get("engagement_events_all")) == 0
        if v is None or never:
            return "Never active"
        return f"Quiet for {v:.1f} usual days of activity (weekends count for little)"
    if name.startswith("engagement_trend_"):
        if v is None:
            return f"Too new to tell the usage trend{w}"
        if v > 0.1:
            return f"Usage rising{w}"
        if v < -0.1:
            return f"Usage falling{w}"
        return f"Usage steady{w}"
    if v is None:
        return None
    if "_per_usual_day" in name:
        what = name.removeprefix("engagement_").split("_per_usual_day")[0]
        unit = {"events": "product events", "active_days": "active days"}.get(what, "core uses")
        return f"{v:.1f} {unit} per usual day{w} (weekday-adjusted)"
    if name.startswith("engagement_events_per_active_day"):
        return f"{v:.1f} events per active day"
    if name.startswith("engagement_events_"):
        return f"{_plural(v, 'product event')}{w}"
    if name.startswith("engagement_active_day_share"):
        return f"Active on {v:.0%} of trial days"
    if name.startswith("engagement_active_days_"):
        return f"{_plural(v, 'active day')}{w}"
    if name.startswith("engagement_distinct_event_types"):
        return f"Used {_plural(v, 'different feature')}"
    if name.startswith("engagement_core_features_used"):
        return f"Used {_n(v)} of {ctx.n_core} core features"
    if name.startswith("engagement_core_events"):
        return f"Used core features {_plural(v, 'time')}"
    if name.startswith("engagement_users_active_"):
        return f"{_plural(v, 'active user')}{w}"
    if name.startswith("engagement_users_invited"):
        return f"Invited {_plural(v, 'teammate')}"
    if name.startswith("engagement_stickiness_"):
        return f"Came back on {v:.0%} of days{w} (stickiness)"
    if name == "engagement_decayed_score":
        return f"Recent engagement score {v:.1f}"
    return None


def _counts(name: str, v: float | None, f: Mapping[str, Any], ctx: ReasonContext) -> str | None:
    match = re.fullmatch(r"count_(.+)_all", name)
    if not match:
        return None
    event = ctx.events.get(match.group(1), _humanise(match.group(1)))
    if not v:
        return f"Has not used {event} yet"
    return f"Used {event} {_plural(v, 'time')}"


def _communication(
    name: str, v: float | None, f: Mapping[str, Any], ctx: ReasonContext
) -> str | None:
    w = _window(name)
    if name == "comm_reply_rate_all":
        outreach = _num(f.get("comm_outbound_all"))
        if v is None or not outreach:
            return "No outreach to reply to yet"
        return f"Replied to {_n(round(v * outreach))} of {_plural(outreach, 'outreach message')}"
    if name == "comm_reply_latency_median_hours":
        return (
            "No replies to outreach" if v is None else f"Replies within {_n(round(v))} h (median)"
        )
    if name.startswith("comm_sentiment_mean"):
        if v is None:
            return "No messages to read the tone of"
        tone = "positive" if v >= 0.3 else "negative" if v <= -0.3 else "neutral"
        return f"Tone of their messages: {tone} ({v:+.2f})"
    if name.startswith("comm_sentiment_min"):
        if v is None:
            return "No messages to read the tone of"
        return f"Most negative message tone {v:+.2f}"
    if name.startswith("comm_negative_share"):
        return "No messages with a tone" if v is None else f"{v:.0%} of their messages negative"
    if v is None:
        return None
    if name.startswith("comm_inbound_"):
        return f"Sent {_plural(v, 'message')} to the team{w}"
    if name.startswith("comm_outbound_"):
        return f"Received {_plural(v, 'outreach message')}{w}"
    if name.startswith("comm_tickets_"):
        return f"Opened {_plural(v, 'support ticket')}"
    if name.startswith("comm_meetings_"):
        return f"{_plural(v, 'meeting or call', 'meetings or calls')}"
    return None


def _firmographic(
    name: str, v: float | None, f: Mapping[str, Any], ctx: ReasonContext
) -> str | None:
    if not name.startswith("firmo_"):
        return None
    label = _humanise(name.removeprefix("firmo_"))
    raw = f.get(name)
    if raw is None or (isinstance(raw, float) and math.isnan(raw)):
        return f"{label}: unknown"
    if name == "firmo_company_size" and v is not None:
        return f"Company of {_plural(v, 'employee')}"
    return f"{label}: {raw if isinstance(raw, str) else _n(float(raw))}"


#: Sentence templates of the built-in families (``features.families``), by family
#: name; a family that declares its own ``describe`` uses that instead.
_TEMPLATES: dict[str, Template] = {
    "timing": _timing,
    "customer": _timing,
    "activation": _activation,
    "engagement": _engagement,
    "count": _counts,
    "communication": _communication,
    "firmographics": _firmographic,
}


def describe_feature(name: str, features: Mapping[str, Any], context: ReasonContext) -> str:
    """One plain-English sentence for feature ``name`` of an account.

    Args:
        name: the feature (factor code), e.g. ``engagement_active_days_all``.
        features: the account's feature values (name -> value; missing may be absent).
        context: company vocabulary (``build_reason_context``).

    Returns:
        A sentence such as "12 active days"; a generic "<What>: <value>" line for
        features without a template.
    """
    raw = features.get(name)
    value = _num(raw)
    family = family_of(name)
    if family is not None:
        template = family.describe or _TEMPLATES.get(family.name)
        text = template(name, value, features, context) if template else None
        if text:
            return text
    if raw is None or (isinstance(raw, float) and math.isnan(raw)):
        return f"{_humanise(name)}: none"
    shown = raw if isinstance(raw, str) else _n(float(raw)) if value is not None else str(raw)
    return f"{_humanise(name)}: {shown}"
