"""A PQL rule proposed from the company's own history, when the config has none.

A product-qualified lead is a trial sales should call now. Without a rule in the
config there are no PQLs (an empty rule flags nobody); ``propose_pql_rule`` offers
one to paste: it tries conditions on built features (the discovered milestone
events' counts, active days, activation rate) alone and in pairs, on the trials as
they looked at a snapshot before conversions start (``reference_rows``), and keeps
the rule whose flagged trials convert most surely (highest lower bound of the
Wilson interval) among rules that flag a workable share of trials. Every rule
tried is a chance for luck, so a rule is kept only when that lower bound clears
the average after a Bonferroni correction over the rules tried (a no-signal
company otherwise gets its luckiest flag as a rule). The TOML carries its
conversion rate, 95% interval and share as comments.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import binomtest

from features.build import FeatureBuilder
from features.config import PqlCondition
from features.snapshots import build_trial_training_set
from features.spec import FeatureSpec
from training.milestones import MilestoneDiscovery
from training.persona_rates import reference_rows


@dataclass(frozen=True)
class PqlProposal:
    """A proposed PQL rule and its evidence.

    Attributes:
        conditions: all must hold (empty: nothing qualified).
        rate, low, high: conversion of the flagged trials, with a 95% interval.
        share: share of trials flagged.
        base_rate: conversion of all trials.
        snapshot: the training snapshot the rule was evaluated on.
        n_trials: trials evaluated.
        reason: why this rule, or why none, in words.
    """

    conditions: list[PqlCondition]
    rate: float
    low: float
    high: float
    share: float
    base_rate: float
    snapshot: str
    n_trials: int
    reason: str

    def toml(self) -> str:
        """``[[pql.conditions]]`` tables to paste (or a comment saying why there are none)."""
        lines = [f"# {self.reason}"]
        for cond in self.conditions:
            value = json.dumps(cond.value) if isinstance(cond.value, str) else f"{cond.value:g}"
            lines += [
                "[[pql.conditions]]",
                f"feature = {json.dumps(cond.feature)}",
                f"op = {json.dumps(cond.op)}",
                f"value = {value}",
                "",
            ]
        return "\n".join(lines)


def _candidates(
    trials: pd.DataFrame, spec: FeatureSpec | None, events: list[tuple[str, int]]
) -> list[PqlCondition]:
    out: list[PqlCondition] = []
    slugs = dict(zip(spec.top_event_types, spec.event_slugs, strict=True)) if spec else {}
    for event, min_count in events:
        column = f"count_{slugs[event]}_all" if event in slugs else None
        if column is not None and column in trials.columns:
            out.append(PqlCondition(feature=column, op=">=", value=float(min_count)))
    for column in ("engagement_active_days_all", "activation_rate_all"):
        if column not in trials.columns:
            continue
        values = pd.to_numeric(trials[column], errors="coerce").dropna()
        for q in (0.5, 0.75):
            level = float(np.quantile(values, q, method="lower")) if len(values) else 0.0
            if level > 0:
                out.append(PqlCondition(feature=column, op=">=", value=round(level, 3)))
    return out


def propose_pql_rule(
    trials: pd.DataFrame,
    *,
    spec: FeatureSpec | None,
    milestone_events: list[tuple[str, int]],
    min_share: float = 0.05,
    max_share: float = 0.5,
    confidence: float = 0.95,
) -> PqlProposal:
    """The best PQL rule of at most two conditions on ``trials`` (see the module docstring).

    Args:
        trials: one row per trial with its features and ``label`` (``reference_rows``).
        spec: the feature spec (maps event names to their count columns).
        milestone_events: ``(event, min_count)`` of the discovered milestones, best first.
        min_share, max_share: the share of trials a rule may flag.
        confidence: interval level.
    """
    labels = trials["label"].to_numpy(dtype=np.float64)
    n = len(trials)
    base = float(labels.mean()) if n else float("nan")
    snapshot = str(trials.attrs.get("snapshot", ""))
    conditions = _candidates(trials, spec, milestone_events)
    masks = {
        i: (pd.to_numeric(trials[c.feature], errors="coerce") >= float(c.value))
        .fillna(False)
        .to_numpy(dtype=bool)
        for i, c in enumerate(conditions)
    }
    best: tuple[float, tuple[int, ...], float, float, float, float] | None = None
    rules: list[tuple[int, ...]] = [(i,) for i in masks]
    rules += list(itertools.combinations(masks, 2))
    workable = []
    for rule in rules:
        mask = np.logical_and.reduce([masks[i] for i in rule])
        flagged = int(mask.sum())
        share = flagged / n if n else 0.0
        if min_share <= share <= max_share:
            workable.append((rule, flagged, int(labels[mask].sum()), share))
    corrected = 1.0 - (1.0 - confidence) / max(len(workable), 1)
    for rule, flagged, k, share in workable:
        sure = binomtest(k, flagged).proportion_ci(confidence_level=corrected, method="wilson")
        if sure.low <= base:
            continue
        if best is None or sure.low > best[0]:
            ci = binomtest(k, flagged).proportion_ci(confidence_level=confidence, method="wilson")
            best = (sure.low, rule, k / flagged, ci.low, ci.high, share)
    if best is None:
        return PqlProposal(
            conditions=[],
            rate=float("nan"),
            low=float("nan"),
            high=float("nan"),
            share=0.0,
            base_rate=base,
            snapshot=snapshot,
            n_trials=n,
            reason=(
                f"No PQL rule proposed: no condition on the milestones or activity flags "
                f"{min_share:.0%}-{max_share:.0%} of the {n:,} trials with a conversion rate "
                f"surely above the {base:.0%} average ({len(workable)} rules tried, each "
                f"judged at {corrected:.2%} confidence). No rule means no PQLs."
            ),
        )
    _, rule, rate, low, high, share = best
    chosen = [conditions[i] for i in rule]
    return PqlProposal(
        conditions=chosen,
        rate=rate,
        low=low,
        high=high,
        share=share,
        base_rate=base,
        snapshot=snapshot,
        n_trials=n,
        reason=(
            f"Proposed PQL rule: {share:.0%} of {n:,} trials qualify"
            f"{f' at snapshot {snapshot}' if snapshot else ''}; {rate:.0%} of them converted "
            f"(95% CI {low:.0%}-{high:.0%}) vs {base:.0%} of all trials."
        ),
    )


def propose_pql_for_company(
    builder: FeatureBuilder, discovery: MilestoneDiscovery, **kwargs: float
) -> PqlProposal:
    """``propose_pql_rule`` on a company's closed trials, using the discovered checklist
    (aha first) for the milestone conditions.

    Raises:
        ValueError: no labelled trial yet (from the training-set builder).
    """
    trials = reference_rows(build_trial_training_set(builder, export_time=discovery.data_as_of))
    steps = discovery.checklist_rows.iloc[::-1]  # the aha moment is last in the checklist
    events = [(str(r["event"]), int(r["min_count"])) for r in steps.to_dict("records")]
    return propose_pql_rule(trials, spec=builder.spec, milestone_events=events, **kwargs)
