"""The config checked against the data: every event name and PQL feature must exist.

A misspelled milestone event silently yields zero completions and a wrong PQL
feature used to die with a ``KeyError`` deep in the job. Here every name the
config uses is compared with the data's event vocabulary and the built feature
list before a long job starts; an unknown one is an error naming the closest
matches ("did you mean ...").
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

import numpy as np
import pandas as pd

from features.config import CompanyConfig


def did_you_mean(name: str, choices: Iterable[str], n: int = 3) -> str:
    """`` (did you mean 'a', 'b'?)`` with the closest of ``choices``, or ``''``."""
    options = [str(c) for c in choices]
    close = difflib.get_close_matches(name, options, n=n, cutoff=0.5)
    if not close:
        lowered = {o.lower(): o for o in options}
        close = [
            lowered[c]
            for c in difflib.get_close_matches(name.lower(), list(lowered), n=n, cutoff=0.5)
        ]
    return f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""


def config_event_names(config: CompanyConfig) -> list[tuple[str, str]]:
    """``(where, event)`` for every event name the config uses."""
    out: list[tuple[str, str]] = []
    for i, step in enumerate(config.activation.milestones):
        out += [(f"activation.milestones[{i}] ({step.name!r}).events", e) for e in step.events]
    out += [("engagement.core_events", e) for e in config.engagement.core_events]
    out += [("engagement.invite_events", e) for e in config.engagement.invite_events]
    out += [("leakage.exclude_events", e) for e in config.leakage.exclude_events]
    out += [("leakage.allow_events", e) for e in config.leakage.allow_events]
    return out


def check_event_names(config: CompanyConfig, vocabulary: Iterable[str]) -> list[str]:
    """One error per event name the config uses that never occurs in the data."""
    vocab = sorted({str(v) for v in vocabulary})
    known = set(vocab)
    return [
        f"{where}: event {name!r} does not occur in the events table{did_you_mean(name, vocab)}"
        for where, name in config_event_names(config)
        if name not in known
    ]


def check_pql_features(config: CompanyConfig, features: Iterable[str]) -> list[str]:
    """One error per PQL condition on a feature that is not built."""
    built = [str(f) for f in features]
    known = set(built)
    return [
        f"pql.conditions[{i}].feature: {c.feature!r} is not a built feature"
        f"{did_you_mean(c.feature, built)}; list them with `trialcast features -c CONFIG --list`"
        for i, c in enumerate(config.pql.conditions)
        if c.feature not in known
    ]


def pql_rule_note(config: CompanyConfig) -> str:
    """What the PQL rule means, in words (an empty rule means no PQLs)."""
    if not config.pql.conditions:
        return "PQL rule is empty: no account is flagged as a PQL (add [[pql.conditions]])"
    return "PQL rule: " + " and ".join(
        f"{c.feature} {c.op} {c.value}" for c in config.pql.conditions
    )


def built_feature_names(builder: object) -> list[str]:
    """Every column the feature job builds for this config and data (on one account)."""
    from features.build import FeatureBuilder

    assert isinstance(builder, FeatureBuilder)
    if len(builder.index.account_ids) == 0:
        return []
    frame = builder.build(np.array([0]), np.array([builder.index.trial_end[0]]))
    return [c for c in frame.columns if c != "as_of"]


def check_against_data(config: CompanyConfig, builder: object) -> list[str]:
    """Every error of the config against the data (events, then PQL features)."""
    from features.build import FeatureBuilder

    assert isinstance(builder, FeatureBuilder)
    events = builder.tables.events["event"].astype(str)
    excluded = set(builder.spec.excluded_events)
    vocabulary = pd.unique(events).tolist() + sorted(excluded)
    return check_event_names(config, vocabulary) + check_pql_features(
        config, built_feature_names(builder)
    )
