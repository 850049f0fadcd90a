"""Activation features: how far through the company's activation checklist an account is.

The checklist (config ``[[activation.milestones]]``) is ordered: set-up moment,
activation moment, aha moment. A milestone is done when the account has at least
``min_count`` of its events before ``as_of`` (and, with a deadline, the
``min_count``-th one came within ``deadline_days`` of trial start).
"""

from __future__ import annotations

import numpy as np

from features.config import ActivationConfig
from features.event_index import SECONDS_PER_DAY, EventCut
from features.naming import unique_slugs


def milestone_slugs(config: ActivationConfig) -> list[str]:
    """Column slugs of the milestones, in checklist order."""
    return unique_slugs([m.name for m in config.milestones])


def reached_times(cut: EventCut, event_mask: np.ndarray, min_count: int) -> np.ndarray:
    """Per row, the time (s) of the ``min_count``-th matching event; NaN if fewer."""
    out = np.full(cut.n_rows, np.nan)
    rows = cut.row[event_mask]
    if len(rows) == 0:
        return out
    ts = cut.ts[event_mask]
    order = np.lexsort((ts, rows))
    rows, ts = rows[order], ts[order]
    starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
    sizes = np.diff(np.r_[starts, len(rows)])
    ok = sizes >= min_count
    out[rows[starts[ok]]] = ts[starts[ok] + min_count - 1]
    return out


def compute_activation_features(cut: EventCut, config: ActivationConfig) -> dict[str, np.ndarray]:
    """Activation columns for every row of ``cut``.

    Columns (units):
        activation_<milestone>_done: 1 if the milestone is done, else 0.
        activation_<milestone>_days: days from trial start to the milestone (NaN
            if not done).
        activation_steps_done_all: milestones done (count).
        activation_rate_all: fraction of the checklist done (0-1).
        activation_stage_all: furthest milestone done, 1-based checklist position
            (0 = none).
    """
    out: dict[str, np.ndarray] = {}
    n = cut.n_rows
    done_count = np.zeros(n)
    stage = np.zeros(n)
    milestones = config.milestones
    for pos, (milestone, slug) in enumerate(zip(milestones, milestone_slugs(config), strict=True)):
        lut = cut.index.event_lookup(milestone.events)
        when = reached_times(cut, lut[cut.event], milestone.min_count)
        days = (when - cut.trial_start) / SECONDS_PER_DAY
        done = ~np.isnan(when)
        if milestone.deadline_days is not None:
            done &= days <= milestone.deadline_days
        out[f"activation_{slug}_done"] = done.astype(np.float64)
        out[f"activation_{slug}_days"] = np.where(done, np.maximum(days, 0.0), np.nan)
        done_count += done
        stage = np.where(done, pos + 1, stage)
    out["activation_steps_done_all"] = done_count
    out["activation_rate_all"] = done_count / len(milestones) if milestones else np.zeros(n)
    out["activation_stage_all"] = stage
    return out
