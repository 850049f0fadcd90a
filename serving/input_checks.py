"""Input ranges per feature kind, and warnings for inputs the models have not seen.

Two kinds of problem, two answers:

- **impossible** values (a negative count, negative elapsed days, recency or
  activation days, a rate outside [0, 1], a tone outside [-1, 1], anything beyond
  ``MAX_ABS_VALUE``) cannot come from real data: the
  request is refused with a 400 naming the feature (``range_problem``);
- **unfamiliar** values are possible but the model has not seen them: a category
  level absent from training (scored as missing) or a number outside the range
  the booster was trained on (scored as the nearest edge, as trees do). These are
  scored, and each one is named in the response's ``warnings``
  (``TrainingRanges.warnings``).
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

#: No feature of ours is anywhere near this; beyond it a number is a mistake.
MAX_ABS_VALUE = 1e9
#: Deal values and MRR above this are refused (a sane cap for one account's money).
MAX_MONEY = 1e9

_KINDS: tuple[tuple[str, float, float, str], ...] = (
    (
        r"trial_days_elapsed|engagement_recency_(usual_)?days|activation_.+_days",
        0.0,
        MAX_ABS_VALUE,
        "a number of days since an earlier moment (never negative)",
    ),
    (r"activation_rate_all|activation_.+_done|comm_reply_rate_all", 0.0, 1.0, "a rate"),
    (r".*_share_.*|.*_share|engagement_stickiness_.+|comm_negative_share.*", 0.0, 1.0, "a rate"),
    (r"comm_sentiment_.+", -1.0, 1.0, "a tone"),
    (
        r"engagement_(events|active_days|users|core|distinct|decayed|events_per)_?.*"
        r"|count_.+|comm_(inbound|outbound|tickets|meetings).*"
        r"|activation_steps_done_all|activation_stage_all|trial_length_days|trial_weekend_days_.+"
        r"|customer_days_paying|customer_mrr",
        0.0,
        MAX_ABS_VALUE,
        "a count",
    ),
)
KINDS = tuple((re.compile(p), lo, hi, label) for p, lo, hi, label in _KINDS)


@functools.lru_cache(maxsize=4096)
def feature_range(name: str) -> tuple[float, float, str]:
    """The possible ``(low, high, kind)`` of feature ``name`` (any finite number if unknown)."""
    for pattern, lo, hi, label in KINDS:
        if pattern.fullmatch(name):
            return lo, hi, label
    return -MAX_ABS_VALUE, MAX_ABS_VALUE, "a number"


def range_problem(name: str, value: Any) -> str | None:
    """Why ``value`` is impossible for feature ``name``, or ``None`` if it is possible."""
    if value is None or isinstance(value, str | bool):
        return None
    x = float(value)
    if not math.isfinite(x):
        return f"feature {name!r} must be a finite number"
    lo, hi, label = feature_range(name)
    if not lo <= x <= hi:
        return f"feature {name!r} is {label}: {x:g} is outside [{lo:g}, {hi:g}]"
    return None


@dataclass(frozen=True)
class TrainingRanges:
    """What the served models saw in training: numeric ranges and category levels."""

    numeric: dict[str, tuple[float, float]] = field(default_factory=dict)
    levels: dict[str, frozenset[str]] = field(default_factory=dict)

    @classmethod
    def from_models(cls, models: Iterable[Any]) -> TrainingRanges:
        """Ranges from LightGBM's own record of each feature (``feature_infos``).

        Args:
            models: ``models.artifact.TrialcastModel`` objects (conversion, churn).
        """
        numeric: dict[str, tuple[float, float]] = {}
        levels: dict[str, frozenset[str]] = {}
        for model in models:
            infos = model.booster.dump_model(num_iteration=0).get("feature_infos", {})
            for name, info in infos.items():
                if name in model.categories:
                    levels[name] = levels.get(name, frozenset()) | frozenset(model.categories[name])
                elif "min_value" in info and "max_value" in info:
                    lo, hi = float(info["min_value"]), float(info["max_value"])
                    if name in numeric:
                        lo, hi = min(lo, numeric[name][0]), max(hi, numeric[name][1])
                    numeric[name] = (lo, hi)
        return cls(numeric=numeric, levels=levels)

    def warnings(self, features: Mapping[str, Any]) -> list[str]:
        """One sentence per value the models have not seen (unseen level, outside range)."""
        out: list[str] = []
        for name, value in features.items():
            if value is None:
                continue
            if isinstance(value, str):
                known = self.levels.get(name)
                if known is not None and value not in known:
                    out.append(
                        f"{name}: {value[:50]!r} was not seen in training; scored as unknown"
                    )
                continue
            bounds = self.numeric.get(name)
            if bounds is None or isinstance(value, bool):
                continue
            lo, hi = bounds
            x = float(value)
            if x < lo or x > hi:
                out.append(
                    f"{name}: {x:g} is outside the training range [{lo:g}, {hi:g}]; "
                    "scored as the nearest value seen"
                )
        return out
