"""Engagement features: how much, how widely and how recently an account uses the product.

All windows end at ``as_of`` (exclusive). ``_all`` means every event before
``as_of``; ``_7d`` / ``_28d`` the last 7 / 28 days (the recent window is
configurable; its columns are named after its length).
"""

from __future__ import annotations

import numpy as np

from features.config import EngagementConfig
from features.event_index import SECONDS_PER_DAY, EventCut, count_distinct
from features.weekdays import MIN_USUAL_DAYS, usual_days_between

LONG_WINDOW_DAYS = 28


def compute_engagement_features(
    cut: EventCut, config: EngagementConfig, activity_profile: list[float] | None = None
) -> dict[str, np.ndarray]:
    """Engagement columns for every row of ``cut``.

    ``activity_profile``: the company's usual week (``FeatureSpec.activity_profile``)
    for the "per usual day" columns; None or empty: calendar days.

    Columns (units):
        engagement_events_all / _{w}d / _28d: event counts.
        engagement_active_days_all / _{w}d / _28d: distinct days with any event
            (days counted back from ``as_of``).
        engagement_active_day_share_all: active days / days observed since trial start.
        engagement_events_per_active_day_all: depth, events per active day.
        engagement_distinct_event_types_all: breadth, distinct event types used.
        engagement_core_events_all, engagement_core_features_used_all: count of
            core ("golden") feature events, and how many distinct core features.
        engagement_users_active_all / _{w}d: distinct users with events.
        engagement_users_invited_all: invite events.
        engagement_stickiness_{w}d: mean daily active users / weekly active users
            over the recent window (DAU/WAU style, 0-1).
        engagement_recency_days: days since the last event (or since trial start
            if none).
        engagement_trend_{w}d: log ratio of the recent window's daily event rate to
            the window before it (negative = fading); NaN before two windows exist.
        engagement_decayed_score: events weighted by exp-decay with the configured
            half-life (in events).
        With ``[engagement] usual_day_rates`` only:
        engagement_events_per_usual_day_all / _{w}d, engagement_active_days_per_usual_day_all,
        engagement_core_events_per_usual_day_all: those counts over the *usual days*
            elapsed (``features.weekdays.usual_days_between``: calendar time weighted
            by the company's activity in each hour of the week, at least
            ``MIN_USUAL_DAYS``). A quiet weekend then reads as the little time it
            is, not as days of silence: scored on a Monday at 00:00 every trial has
            just had one, and counts per calendar day put running trials 9-15%
            below the truth in weekly backtests (issue 21; why the option is off by
            default: ``EngagementConfig.usual_day_rates``).
        engagement_recency_usual_days: usual days since the last event (since
            trial start if none).
    """
    n = cut.n_rows
    w = config.recent_window_days
    idx = cut.index
    age_day = cut.age // SECONDS_PER_DAY  # 0 = the last 24 h before as_of
    recent = age_day < w
    long = age_day < LONG_WINDOW_DAYS
    elapsed_days = np.maximum((cut.as_of - cut.trial_start) / SECONDS_PER_DAY, 0.0)

    events_all = cut.count()
    max_day = int(age_day.max()) + 1 if len(age_day) else 1
    active_all = count_distinct(cut.row, age_day, n, max_day)
    active_recent = count_distinct(cut.row[recent], age_day[recent], n, w)
    active_long = count_distinct(cut.row[long], age_day[long], n, LONG_WINDOW_DAYS)

    n_vocab = max(len(idx.vocabulary), 1)
    core_lut = idx.event_lookup(config.core_events)
    is_core = core_lut[cut.event] if len(core_lut) else np.zeros(len(cut.event), dtype=bool)
    core_codes = np.cumsum(core_lut) - 1  # dense code of each core event type
    invite_lut = idx.event_lookup(config.invite_events)

    # Users: mark active users, then count them per row of their account.
    n_users = len(idx.user_acc)
    user_row = cut.user_row
    active_user = np.bincount(cut.user, minlength=n_users) > 0
    active_user_recent = np.bincount(cut.user[recent], minlength=n_users) > 0
    users_all = np.bincount(user_row[active_user], minlength=n).astype(np.float64)
    users_recent = np.bincount(user_row[active_user_recent], minlength=n).astype(np.float64)

    # Stickiness: sum over recent days of daily active users, / days, / WAU.
    user_days = count_distinct(cut.user[recent], age_day[recent], n_users, w)
    dau_sum = np.bincount(user_row[user_days > 0], weights=user_days[user_days > 0], minlength=n)
    window_days = np.clip(elapsed_days, 1.0, float(w))
    with np.errstate(divide="ignore", invalid="ignore"):
        stickiness = np.where(users_recent > 0, dau_sum / window_days / users_recent, 0.0)
    stickiness = np.clip(stickiness, 0.0, 1.0)  # pre-trial events can add a day

    last_age = np.full(n, np.inf)
    if len(cut.age):
        np.minimum.at(last_age, cut.row, cut.age / SECONDS_PER_DAY)
    recency = np.where(np.isfinite(last_age), last_age, elapsed_days)

    # Trend: daily rate in the recent window vs the window before it.
    prev = (age_day >= w) & (age_day < 2 * w)
    prev_days = np.clip(elapsed_days - w, 0.0, float(w))
    rate_recent = cut.count(recent) / window_days
    with np.errstate(divide="ignore", invalid="ignore"):
        rate_prev = cut.count(prev) / prev_days
        trend = np.where(prev_days >= 1.0, np.log1p(rate_recent) - np.log1p(rate_prev), np.nan)

    decay = np.exp(-np.log(2.0) * (cut.age / SECONDS_PER_DAY) / config.decay_half_life_days)

    with np.errstate(divide="ignore", invalid="ignore"):
        per_active_day = np.where(active_all > 0, events_all / active_all, 0.0)
        active_share = active_all / np.maximum(np.ceil(elapsed_days), 1.0)
    events_recent, core_all = cut.count(recent), cut.count(is_core)
    out = {
        "engagement_events_all": events_all,
        f"engagement_events_{w}d": events_recent,
        f"engagement_events_{LONG_WINDOW_DAYS}d": cut.count(long),
        "engagement_active_days_all": active_all,
        f"engagement_active_days_{w}d": active_recent,
        f"engagement_active_days_{LONG_WINDOW_DAYS}d": active_long,
        "engagement_active_day_share_all": np.minimum(active_share, 1.0),
        "engagement_events_per_active_day_all": per_active_day,
        "engagement_distinct_event_types_all": count_distinct(cut.row, cut.event, n, n_vocab),
        "engagement_core_events_all": core_all,
        "engagement_core_features_used_all": count_distinct(
            cut.row[is_core], core_codes[cut.event[is_core]], n, max(int(core_lut.sum()), 1)
        ),
        "engagement_users_active_all": users_all,
        f"engagement_users_active_{w}d": users_recent,
        "engagement_users_invited_all": cut.count(invite_lut[cut.event]),
        f"engagement_stickiness_{w}d": stickiness,
        "engagement_recency_days": recency,
        f"engagement_trend_{w}d": trend,
        "engagement_decayed_score": cut.count(weights=decay),
    }
    if config.usual_day_rates:
        out |= _usual_day_rates(
            cut,
            w,
            activity_profile,
            last_age,
            counts=(events_all, events_recent, active_all, core_all),
        )
    return out


