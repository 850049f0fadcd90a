"""Weekend timing inputs: hand-computed dates, a brute-force oracle, the built frame."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from factories import START, make_config, make_tables

from features.build import build_features
from features.weekdays import compute_weekend_timing, weekend_days_between

WEEKEND = ["trial_weekend_days_elapsed", "trial_weekend_share_elapsed", "trial_weekend_days_2d"]


def _s(*moments: str) -> np.ndarray:
    return np.array([pd.Timestamp(m).value // 10**9 for m in moments], dtype=np.int64)


# 2026-12-04 is a Friday, 12-05 Saturday, 12-06 Sunday, 12-07 Monday (UTC).
@pytest.mark.parametrize(
    ("start", "as_of", "weekend", "share", "last_2d"),
    [
        # Friday-noon starter scored Monday 00:00 (a weekly origin): 2.5 days, 2 of them weekend
        ("2026-12-04 12:00", "2026-12-07 00:00", 2.0, 2.0 / 2.5, 2.0),
        # scored on Saturday 18:00: 1.25 days elapsed, 0.75 of it Saturday; the 2-day
        # window is cut at trial start (Friday noon)
        ("2026-12-04 12:00", "2026-12-05 18:00", 0.75, 0.75 / 1.25, 0.75),
        # a Monday starter scored Wednesday 06:00 the week after: one whole weekend
        # inside, none in the last two days (Monday 06:00 to Wednesday 06:00)
        ("2026-11-30 00:00", "2026-12-09 06:00", 2.0, 2.0 / 9.25, 0.0),
        # scored Sunday noon: Saturday and half of Sunday in the last two days
        ("2026-11-30 00:00", "2026-12-06 12:00", 1.5, 1.5 / 6.5, 1.5),
        # five whole weeks: 10 weekend days of 35
        ("2026-11-02 00:00", "2026-12-07 00:00", 10.0, 2.0 / 7.0, 2.0),
        # trial starting on a Sunday evening, scored Monday 06:00
        ("2026-12-06 18:00", "2026-12-07 06:00", 0.25, 0.25 / 0.5, 0.25),
    ],
)
def test_weekend_inputs_on_hand_computed_dates(start, as_of, weekend, share, last_2d) -> None:
    got = compute_weekend_timing(_s(start), _s(as_of))
    assert got["trial_weekend_days_elapsed"] == pytest.approx([weekend])
    assert got["trial_weekend_share_elapsed"] == pytest.approx([share])
    assert got["trial_weekend_days_2d"] == pytest.approx([last_2d])


def test_before_the_trial_starts_no_weekend_and_no_share() -> None:
    # as_of on Saturday before a Monday start: nothing elapsed yet
    got = compute_weekend_timing(_s("2026-12-07"), _s("2026-12-05 12:00"))
    assert got["trial_weekend_days_elapsed"].tolist() == [0.0]
    assert np.isnan(got["trial_weekend_share_elapsed"][0])
    assert got["trial_weekend_days_2d"].tolist() == [0.0]


def test_weekend_days_between_equals_a_brute_force_count() -> None:
    # invariant: the running total gives the same as walking the calendar day by day,
    # before and after 1970-01-05 (the total's origin) and across years
    rng = np.random.default_rng(0)
    lo = _s("1969-12-20")[0]
    a = rng.integers(lo, lo + 60 * 365 * 86_400, 300)
    b = a + rng.integers(0, 40 * 86_400, 300)
    got = weekend_days_between(a, b)
    for x, y, g in zip(a, b, got, strict=True):
        day = (x // 86_400) * 86_400
        want = 0
        while day < y:
            if pd.Timestamp(day, unit="s").day_of_week >= 5:
                want += max(0, min(y, day + 86_400) - max(x, day))
            day += 86_400
        assert g == pytest.approx(want / 86_400, abs=1e-9)


def test_the_built_frame_carries_the_weekend_inputs() -> None:
    # START (2026-01-01) is a Thursday; scored Saturday noon and Monday 00:00
    tables = make_tables([("a0", "u1", "setup", "2026-01-01 10:00")])
    config = make_config()
    ids = pd.Index(["a0", "a1"])
    sat = build_features(tables, config, pd.Series([START + pd.Timedelta("2.5D")] * 2, index=ids))
    mon = build_features(tables, config, pd.Series([START + pd.Timedelta("4D")] * 2, index=ids))
    assert sat[WEEKEND].to_numpy().tolist() == [[0.5, 0.2, 0.5]] * 2
    assert mon[WEEKEND].to_numpy().tolist() == [[2.0, 0.5, 2.0]] * 2
