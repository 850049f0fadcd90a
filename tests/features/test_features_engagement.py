"""Engagement and per-event-type features checked by hand."""

import math

import numpy as np
import pytest
from factories import T, make_config, make_tables

from features.build import build_features, feature_columns
from features.spec import fit_feature_spec

AS_OF = T("2026-01-15")  # trial day 14


def _tables():
    return make_tables(
        [
            # a0: busy in week 1, quiet in week 2 (fading)
            ("a0", "u1", "core_a", "2026-01-02 10:00"),
            ("a0", "u1", "core_a", "2026-01-02 11:00"),
            ("a0", "u2", "core_b", "2026-01-03 10:00"),
            ("a0", "u2", "view", "2026-01-04 10:00"),
            ("a0", "u3", "invite", "2026-01-05 10:00"),
            ("a0", "u1", "view", "2026-01-13 12:00"),  # 1.5 days before as_of
            ("a0", None, "view", "2026-01-20 00:00"),  # after as_of: ignored
            # a1: a single event
            ("a1", "u1", "view", "2026-01-14 18:00"),
        ]
    )


def test_counts_active_days_users_and_recency():
    f = build_features(_tables(), make_config(), AS_OF).loc["a0"]
    assert f["engagement_events_all"] == 6
    assert f["engagement_events_7d"] == 1
    assert f["engagement_active_days_all"] == 5  # Jan 2, 3, 4, 5, 13
    assert f["engagement_active_days_7d"] == 1
    assert f["engagement_active_day_share_all"] == pytest.approx(5 / 14)
    assert f["engagement_events_per_active_day_all"] == pytest.approx(6 / 5)
    assert f["engagement_distinct_event_types_all"] == 4  # core_a, core_b, view, invite
    assert f["engagement_core_events_all"] == 3
    assert f["engagement_core_features_used_all"] == 2
    assert f["engagement_users_active_all"] == 3
    assert f["engagement_users_active_7d"] == 1
    assert f["engagement_users_invited_all"] == 1
    assert f["engagement_recency_days"] == pytest.approx(1.5)
    # one user on one day in the last 7 days: DAU sum 1 over 7 days, WAU 1
    assert f["engagement_stickiness_7d"] == pytest.approx(1 / 7)


def test_trend_is_negative_for_a_fading_account():
    f = build_features(_tables(), make_config(), AS_OF).loc["a0"]
    # recent week: 1 event / 7 days; week before: 5 events / 7 days
    assert f["engagement_trend_7d"] == pytest.approx(math.log1p(1 / 7) - math.log1p(5 / 7))


def test_trend_undefined_in_first_week():
    f = build_features(_tables(), make_config(), T("2026-01-05")).loc["a0"]
    assert np.isnan(f["engagement_trend_7d"])


def test_decayed_score_weights_by_half_life():
    f = build_features(_tables(), make_config(), AS_OF).loc["a1"]
    # one event 0.25 days old, half-life 7 days
    assert f["engagement_decayed_score"] == pytest.approx(0.5 ** (0.25 / 7))


def test_account_without_events_has_zeros_and_recency_since_start():
    tables = make_tables([("a0", "u1", "view", "2026-01-02")], n_accounts=3)
    f = build_features(tables, make_config(), AS_OF).loc["a2"]
    assert f["engagement_events_all"] == 0 and f["engagement_users_active_all"] == 0
    assert f["engagement_recency_days"] == pytest.approx(14.0)


def test_top_k_event_counts_use_any_vocabulary():
    tables = make_tables(
        [
            ("a0", "u1", "Scheduling.Shift.Approved", "2026-01-02"),
            ("a0", "u1", "Scheduling.Shift.Approved", "2026-01-03"),
            ("a0", "u1", "Page.Viewed", "2026-01-03"),
            ("a1", "u1", "Page.Viewed", "2026-01-03"),
            ("a1", "u1", "Page.Viewed", "2026-01-04"),
            ("a1", "u1", "Rare Thing", "2026-01-04"),
            ("a1", "u1", "Another", "2026-01-04"),
        ]
    )
    cfg = make_config()
    spec = fit_feature_spec(tables, cfg)
    # top 3 by frequency, ties broken by name
    assert spec.top_event_types == ["Page.Viewed", "Scheduling.Shift.Approved", "Another"]
    f = build_features(tables, cfg, AS_OF, spec=spec)
    assert f.loc["a0", "count_scheduling_shift_approved_all"] == 2
    assert f.loc["a1", "count_page_viewed_all"] == 2
    assert f.loc["a1", "count_another_all"] == 1
    assert "count_rare_thing_all" not in f.columns


def test_feature_columns_exclude_meta_and_customer_columns():
    f = build_features(_tables(), make_config(), AS_OF)
    cols = feature_columns(f)
    assert "as_of" not in cols and "customer_days_paying" not in cols
    assert "customer_days_paying" in feature_columns(f, customer=True)
    assert str(f["firmo_plan"].dtype) == "category"


@pytest.mark.parametrize("shared", [False, True], ids=["ids-per-account", "id-in-two-accounts"])
def test_a_user_is_an_account_and_id_pair_and_unnamed_events_are_one_user(shared):
    """Both ways of numbering users (ids of one account each, or an id seen in two
    accounts) count the same people; events without a user id are one more user."""
    other = "u1" if shared else "u9"
    tables = make_tables(
        [
            ("a0", "u1", "view", "2026-01-02 10:00"),
            ("a0", "u2", "view", "2026-01-03 10:00"),
            ("a0", None, "view", "2026-01-04 10:00"),
            ("a0", None, "core_a", "2026-01-13 10:00"),
            ("a1", other, "view", "2026-01-10 10:00"),
            ("a1", other, "view", "2026-01-14 10:00"),
            ("a2", None, "view", "2026-01-14 11:00"),
        ],
        n_accounts=3,
    )
    f = build_features(tables, make_config(), AS_OF)
    assert f.loc["a0", "engagement_users_active_all"] == 3  # u1, u2, unnamed
    assert f.loc["a0", "engagement_users_active_7d"] == 1  # unnamed (Jan 13)
    assert f.loc["a1", "engagement_users_active_all"] == 1
    assert f.loc["a2", "engagement_users_active_all"] == 1