def _usual_day_rates(
    cut: EventCut,
    w: int,
    activity_profile: list[float] | None,
    last_age: np.ndarray,
    *,
    counts: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
) -> dict[str, np.ndarray]:
    """The "per usual day" columns (``[engagement] usual_day_rates``): counts over
    the usual days elapsed and recency in usual days (see the module's caller)."""
    events_all, events_recent, active_all, core_all = counts
    profile = list(activity_profile or [])
    since_start = usual_days_between(cut.trial_start, cut.as_of, profile)
    usual_all = np.maximum(since_start, MIN_USUAL_DAYS)
    recent_from = np.maximum(cut.trial_start, cut.as_of - w * SECONDS_PER_DAY)
    usual_recent = np.maximum(usual_days_between(recent_from, cut.as_of, profile), MIN_USUAL_DAYS)
    seen = np.isfinite(last_age)
    last_event = cut.as_of - np.round(np.where(seen, last_age, 0.0) * SECONDS_PER_DAY).astype(
        np.int64
    )
    usual_recency = np.where(seen, usual_days_between(last_event, cut.as_of, profile), since_start)
    return {
        "engagement_events_per_usual_day_all": events_all / usual_all,
        f"engagement_events_per_usual_day_{w}d": events_recent / usual_recent,
        "engagement_active_days_per_usual_day_all": active_all / usual_all,
        "engagement_core_events_per_usual_day_all": core_all / usual_all,
        "engagement_recency_usual_days": np.maximum(usual_recency, 0.0),
    }
