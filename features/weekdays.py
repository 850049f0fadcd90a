"""How much of a stretch of time fell on a weekend: timing inputs by weekday.

Accounts use a product less on Saturdays and Sundays, so two days of little
activity read differently after a weekend than after two weekdays. Without an
input that says so, a model scoring on a Monday morning takes a quiet weekend
for a weak trial (issue 21: weekly backtests, origins Mondays 00:00 UTC, put
running trials 9-15% below the oracle, Friday and Saturday starters 20-26%).

Times are int64 seconds since the Unix epoch in **UTC**, as everywhere in the
feature code (``features.event_index``): a weekend is Saturday 00:00 to Monday
00:00 UTC, not the account's local weekend. Every quantity is a length of time
(days, fractional) between two moments both at or before ``as_of``, so it is
point-in-time correct by construction and needs no data, only the two moments.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from features.event_index import NAT_SECONDS, SECONDS_PER_DAY

SECONDS_PER_WEEK = 7 * SECONDS_PER_DAY
#: 1970-01-05 00:00 UTC, the first Monday after the epoch (1970-01-01 was a Thursday).
_FIRST_MONDAY = 4 * SECONDS_PER_DAY
#: Saturday 00:00 as seconds into a Monday-first week.
_WEEKEND_FROM = 5 * SECONDS_PER_DAY


def weekend_seconds_before(moment: np.ndarray) -> np.ndarray:
    """Weekend seconds (Saturday and Sunday, UTC) from 1970-01-05 to ``moment``.

    A running total, so the weekend time in ``[a, b)`` is
    ``weekend_seconds_before(b) - weekend_seconds_before(a)``. Moments before
    1970-01-05 give negative totals, and the difference still holds.
    """
    t = np.asarray(moment, dtype=np.int64) - _FIRST_MONDAY
    weeks, into = np.divmod(t, SECONDS_PER_WEEK)  # floor division: right for t < 0 too
    return weeks * (2 * SECONDS_PER_DAY) + np.clip(into - _WEEKEND_FROM, 0, 2 * SECONDS_PER_DAY)


def _span(
    start: np.ndarray,
    stop: np.ndarray,
    total_before: Callable[[np.ndarray], np.ndarray],
    unit: float,
) -> np.ndarray:
    """``(total_before(stop) - total_before(start)) / unit`` over ``[start, stop)``:
    0 where ``stop <= start``, NaN where either moment is missing (``NAT_SECONDS``).

    The running totals are subtracted before the division by ``unit``, so a span's
    share of another (weekend days of the days elapsed) never exceeds 1 by rounding.
    """
    start = np.asarray(start, dtype=np.int64)
    stop = np.asarray(stop, dtype=np.int64)
    missing = (start == NAT_SECONDS) | (stop == NAT_SECONDS)
    lo = np.where(missing, 0, start)
    hi = np.where(missing, 0, np.maximum(stop, lo))
    amount = (total_before(hi) - total_before(lo)) / unit
    return np.where(missing, np.nan, amount)


def weekend_days_between(start: np.ndarray, stop: np.ndarray) -> np.ndarray:
    """Days (fractional) of weekend in ``[start, stop)``; 0 where ``stop <= start``.

    NaN where either moment is missing (``NAT_SECONDS``).
    """
    return _span(start, stop, weekend_seconds_before, SECONDS_PER_DAY)


def compute_weekend_timing(
    trial_start: np.ndarray, as_of: np.ndarray, *, recent_days: int = 2
) -> dict[str, np.ndarray]:
    """Weekend inputs of the timing family, per (trial start, ``as_of``) row.

    Columns:
        trial_weekend_days_elapsed: days of weekend from trial start to ``as_of``
            (0 before the trial starts).
        trial_weekend_share_elapsed: that as a share of the days elapsed, 0-1
            (NaN until the trial has started).
        trial_weekend_days_2d: days of weekend in the last ``recent_days`` (2)
            days before ``as_of``, counted from trial start at the earliest: how
            much of the account's most recent stretch was a weekend (0-2).

    Args:
        trial_start: trial starts, int64 seconds (UTC).
        as_of: cutoffs, int64 seconds (UTC), one per row.
        recent_days: the window of ``trial_weekend_days_2d``.
    """
    start = np.asarray(trial_start, dtype=np.int64)
    as_of = np.asarray(as_of, dtype=np.int64)
    elapsed = (as_of - start) / SECONDS_PER_DAY
    weekend = weekend_days_between(start, as_of)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(elapsed > 0, weekend / np.where(elapsed > 0, elapsed, 1.0), np.nan)
    # a missing start stays missing (NAT_SECONDS is the smallest int64, so max() would hide it)
    recent_from = np.where(
        start == NAT_SECONDS, NAT_SECONDS, np.maximum(start, as_of - recent_days * SECONDS_PER_DAY)
    )
    return {
        "trial_weekend_days_elapsed": weekend,
        "trial_weekend_share_elapsed": share,
        f"trial_weekend_days_{recent_days}d": weekend_days_between(recent_from, as_of),
    }


# --- The company's week: usual activity per hour of the week -------------------

HOURS_PER_WEEK = 168
SECONDS_PER_HOUR = 3_600
#: Events per hour-of-week bin added to every bin before normalising: a company
#: with few events gets a nearly flat week (calendar days) rather than noise.
PROFILE_PRIOR_EVENTS = 50.0
#: Events read per hour-of-week count at most (a strided sample beyond it): the
#: shape of a week is known long before 20M events, and the count stays cheap.
PROFILE_SAMPLE_EVENTS = 1_000_000
#: Fewest usual days a rate is divided by: a trial minutes old is not extrapolated.
MIN_USUAL_DAYS = 0.25


def hour_of_week_counts(ts: np.ndarray) -> np.ndarray:
    """Events per hour of the week (168 bins, Monday 00:00-01:00 UTC first).

    ``ts``: event times, int64 seconds (UTC); missing times (``NAT_SECONDS``) are
    ignored. Beyond ``PROFILE_SAMPLE_EVENTS`` events every k-th event is read and
    its count weighted by k (the bins still sum to about the number of events).
    """
    ts = np.asarray(ts, dtype=np.int64)
    step = max(1, len(ts) // PROFILE_SAMPLE_EVENTS)
    sample = ts[::step]
    sample = sample[sample != NAT_SECONDS]
    hours = ((sample - _FIRST_MONDAY) // SECONDS_PER_HOUR) % HOURS_PER_WEEK
    return np.bincount(hours, minlength=HOURS_PER_WEEK).astype(np.int64) * step


def activity_profile(counts: np.ndarray) -> list[float]:
    """The company's usual activity per hour of the week, mean 1 (168 weights).

    From ``hour_of_week_counts`` summed over the training events, each bin shrunk
    toward the mean by ``PROFILE_PRIOR_EVENTS``. Empty when there are no events
    (then every hour weighs 1 and usual days are calendar days).
    """
    counts = np.asarray(counts, dtype=np.float64)
    if len(counts) != HOURS_PER_WEEK or counts.sum() <= 0:
        return []
    shrunk = counts + PROFILE_PRIOR_EVENTS
    return [round(float(x), 6) for x in shrunk / shrunk.mean()]


def _usual_before(moment: np.ndarray, profile: np.ndarray, cumulative: np.ndarray) -> np.ndarray:
    """Usual days from 1970-01-05 00:00 UTC to ``moment`` (a running total): whole
    weeks, whole hours of the week, then the seconds into the current hour."""
    t = np.asarray(moment, dtype=np.int64) - _FIRST_MONDAY
    weeks, into = np.divmod(t, SECONDS_PER_WEEK)
    hour, seconds = np.divmod(into, SECONDS_PER_HOUR)
    return weeks * cumulative[-1] + cumulative[hour] + profile[hour] * seconds / SECONDS_PER_DAY


def usual_days_between(start: np.ndarray, stop: np.ndarray, profile: list[float]) -> np.ndarray:
    """Usual days of activity in ``[start, stop)``: calendar time weighted by the
    company's activity at each hour of the week (``activity_profile``), so a weekend
    counts for little where accounts rest at weekends. A whole week is 7 usual
    days; with an empty profile every usual day is a calendar day. 0 where
    ``stop <= start``, NaN where either moment is missing.
    """
    weights = np.asarray(profile if profile else np.ones(HOURS_PER_WEEK), dtype=np.float64)
    weights = weights * (HOURS_PER_WEEK / weights.sum())  # mean 1: a week is 7 usual days
    cumulative = np.r_[0.0, np.cumsum(weights * SECONDS_PER_HOUR / SECONDS_PER_DAY)]
    return _span(start, stop, lambda t: _usual_before(t, weights, cumulative), 1.0)
