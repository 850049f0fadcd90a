"""Leak detection before any feature is built: outcome events and post-purchase attributes.

A feature guard that looks at one column at a time misses a leak that spreads:
an outcome event logged with hindsight ("Subscription Activated" stamped at
signup for accounts that later paid) is caught as ``count_<event>_all`` but
leaks back through every aggregate (event totals, active days, distinct types).
The only safe cure is to remove such an event from the events table before any
feature sees it. This module

- flags event types that separate the conversion label almost perfectly during
  the trial, cluster right at ``converted_at``, are reached before their outcome
  by almost only accounts that then convert (wherever that falls in time), or are
  named like an outcome; the counts come from ``features.leak_stats`` (additive
  across partitions) and ``judge_events`` is the one judgement;
- merges them with the config's ``[leakage].exclude_events`` (minus
  ``allow_events``) into one exclusion list that the feature spec carries, so
  training, scoring, milestones and PQL rules all drop the same events;
- flags account columns whose *missingness* separates the label (a field filled
  after purchase), and columns declared ``known_at = "current"``, which never
  feed the models;
- flags ``mrr`` when the export rewrote it at churn (missing or zero for accounts
  that churned, set for those still paying): the churn model's ``customer_mrr``
  would read the answer, so the column is left out.

Detection uses only accounts whose label is known at the export time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from features.config import CompanyConfig, FirmographicsConfig
from features.leak_stats import EventLeakStats, event_leak_stats
from features.tables import Tables

#: Words that name an outcome rather than a product action.
OUTCOME_WORDS = (
    "paid",
    "payment",
    "converted",
    "conversion",
    "subscription",
    "subscribed",
    "subscribe",
    "upgrade",
    "upgraded",
    "purchase",
    "purchased",
    "invoice",
    "checkout",
    "won",
    "closed won",
)
_WORD_RE = re.compile(r"[a-z]+")


@dataclass(frozen=True)
class EventLeak:
    """One event type flagged as a probable outcome.

    Attributes:
        event: the event name in the company's vocabulary.
        reason: why, in words (which rule fired, with the numbers).
        share_converters: share of labelled converters with the event during the trial.
        share_others: share of labelled non-converters with it.
    """

    event: str
    reason: str
    share_converters: float
    share_others: float


@dataclass(frozen=True)
class AttributeLeak:
    """An account column that may not feed the models.

    Attributes:
        column: the account column.
        reason: declared ``known_at = "current"``, or its missingness separates the label.
        missing_auc: how well "is it filled?" alone separates converters (0.5 = not at all).
    """

    column: str
    reason: str
    missing_auc: float = float("nan")


@dataclass(frozen=True)
class LeakScan:
    """What leak detection found and what will be excluded.

    Attributes:
        events: flagged event types (detected; excluded unless allowed).
        attributes: account columns that will not feed the models.
        configured: ``[leakage].exclude_events`` from the config.
        excluded_events: the final list removed from every feature.
        labelled_accounts, converters: how many accounts the scan could judge.
    """

    events: list[EventLeak] = field(default_factory=list)
    attributes: list[AttributeLeak] = field(default_factory=list)
    configured: list[str] = field(default_factory=list)
    excluded_events: list[str] = field(default_factory=list)
    labelled_accounts: int = 0
    converters: int = 0

    @property
    def excluded_attributes(self) -> list[str]:
        """Account columns kept out of the features."""
        return [a.column for a in self.attributes]

    def message(self) -> str:
        """Loud lines naming every flagged event and attribute and what happens to it."""
        lines = []
        for leak in self.events:
            action = (
                "EXCLUDED from every feature"
                if leak.event in self.excluded_events
                else "kept (allow_events)"
            )
            lines.append(f"LEAK? event {leak.event!r}: {leak.reason}; {action}")
        for attr in self.attributes:
            lines.append(
                f"LEAK? account column {attr.column!r}: {attr.reason}; not used as a feature"
            )
        if self.events:
            proposal = ", ".join(f'"{e}"' for e in self.excluded_events)
            lines.append(
                f"Proposed config: [leakage] exclude_events = [{proposal}] "
                "(list an event in allow_events if it is truly known before the outcome)"
            )
        return "\n".join(lines)


def is_outcome_name(name: str) -> bool:
    """True when an event name reads like an outcome (paid, converted, subscription...)."""
    words = _WORD_RE.findall(str(name).lower())
    joined = " ".join(words)
    return any(w in words or (" " in w and w in joined) for w in OUTCOME_WORDS)


def scan_events(
    tables: Tables, config: CompanyConfig, *, export_time: pd.Timestamp | None = None
) -> tuple[list[EventLeak], int, int]:
    """Flag outcome-like event types; returns ``(leaks, labelled accounts, converters)``.

    ``event_leak_stats`` counts, ``judge_events`` decides (see there for the rules).
    """
    stats = event_leak_stats(tables, config, export_time=export_time)
    return judge_events(stats, config), stats.labelled, stats.converters


#: A converter share among the accounts reaching an event before their outcome at or
#: above this ("nearly every account that reaches it converts") marks an outcome.
REACH_CONVERT_SHARE = 0.95
#: ... when it covers at least this share of converters ...
MIN_CONVERTER_COVERAGE = 0.2
#: ... and at least this many accounts reached it (fewer is chance).
MIN_REACHED = 20


def judge_events(stats: EventLeakStats, config: CompanyConfig) -> list[EventLeak]:
    """The one leak judgement of event types, from (merged) statistics.

    Rules (thresholds in ``[leakage]`` and above):

    - *named like an outcome* (``is_outcome_name``);
    - *separates*: during the trial (before trial end and before conversion),
      present for at least ``min_share_converters`` of converters and at most
      ``max_share_others`` of the others;
    - *clustered at conversion*: at least ``cluster_share`` of a converter's
      events of that type lie within ``cluster_days`` of ``converted_at``, for
      most converters that have it, and it is rare before trials end for others;
    - *reached, then converted*: of the accounts that have it before their
      outcome (before paying, or before the label window closed), at least
      ``REACH_CONVERT_SHARE`` convert, wherever it falls in time (days before a
      payment weeks after the trial included), for at least
      ``MIN_CONVERTER_COVERAGE`` of converters and at most ``max_share_others``
      of the others.
    """
    rules = config.leakage
    leaks: dict[str, EventLeak] = {}
    for name in stats.names:
        if is_outcome_name(name):
            leaks[name] = EventLeak(name, "named like an outcome", float("nan"), float("nan"))
    n1, n0 = stats.converters, stats.others
    if n1 == 0 or n0 == 0:
        return list(leaks.values())
    order = np.argsort(np.asarray(stats.names, dtype=object), kind="mergesort")
    names = [stats.names[i] for i in order]
    trial_conv, trial_other = stats.trial_converters[order], stats.trial_others[order]
    share_conv, share_other = trial_conv / n1, trial_other / n0
    for i, name in enumerate(names):
        sc, so = float(share_conv[i]), float(share_other[i])
        if trial_conv[i] + trial_other[i] == 0:
            continue
        if sc >= rules.min_share_converters and so <= rules.max_share_others:
            leaks[name] = EventLeak(
                name,
                f"during the trial it is present for {sc:.0%} of converters and {so:.0%} of "
                "the others (it separates the label almost perfectly)",
                sc,
                so,
            )
    have, clustered = stats.cluster_converters[order], stats.clustered_converters[order]
    for i, name in enumerate(names):
        size = int(have[i])
        so = float(share_other[i])
        if size == 0 or name in leaks:
            continue
        mean = float(clustered[i]) / size
        if mean >= 0.8 and size / n1 >= MIN_CONVERTER_COVERAGE and so <= rules.max_share_others:
            leaks[name] = EventLeak(
                name,
                f"for {mean:.0%} of the {size} converters that have it, it "
                f"happens within {rules.cluster_days:g} day(s) of converted_at",
                float(share_conv[i]),
                so,
            )
    r1, r0 = stats.reach_converters[order], stats.reach_others[order]
    for i, name in enumerate(names):
        a, b = int(r1[i]), int(r0[i])
        if a + b < MIN_REACHED or name in leaks:
            continue
        rate = a / (a + b)
        if (
            rate >= REACH_CONVERT_SHARE
            and a / n1 >= MIN_CONVERTER_COVERAGE
            and b / n0 <= rules.max_share_others
        ):
            leaks[name] = EventLeak(
                name,
                f"{rate:.0%} of the {a + b} accounts that have it before their outcome convert "
                f"({a} of {n1} converters, {b} of {n0} others), wherever it falls in time: "
                "it marks the payment, not a step towards it",
                a / n1,
                b / n0,
            )
    return list(leaks.values())


#: Paying accounts needed on each side (churned / still paying) to judge ``mrr``.
MIN_MRR_ACCOUNTS = 20


def _attribute_leaks(
    tables: Tables, config: CompanyConfig, export_time: pd.Timestamp | None
) -> list[AttributeLeak]:
    """Account columns that may not feed the models: the one judgement of
    ``features.spec_stats.judge_attributes`` on this machine's counts (the Dask job
    judges the same counts merged from its partitions)."""
    from features.spec_stats import attribute_stats, judge_attributes

    now = pd.Timestamp(export_time) if export_time is not None else tables.export_time()
    return judge_attributes(attribute_stats(tables, config, now), config)


def scan_leaks(
    tables: Tables,
    config: CompanyConfig,
    *,
    export_time: pd.Timestamp | None = None,
    stats: EventLeakStats | None = None,
) -> LeakScan:
    """Event and attribute scan plus the final exclusion list (see module docstring).

    ``stats``: the events' statistics if already computed (``event_leak_stats``, or
    merged from partitions); computed from ``tables`` otherwise.
    """
    rules = config.leakage
    configured = list(rules.exclude_events)
    events: list[EventLeak] = []
    n_lab = n_conv = 0
    if rules.auto_exclude:
        if stats is None:
            stats = event_leak_stats(tables, config, export_time=export_time)
        events, n_lab, n_conv = judge_events(stats, config), stats.labelled, stats.converters
    allowed = set(rules.allow_events)
    excluded = list(
        dict.fromkeys([*configured, *(e.event for e in events if e.event not in allowed)])
    )
    return LeakScan(
        events=events,
        attributes=_attribute_leaks(tables, config, export_time)
        if rules.auto_exclude
        else [
            AttributeLeak(c, 'declared known_at = "current"')
            for c, k in config.firmographics.known_at.items()
            if k == "current"
        ],
        configured=configured,
        excluded_events=excluded,
        labelled_accounts=n_lab,
        converters=n_conv,
    )


def drop_events(tables: Tables, names: list[str] | tuple[str, ...]) -> Tables:
    """``tables`` without the events called any of ``names`` (every feature then ignores them)."""
    if not names:
        return tables
    ev = tables.events
    col = ev["event"]
    # A categorical column is matched on its categories, not 20M strings.
    keep = (
        ~(col if isinstance(col.dtype, pd.CategoricalDtype) else col.astype(str))
        .isin([str(n) for n in names])
        .to_numpy()
    )
    if keep.all():
        return tables
    kept = ev[keep].reset_index(drop=True)
    if isinstance(kept["event"].dtype, pd.CategoricalDtype):
        kept["event"] = kept["event"].cat.remove_unused_categories()
    return replace(tables, events=kept)


def excluded_events_for(config: CompanyConfig, spec_excluded: list[str] | None = None) -> list[str]:
    """The events every consumer (features, milestones, PQL rules) must ignore.

    ``spec_excluded`` is the list frozen in a fitted feature spec (detected plus
    configured); without a spec, the config's ``exclude_events``.
    """
    if spec_excluded is not None:
        return list(spec_excluded)
    return list(config.leakage.exclude_events)


def usable_firmographics(
    config: CompanyConfig, excluded_attributes: list[str] | tuple[str, ...]
) -> FirmographicsConfig:
    """The configured firmographics minus the columns that may not feed a model
    (``FeatureSpec.excluded_attributes``: declared ``known_at = "current"`` or
    whose missingness separates the label). Feature families call this."""
    firmo = config.firmographics
    drop = set(excluded_attributes)
    if not drop:
        return firmo
    return firmo.model_copy(
        update={
            "numeric": [c for c in firmo.numeric if c not in drop],
            "categorical": [c for c in firmo.categorical if c not in drop],
        }
    )
