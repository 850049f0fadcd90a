"""The seven trial lead types (DOMAIN.md, seed 003), their playbooks, and the PQL flag.

Each account gets the type whose activation / engagement / communication profile
fits it best. The stated chances are the heuristic baseline a learned model must
beat on calibration and ranking; the playbook line is what sales read next to the
score.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.config import CompanyConfig


@dataclass(frozen=True)
class Persona:
    """A trial lead type: its name, the seed's stated chance and the playbook line."""

    name: str
    stated_chance: float
    activation: str
    engagement: str
    communication: str
    playbook: str


PERSONAS: dict[str, Persona] = {
    p.name: p
    for p in [
        Persona(
            "Golden Leads",
            0.90,
            "high",
            "high",
            "active",
            "Enjoy the ride: help them succeed and show them the less obvious features.",
        ),
        Persona(
            "Silent Successes",
            0.75,
            "high",
            "high",
            "low/none",
            "Don't mistake silence for disinterest: stay available and watch their usage.",
        ),
        Persona(
            "Contrary Converters",
            0.60,
            "medium",
            "medium",
            "active, negative",
            "Support them through the grumpiness: listen, make them feel heard, fix what they hit.",
        ),
        Persona(
            "Positive Procrastinators",
            0.30,
            "low",
            "low",
            "active, positive",
            "Talk is cheap: agree a concrete activation plan and hold them to it.",
        ),
        Persona(
            "Fizzlers",
            0.10,
            "high early",
            "low (fades)",
            "low/none",
            "Keep them on marketing lists; they won't close in this trial, timing may change.",
        ),
        Persona(
            "Incompatible Ignoramus",
            0.05,
            "low",
            "low",
            "active",
            "Smile and move on: be gracious but don't spend sales time here.",
        ),
        Persona(
            "Heartbreakers",
            0.05,
            "low",
            "low",
            "low/none",
            "Let go: at most map the account to find the right buyer, briefly.",
        ),
    ]
}

# Level thresholds (documented defaults; the persona is a baseline, not the model).
HIGH_ACTIVATION = 0.6  # activation_rate_all
LOW_ACTIVATION = 0.4
HIGH_SHARE = 0.75  # share of trial days with activity
HIGH_DEPTH = 5.0  # events per active day
LOW_SHARE = 0.55
LOW_DEPTH = 4.0
ACTIVE_COMMUNICATION = 4  # inbound messages
NEGATIVE_TONE = -0.35  # mean tone of inbound messages
POSITIVE_TONE = 0.3
FADING_TREND = -0.5  # log ratio of recent to earlier daily event rate
FIZZLER_MIN_ACTIVATION = 0.3  # "high early": they did activate before fading


def _col(features: pd.DataFrame, name: str, default: float) -> np.ndarray:
    if name not in features.columns:
        return np.full(len(features), default)
    return pd.to_numeric(features[name], errors="coerce").fillna(default).to_numpy(dtype=float)


def assign_personas(features: pd.DataFrame) -> pd.Series:
    """The trial lead type of each feature row (a ``category`` Series, same index).

    Activation level comes from ``activation_rate_all``; engagement from the share
    of active days, events per active day and the trend (fading); communication
    from inbound messages and their mean tone. The first matching rule wins.
    """
    names = assign_persona_names({c: _col(features, c, 0.0) for c in PERSONA_INPUTS})
    return pd.Series(
        pd.Categorical(names, categories=list(PERSONAS)), index=features.index, name="persona"
    )


#: The feature columns the persona rules read (missing values count as 0).
PERSONA_INPUTS = (
    "activation_rate_all",
    "engagement_active_day_share_all",
    "engagement_events_per_active_day_all",
    "engagement_trend_7d",
    "comm_inbound_all",
    "comm_sentiment_mean_all",
)


