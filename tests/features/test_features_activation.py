"""Activation features checked by hand on tiny tables."""

import numpy as np
import pytest
from factories import START, T, make_config, make_tables

from features.build import build_features


def _features():
    tables = make_tables(
        [
            ("a0", "u1", "setup", "2026-01-01 12:00"),  # day 0.5
            ("a0", "u1", "core_a", "2026-01-02 00:00"),
            ("a0", "u2", "core_b", "2026-01-03 06:00"),  # 2nd core event: day 2.25
            ("a0", "u2", "invite", "2026-01-05 00:00"),  # day 4: after the 3-day deadline
            ("a1", "u9", "invite", "2026-01-02 12:00"),  # day 1.5: within deadline
            ("a1", "u9", "setup", "2026-01-07 00:00"),  # at as_of: must not count
        ]
    )
    return build_features(tables, make_config(), T("2026-01-07"))


def test_milestone_flags_days_and_rate():
    f = _features()
    a0, a1 = f.loc["a0"], f.loc["a1"]
    assert a0["activation_set_up_done"] == 1 and a0["activation_set_up_days"] == pytest.approx(0.5)
    assert a0["activation_used_core_done"] == 1
    assert a0["activation_used_core_days"] == pytest.approx(2.25)
    # invite came on day 4, the deadline is 3 days: not done, days NaN
    assert a0["activation_invited_fast_done"] == 0 and np.isnan(a0["activation_invited_fast_days"])
    assert a0["activation_steps_done_all"] == 2
    assert a0["activation_rate_all"] == pytest.approx(2 / 3)
    assert a0["activation_stage_all"] == 2
    # a1: only the third step; its setup event is exactly at as_of and excluded
    assert a1["activation_set_up_done"] == 0
    assert a1["activation_invited_fast_done"] == 1
    assert a1["activation_invited_fast_days"] == pytest.approx(1.5)
    assert a1["activation_rate_all"] == pytest.approx(1 / 3)
    assert a1["activation_stage_all"] == 3


def test_min_count_not_reached_before_as_of():
    tables = make_tables(
        [("a0", "u1", "core_a", "2026-01-02"), ("a0", "u1", "core_b", "2026-01-04")]
    )
    early = build_features(tables, make_config(), T("2026-01-03"))
    late = build_features(tables, make_config(), T("2026-01-05"))
    assert early.loc["a0", "activation_used_core_done"] == 0
    assert late.loc["a0", "activation_used_core_done"] == 1
    assert late.loc["a0", "activation_used_core_days"] == pytest.approx(3.0)


def test_no_milestones_configured_gives_zero_rate():
    tables = make_tables([("a0", "u1", "setup", "2026-01-02")])
    f = build_features(
        tables, make_config(activation={"milestones": []}), START + np.timedelta64(5, "D")
    )
    assert (f["activation_rate_all"] == 0).all()
    assert not any(c.endswith("_done") for c in f.columns)
