"""Weekend timing inputs: hand-computed dates, a brute-force oracle, the built frame."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from factories import START, make_accounts, make_config, make_events, make_tables

from features.build import FeatureBuilder, build_features
from features.event_index import NAT_SECONDS as NAT
from features.spec import fit_feature_spec
from features.tables import Tables
from features.weekdays import (
    HOURS_PER_WEEK,
    PROFILE_PRIOR_EVENTS,
    activity_profile,
    compute_weekend_timing,
    hour_of_week_counts,
    usual_days_between,
    weekend_days_between,
)

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


# --- usual days: calendar time weighted by the company's week ----------------

#: A company resting at weekends: weekdays weigh 1.3, Saturday and Sunday 0.25.
RESTING = [1.3] * 120 + [0.25] * 48


def test_usual_days_by_hand() -> None:
    start = _s("2026-12-04 12:00", "2026-12-07 00:00", "2026-12-01 09:30", "2026-12-05 06:00")
    stop = _s("2026-12-07 00:00", "2026-12-14 00:00", "2026-12-01 10:00", "2026-12-05 05:00")
    got = usual_days_between(start, stop, RESTING)
    mean = (1.3 * 120 + 0.25 * 48) / 168  # the profile is read as shares of its mean
    want = [
        (0.5 * 1.3 + 2 * 0.25) / mean,  # Friday noon to Monday 00:00: half a weekday, a weekend
        7.0,  # a whole week is 7 usual days, whatever the profile
        (0.5 / 24) * 1.3 / mean,  # half an hour of a Tuesday morning
        0.0,  # stop before start
    ]
    assert got == pytest.approx(want, rel=1e-9)
    # no profile (no events yet): usual days are calendar days
    assert usual_days_between(start[:3], stop[:3], []) == pytest.approx([2.5, 7.0, 0.5 / 24])
    assert np.isnan(usual_days_between(np.array([NAT]), _s("2026-12-07"), RESTING)[0])


def test_usual_days_equal_a_brute_force_walk_over_hours() -> None:
    # invariant: the running total equals walking the calendar hour by hour
    rng = np.random.default_rng(1)
    profile = list(rng.uniform(0.1, 3.0, HOURS_PER_WEEK))
    weights = np.asarray(profile) / np.mean(profile)
    a = rng.integers(_s("1969-12-20")[0], _s("2030-01-01")[0], 60)
    b = a + rng.integers(0, 9 * 86_400, 60)
    for x, y, g in zip(a, b, usual_days_between(a, b, profile), strict=True):
        hour, want = (x // 3600) * 3600, 0.0
        while hour < y:
            h = pd.Timestamp(hour, unit="s")
            w = weights[h.day_of_week * 24 + h.hour]
            want += w * (min(y, hour + 3600) - max(x, hour)) / 86_400
            hour += 3600
        assert g == pytest.approx(want, abs=1e-9)


def test_the_profile_is_the_week_of_the_events_shrunk_when_few() -> None:
    # 10,000 events on Tuesdays 14:00-15:00 and none elsewhere
    ts = _s("2026-12-01 14:10")[0] + np.arange(10_000) % 3000
    counts = hour_of_week_counts(ts)
    assert counts[24 + 14] == 10_000 and counts.sum() == 10_000
    profile = np.asarray(activity_profile(counts))
    assert profile.mean() == pytest.approx(1.0) and profile.argmax() == 24 + 14
    # each empty hour keeps the prior's share: nothing reads as "never active"
    assert profile[0] == pytest.approx(
        PROFILE_PRIOR_EVENTS / (10_000 / 168 + PROFILE_PRIOR_EVENTS), rel=1e-5
    )
    # 20 events: a nearly flat week
    assert np.ptp(activity_profile(hour_of_week_counts(ts[:20]))) < 0.5
    assert activity_profile(np.zeros(HOURS_PER_WEEK)) == []
    # beyond the sample size every k-th event is read and weighted by k
    many = np.repeat(_s("2026-12-05 10:30"), 2_500_000)
    assert hour_of_week_counts(many)[5 * 24 + 10] == 2_500_000


def test_per_usual_day_rates_read_a_quiet_weekend_as_little_time() -> None:
    """Two accounts with the same weekday activity, one scored on Monday 00:00 after
    a weekend: per calendar day the Monday one looks quieter; per usual day (the
    company's week, learned with the spec) the two read alike."""
    accounts = make_accounts(2, trial_days=14)
    # both start on a Tuesday 00:00; an event a minute every weekday 9-18 h, none at
    # weekends (10,800 events: enough for the profile to stand out of its prior)
    accounts["trial_start"] = pd.Timestamp("2026-12-01")
    accounts["trial_end"] = pd.Timestamp("2026-12-15")
    days = pd.date_range("2026-12-01", "2026-12-14", freq="D")
    rows = [
        (a, "u1", "view", str(d + pd.Timedelta(hours=h, minutes=m)))
        for a in ("a0", "a1")
        for d in days
        if d.day_of_week < 5
        for h in range(9, 18)
        for m in range(60)
    ]
    tables = Tables(events=make_events(rows), accounts=accounts)
    config = make_config(engagement={"usual_day_rates": True})
    spec = fit_feature_spec(tables, config)
    # off by default: the columns are not built at all
    plain = FeatureBuilder.from_tables(tables, make_config(), spec=spec)
    assert not plain.build(np.array([0]), _s("2026-12-07")).filter(like="usual").columns.size
    assert (
        np.mean(spec.activity_profile[120:])
        < 0.5
        < np.mean(spec.activity_profile[24 + 9 : 24 + 17])
    )
    builder = FeatureBuilder.from_tables(tables, config, spec=spec)
    # a0 on Saturday 00:00 (4 weekdays in), a1 on Monday 00:00 (the same 4 plus a weekend)
    frame = builder.build(np.array([0, 1]), _s("2026-12-05 00:00", "2026-12-07 00:00"))
    calendar = frame["engagement_events_all"] / frame["trial_days_elapsed"]
    usual = frame["engagement_events_per_usual_day_all"]
    assert calendar["a1"] < 0.7 * calendar["a0"]
    # the weekend still counts a little (the profile's prior keeps every hour above 0)
    assert usual["a1"] > 0.8 * usual["a0"]
    assert (
        frame.loc["a1", "engagement_recency_usual_days"]
        < 0.5 * frame.loc["a1", "engagement_recency_days"]
    )