def assign_persona_names(columns: dict[str, np.ndarray]) -> np.ndarray:
    """``assign_personas`` on plain arrays (the rules themselves; no pandas, for the service).

    Args:
        columns: each of ``PERSONA_INPUTS`` as a float array, missing values as 0.
    """
    act = columns["activation_rate_all"]
    share = columns["engagement_active_day_share_all"]
    depth = columns["engagement_events_per_active_day_all"]
    trend = columns["engagement_trend_7d"]
    inbound = columns["comm_inbound_all"]
    tone = columns["comm_sentiment_mean_all"]

    act_high, act_low = act >= HIGH_ACTIVATION, act < LOW_ACTIVATION
    fading = trend <= FADING_TREND
    eng_high = (share >= HIGH_SHARE) & (depth >= HIGH_DEPTH) & ~fading
    eng_low = ((share < LOW_SHARE) & (depth < LOW_DEPTH)) | fading
    talks = inbound >= ACTIVE_COMMUNICATION
    negative, positive = tone <= NEGATIVE_TONE, tone >= POSITIVE_TONE

    rules = [
        (talks & negative & ~(act_low & eng_low), "Contrary Converters"),
        (act_high & eng_high & talks, "Golden Leads"),
        (act_high & eng_high, "Silent Successes"),
        (~(act < FIZZLER_MIN_ACTIVATION) & fading & ~talks, "Fizzlers"),
        (talks & positive & ~eng_high, "Positive Procrastinators"),
        (talks & (act_low | eng_low), "Incompatible Ignoramus"),
        (~talks & (act_low | eng_low), "Heartbreakers"),
        # Middling activation and engagement: the talkers look like Golden Leads in
        # the making, the quiet ones like Silent Successes.
        (talks, "Golden Leads"),
    ]
    return np.select([c for c, _ in rules], [n for _, n in rules], default="Silent Successes")


def persona_chance(personas: pd.Series) -> pd.Series:
    """The seed's stated conversion chance of each row's persona (the heuristic baseline)."""
    chances = {name: p.stated_chance for name, p in PERSONAS.items()}
    return personas.astype(str).map(chances).astype(float).rename("persona_chance")


def persona_playbook(personas: pd.Series) -> pd.Series:
    """The playbook line of each row's persona."""
    lines = {name: p.playbook for name, p in PERSONAS.items()}
    return personas.astype(str).map(lines).rename("playbook")


_OPS = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
    "==": operator.eq,
    "!=": operator.ne,
}


def compute_pql(features: pd.DataFrame, config: CompanyConfig) -> pd.Series:
    """Product-qualified lead flag: every configured PQL condition holds (False if none).

    Raises:
        ConfigError: a condition names a feature that is not built (with "did you mean").
    """
    from features.config import ConfigError
    from features.config_check import check_pql_features

    conditions = config.pql.conditions
    problems = check_pql_features(config, features.columns)
    if problems:
        raise ConfigError("\n".join(problems))
    columns = {c.feature: features[c.feature].to_numpy() for c in conditions}
    flag = compute_pql_values(columns, config, len(features))
    return pd.Series(flag, index=features.index, name="pql")


def compute_pql_values(columns: dict[str, np.ndarray], config: CompanyConfig, n: int) -> np.ndarray:
    """``compute_pql`` on plain arrays (one per condition feature; no pandas, for the service).

    Numeric conditions compare the values as floats (missing is NaN: never true,
    except for ``!=``); text conditions compare ``str(value)``.
    """
    if not config.pql.conditions:  # an empty rule means no PQLs (see pql_rule_note)
        return np.zeros(n, dtype=bool)
    flag = np.ones(n, dtype=bool)
    for cond in config.pql.conditions:
        raw = columns[cond.feature]
        if isinstance(cond.value, str):
            values = np.array([str(v) for v in raw], dtype=object)
        else:
            values = np.asarray(pd.to_numeric(raw, errors="coerce"), dtype=np.float64)
        flag &= np.asarray(_OPS[cond.op](values, cond.value), dtype=bool)
    return flag
