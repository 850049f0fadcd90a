"""The seven trial lead types (DOMAIN.md, seed 003), their playbooks, and the PQL flag.

Each account gets the type whose activation / engagement / communication profile
fits it best. The stated chances are the heuristic baseline a learned model must
beat on calibration and ranking; the playbook line is what sales read next to the
score.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace

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

#: The feature columns the persona rules read (missing values count as 0).
PERSONA_INPUTS = (
    "activation_rate_all",
    "engagement_active_day_share_all",
    "engagement_events_per_active_day_all",
    "engagement_trend_7d",
    "engagement_events_7d",
    "trial_days_elapsed",
    "comm_inbound_all",
    "comm_sentiment_mean_all",
)


@dataclass(frozen=True)
class PersonaLevels:
    """Where "high", "low", "active" and "fading" start, for one company.

    The defaults are absolute thresholds tuned on the demo company; ``fit_persona_levels``
    replaces them with the company's own quantiles (``LEVEL_QUANTILES``) so the same
    words mean the same share of trials everywhere, and every level is a ratio or a
    quantile of a count: scaling every account's activity leaves every assignment as
    it was. Levels travel with the model (``FeatureSpec.persona_levels``) and can be
    pinned in the config (``[personas.levels]``).

    Attributes:
        activation_high, activation_low: ``activation_rate_all`` at or above / below.
        share_high, share_low: share of trial days with activity.
        depth_high, depth_low: events per active day.
        talk_min: inbound messages that make communication "active" (at least 1).
        negative_tone, positive_tone: mean tone of inbound messages (absolute: a
            sentiment score has its own fixed scale).
        fading_log_ratio: log(recent daily event rate / the rate in the window
            before): at or below it, activity is fading.
        fizzler_min_activation: "high early": Fizzlers activated at least this much.
        source: ``defaults``, ``quantiles`` or ``config`` (any level pinned there).
    """

    activation_high: float = 0.6
    activation_low: float = 0.4
    share_high: float = 0.75
    share_low: float = 0.55
    depth_high: float = 5.0
    depth_low: float = 4.0
    talk_min: float = 4.0
    negative_tone: float = -0.35
    positive_tone: float = 0.3
    fading_log_ratio: float = -0.7
    fizzler_min_activation: float = 0.3
    source: str = "defaults"

    def to_dict(self) -> dict[str, float | str]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, float | str] | None) -> PersonaLevels:
        """Levels from ``to_dict`` output (unknown keys ignored; ``{}`` -> defaults)."""
        if not data:
            return cls()
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})  # type: ignore[arg-type]


#: Quantile of the company's finished trials at which each level sits. Chosen so
#: that on the demo company the levels land where the seed's absolute thresholds
#: were (e.g. 57% of demo trials are below activation 0.6).
LEVEL_QUANTILES: dict[str, tuple[str, float]] = {
    "activation_high": ("activation_rate_all", 0.57),
    "activation_low": ("activation_rate_all", 0.43),
    "share_high": ("engagement_active_day_share_all", 0.70),
    "share_low": ("engagement_active_day_share_all", 0.50),
    "depth_high": ("engagement_events_per_active_day_all", 0.75),
    "depth_low": ("engagement_events_per_active_day_all", 0.70),
    "talk_min": ("comm_inbound_all", 0.50),
    "fading_log_ratio": ("fading_log_ratio", 0.25),
    "fizzler_min_activation": ("activation_rate_all", 0.30),
}

#: Fading is also capped: whatever the quantile, activity must at least halve.
MAX_FADING_LOG_RATIO = float(np.log(0.5))


def _col(features: pd.DataFrame, name: str, default: float) -> np.ndarray:
    if name not in features.columns:
        return np.full(len(features), default)
    return pd.to_numeric(features[name], errors="coerce").fillna(default).to_numpy(dtype=float)


def persona_columns(features: pd.DataFrame) -> dict[str, np.ndarray]:
    """The ``PERSONA_INPUTS`` of a feature frame as float arrays (missing -> 0)."""
    return {c: _col(features, c, 0.0) for c in PERSONA_INPUTS}


def fading_log_ratio(columns: Mapping[str, np.ndarray]) -> np.ndarray:
    """log(recent daily event rate / the rate in the window before), scale-free.

    ``engagement_trend_7d`` is ``log1p(recent) - log1p(before)``, which changes when
    every count is multiplied; the earlier rate is recovered from it and the recent
    count, and the plain log ratio is returned (rounded to 9 decimals so that equal
    ratios compare equal at any scale). NaN when there is no earlier window; -inf
    when activity stopped; +inf when it started.
    """
    elapsed = columns["trial_days_elapsed"]
    trend = columns["engagement_trend_7d"]
    recent = columns["engagement_events_7d"] / np.clip(elapsed, 1.0, 7.0)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        before = np.expm1(np.log1p(recent) - trend)
        before = np.where(np.abs(before) < 1e-9 * np.maximum(recent, 1.0), 0.0, before)
        ratio = np.log(recent) - np.log(before)
    ratio = np.where((recent == 0) & (before == 0), 0.0, ratio)
    ratio = np.where(elapsed - 7.0 >= 1.0, ratio, np.nan)
    return np.round(ratio, 9)


def fit_persona_levels(
    features: pd.DataFrame, overrides: Mapping[str, float] | None = None
) -> PersonaLevels:
    """The company's own levels: quantiles (``LEVEL_QUANTILES``) of ``features``.

    Args:
        features: one row per finished trial of the training window, as the trial
            looked at its end (the account view's non-running trials, or each
            account's last training snapshot).
        overrides: levels pinned in the config; they win over the quantiles.

    Quantiles use ``method="lower"`` (an observed value), so multiplying a count
    column by any factor multiplies its level by the same factor.
    """
    columns = persona_columns(features)
    columns["fading_log_ratio"] = fading_log_ratio(columns)
    if len(features) == 0:
        return replace(PersonaLevels(), **dict(overrides or {}), source="defaults")
    values: dict[str, float] = {}
    for level, (column, q) in LEVEL_QUANTILES.items():
        data = columns[column]
        data = data[np.isfinite(data)] if column == "fading_log_ratio" else data
        values[level] = float(np.quantile(data, q, method="lower")) if len(data) else np.nan
        if level.endswith("_high") and len(data) and values[level] <= data.min():
            # "High" must leave someone out: with no spread (no checklist configured,
            # say) it starts above the lowest value, and nobody is high if all are equal.
            above = data[data > data.min()]
            values[level] = float(above.min()) if len(above) else np.inf
    values["talk_min"] = max(values["talk_min"], 1.0)
    fade = values["fading_log_ratio"]
    values["fading_log_ratio"] = (
        MAX_FADING_LOG_RATIO if np.isnan(fade) else min(fade, MAX_FADING_LOG_RATIO)
    )
    values = {k: (getattr(PersonaLevels, k) if np.isnan(v) else v) for k, v in values.items()}
    pinned = dict(overrides or {})
    return replace(
        PersonaLevels(), **{**values, **pinned}, source="config" if pinned else "quantiles"
    )


def assign_personas(features: pd.DataFrame, levels: PersonaLevels | None = None) -> pd.Series:
    """The trial lead type of each feature row (a ``category`` Series, same index).

    Activation level comes from ``activation_rate_all``; engagement from the share
    of active days, events per active day and fading; communication from inbound
    messages and their mean tone. The first matching rule wins. ``levels``
    default to the seed's absolute thresholds; pass the company's own
    (``fit_persona_levels``) whenever there is one.
    """
    names = assign_persona_names(persona_columns(features), levels)
    return pd.Series(
        pd.Categorical(names, categories=list(PERSONAS)), index=features.index, name="persona"
    )


def assign_persona_names(
    columns: Mapping[str, np.ndarray], levels: PersonaLevels | None = None
) -> np.ndarray:
    """``assign_personas`` on plain arrays (the rules themselves; no pandas, for the service).

    Args:
        columns: each of ``PERSONA_INPUTS`` as a float array, missing values as 0.
        levels: the company's levels (default: the seed's absolute thresholds).
    """
    lv = levels or PersonaLevels()
    act = columns["activation_rate_all"]
    share = columns["engagement_active_day_share_all"]
    depth = columns["engagement_events_per_active_day_all"]
    inbound = columns["comm_inbound_all"]
    tone = columns["comm_sentiment_mean_all"]

    act_high, act_low = act >= lv.activation_high, act < lv.activation_low
    fading = fading_log_ratio(columns) <= lv.fading_log_ratio  # NaN: not fading
    eng_high = (share >= lv.share_high) & (depth >= lv.depth_high) & ~fading
    eng_low = ((share < lv.share_low) & (depth < lv.depth_low)) | fading
    talks = inbound >= lv.talk_min
    negative, positive = tone <= lv.negative_tone, tone >= lv.positive_tone

    rules = [
        (talks & negative & ~(act_low & eng_low), "Contrary Converters"),
        (act_high & eng_high & talks, "Golden Leads"),
        (act_high & eng_high, "Silent Successes"),
        (~(act < lv.fizzler_min_activation) & fading & ~talks, "Fizzlers"),
        (talks & positive & ~eng_high, "Positive Procrastinators"),
        (talks & (act_low | eng_low), "Incompatible Ignoramus"),
        (~talks & (act_low | eng_low), "Heartbreakers"),
        # Middling activation and engagement: the talkers look like Golden Leads in
        # the making, the quiet ones like Silent Successes.
        (talks, "Golden Leads"),
    ]
    return np.select([c for c, _ in rules], [n for _, n in rules], default="Silent Successes")


#: Lead types whose playbook says not to spend sales time on them.
LET_GO = ("Fizzlers", "Incompatible Ignoramus", "Heartbreakers")
#: Lead types whose playbook treats them as likely wins.
LIKELY_WINS = ("Golden Leads", "Silent Successes")


def observed_rate_note(
    name: str, observed: float, low: float, high: float, stated: float, base: float
) -> str:
    """Where a lead type's observed conversion contradicts its playbook or stated chance.

    A "let go" type converting above the company average sends sales away from
    money; a "likely win" below it wastes their time; a stated chance outside the
    observed interval misleads anyone reading it. Empty when the data agrees.
    """
    if name in LET_GO and low > base:
        return (
            f"contradicts its playbook: converts above the company average ({base:.0%}); "
            "do not let these go"
        )
    if name in LIKELY_WINS and high < base:
        return f"contradicts its playbook: converts below the company average ({base:.0%})"
    if not low <= stated <= high:
        side = "above" if stated > high else "below"
        return f"the stated {stated:.0%} is {side} what this company sees"
    return ""


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
