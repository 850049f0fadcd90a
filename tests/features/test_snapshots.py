"""Training-set builders: which snapshots exist and how they are labelled."""

import numpy as np
import pandas as pd
import pytest
from factories import START, T, make_accounts, make_config, make_events

from features.build import FeatureBuilder
from features.snapshots import (
    build_churn_training_set,
    build_trial_training_set,
    select_open_trials,
)
from features.tables import Tables

D = pd.Timedelta


def _tables():
    accounts = make_accounts(4)  # 14-day trials starting 2026-01-01
    accounts.loc[0, "converted_at"] = START + D(days=5)  # converts inside the trial
    accounts.loc[1, "converted_at"] = START + D(days=20)  # after trial end, inside 30-day window
    accounts.loc[2, "converted_at"] = START + D(days=60)  # too late: label 0
    accounts.loc[[0, 1], "mrr"] = 100.0
    accounts.loc[0, "churned_at"] = START + D(days=5 + 45)
    events = make_events(
        [(f"a{i}", "u1", "view", "2026-01-02") for i in range(4)]
        + [("a0", "u1", "view", "2026-06-01")]
    )
    return Tables(events=events, accounts=accounts)


def test_trial_snapshots_labels_and_exclusions():
    builder = FeatureBuilder.from_tables(_tables(), make_config())
    ts = build_trial_training_set(builder, export_time=T("2026-06-30"))
    got = {(r.account_id, r.snapshot): r.label for r in ts.itertuples()}
    # a0 converted on day 5: present at d1, d3 with label 1, absent from d7 on
    assert got[("a0", "d1")] == 1 and got[("a0", "d3")] == 1
    assert ("a0", "d7") not in got and ("a0", "end") not in got
    # a1 converted on day 20 (after trial end, within window): positive at every snapshot
    assert all(got[("a1", s)] == 1 for s in ["d1", "d3", "d7", "end"])
    # day 14 == trial end: covered by the "end" snapshot only
    assert ("a1", "d14") not in got
    # a2 converted on day 60: outside the window
    assert got[("a2", "end")] == 0 and got[("a3", "end")] == 0
    # as_of and snapshot_day agree
    end_rows = ts[ts["snapshot"] == "end"]
    assert (end_rows["snapshot_day"] == 14).all()
    assert (end_rows["as_of"] == START + D(days=14)).all()


def test_censored_trials_are_not_labelled():
    builder = FeatureBuilder.from_tables(_tables(), make_config())
    # export 20 days after start: the 14 + 30 day window has not closed for anyone
    with pytest.raises(ValueError, match="nothing to train on"):
        build_trial_training_set(builder, export_time=T("2026-01-21"))


def test_churn_snapshots_monthly_while_paying():
    builder = FeatureBuilder.from_tables(_tables(), make_config())
    ch = build_churn_training_set(builder, export_time=T("2026-12-31"))
    a0 = ch[ch["account_id"] == "a0"].set_index("snapshot")
    # a0 pays from day 5 and churns 45 days later: m1 (day 35) is the only paying snapshot
    assert list(a0.index) == ["m1"]
    assert a0.loc["m1", "label"] == 1  # churns 15 days after m1, within 90 days
    assert a0.loc["m1", "customer_days_paying"] == pytest.approx(30)
    a1 = ch[ch["account_id"] == "a1"]
    assert len(a1) > 3 and (a1["label"] == 0).all()
    assert np.allclose(a1["customer_mrr"], 100.0)


def test_open_trials_excludes_converted_and_expired():
    builder = FeatureBuilder.from_tables(_tables(), make_config())
    open_ids = builder.index.account_ids[select_open_trials(builder, T("2026-01-10"))]
    assert list(open_ids) == ["a1", "a2", "a3"]  # a0 already converted on day 5
    assert len(select_open_trials(builder, T("2026-03-01"))) == 0  # windows closed


def test_share_snapshots_meet_every_trial_at_the_same_phase():
    """``snapshot_shares``: a 14-day and a 30-day trial are both seen half-way (day 7
    and day 15) and three quarters in; a trial converted before the share is not."""
    accounts = make_accounts(3)
    accounts.loc[1, "trial_end"] = START + D(days=30)
    accounts.loc[2, "trial_end"] = START + D(days=30)
    accounts.loc[2, "converted_at"] = START + D(days=10)  # before half-way (day 15)
    events = make_events([(f"a{i}", "u1", "view", "2026-01-02") for i in range(3)])
    config = make_config(trial={"snapshot_shares": [0.75, 0.5]})
    assert config.trial.snapshot_shares == [0.5, 0.75]
    builder = FeatureBuilder.from_tables(Tables(events=events, accounts=accounts), config)
    ts = build_trial_training_set(builder, export_time=T("2026-06-30"))
    day = {(r.account_id, r.snapshot): r.trial_days_elapsed for r in ts.itertuples()}
    assert day[("a0", "p50")] == pytest.approx(7) and day[("a0", "p75")] == pytest.approx(10.5)
    assert day[("a1", "p50")] == pytest.approx(15) and day[("a1", "p75")] == pytest.approx(22.5)
    assert ("a2", "p50") not in day and ("a2", "d7") in day
    label = {(r.account_id, r.snapshot): r.label for r in ts.itertuples()}
    assert label[("a2", "d7")] == 1 and label[("a1", "p50")] == 0


@pytest.mark.parametrize("bad", [[0.0], [1.0], [1.5]])
def test_snapshot_shares_must_lie_inside_the_trial(bad):
    from features.config import ConfigError

    with pytest.raises(ConfigError, match="snapshot_shares"):
        make_config(trial={"snapshot_shares": bad})


def test_random_snapshots_spread_over_the_trial_and_its_window():
    """``random_snapshots``: each open trial is seen at moments drawn from a hash of
    its id, anywhere from trial start to the window's end, the same in every export;
    a trial already converted at a moment is not snapshotted there."""
    accounts = make_accounts(40)
    accounts.loc[0, "converted_at"] = accounts.loc[0, "trial_start"] + D(hours=1)
    events = make_events([(f"a{i}", "u1", "view", "2026-01-02") for i in range(40)])
    config = make_config(trial={"random_snapshots": 2})
    builder = FeatureBuilder.from_tables(Tables(events=events, accounts=accounts), config)
    ts = build_trial_training_set(builder, export_time=T("2026-06-30"))
    rand = ts[ts["snapshot"].isin(["r1", "r2"])]
    length = config.trial.conversion_window_days + 14
    assert rand["trial_days_elapsed"].between(0, length).all()
    assert rand["trial_days_elapsed"].nunique() > 60  # spread, not a few fixed days
    assert rand["trial_days_elapsed"].max() > 14  # past the trial's end too
    assert not ((rand["account_id"] == "a0") & (rand["trial_days_elapsed"] > 1 / 24)).any()
    again = build_trial_training_set(
        FeatureBuilder.from_tables(Tables(events=events, accounts=accounts.iloc[::-1]), config),
        export_time=T("2026-06-30"),
    )
    key = ["account_id", "snapshot"]
    a = rand.set_index(key)["as_of"].sort_index()
    b = again[again["snapshot"].isin(["r1", "r2"])].set_index(key)["as_of"].sort_index()
    pd.testing.assert_series_equal(a, b)


def test_midnight_snapshots_fall_on_the_first_midnights_after_the_start():
    """``midnight_snapshots``: open trials are seen at 00:00 UTC of the days after
    their start (where scheduled origins fall), not at the start's time of day; a
    trial converted before a midnight, or ended by it, is not snapshotted there."""
    accounts = make_accounts(3, trial_days=3)
    accounts["trial_start"] = [T("2026-01-02 15:30"), T("2026-01-03 00:00"), T("2026-01-02 15:30")]
    accounts["trial_end"] = accounts["trial_start"] + D(days=3)
    accounts.loc[2, "converted_at"] = T("2026-01-04 12:00")  # converts on its 2nd day
    events = make_events([(f"a{i}", "u1", "view", "2026-01-03 09:00") for i in range(3)])
    config = make_config(trial={"midnight_snapshots": 5})
    builder = FeatureBuilder.from_tables(Tables(events=events, accounts=accounts), config)
    ts = build_trial_training_set(builder, export_time=T("2026-06-30"))
    mid = ts[ts["snapshot"].str.match(r"u\d+$")]
    got = {(r.account_id, r.snapshot): pd.Timestamp(r.as_of) for r in mid.itertuples()}
    # a0 began Friday 15:30: Saturday, Sunday and Monday 00:00; Tuesday is after its end
    assert got[("a0", "u1")] == T("2026-01-03") and got[("a0", "u3")] == T("2026-01-05")
    assert ("a0", "u4") not in got
    # a1 began at a midnight: its first midnight snapshot is one day in, not zero
    assert got[("a1", "u1")] == T("2026-01-04") and ("a1", "u3") not in got
    # a2 converted on Sunday noon: seen at Saturday and Sunday 00:00 only
    assert {s for a, s in got if a == "a2"} == {"u1", "u2"}
    row = mid[(mid["account_id"] == "a0") & (mid["snapshot"] == "u3")].iloc[0]
    assert row["trial_days_elapsed"] == pytest.approx(2 + 8.5 / 24)
    assert row["trial_weekend_days_elapsed"] == pytest.approx(2.0)
