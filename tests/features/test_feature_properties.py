"""Hypothesis properties of the feature builder: shape, order-freedom, point-in-time."""

import numpy as np
import pandas as pd
from factories import START, make_accounts, make_config
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features.build import build_features
from features.spec import fit_feature_spec
from features.tables import Tables

VOCAB = ["setup", "core_a", "core_b", "invite", "view", "odd.Name-1"]
N_ACCOUNTS = 4
AS_OF = START + pd.Timedelta(days=10)

event_rows = st.lists(
    st.tuples(
        st.integers(0, N_ACCOUNTS - 1),
        st.sampled_from(["u1", "u2", None]),
        st.sampled_from(VOCAB),
        st.integers(-12 * 3600, 20 * 86400),  # seconds from trial start, some after as_of
    ),
    max_size=60,
)
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _tables(rows) -> Tables:
    frame = pd.DataFrame(rows, columns=["acc", "user_id", "event", "sec"])
    events = pd.DataFrame(
        {
            "account_id": [f"a{i}" for i in frame["acc"]],
            "user_id": frame["user_id"],
            "event": frame["event"],
            "timestamp": (START + pd.to_timedelta(frame["sec"], unit="s")).astype("datetime64[ns]"),
        }
    )
    return Tables(events=events, accounts=make_accounts(N_ACCOUNTS))


def _spec():
    # A fixed spec, so the compared builds have the same columns.
    everything = Tables(
        events=pd.DataFrame(
            {
                "event": VOCAB,
                "account_id": "a0",
                "user_id": None,
                "timestamp": pd.Series([START] * len(VOCAB), dtype="datetime64[ns]"),
            }
        ),
        accounts=make_accounts(N_ACCOUNTS),
    )
    return fit_feature_spec(everything, make_config())


def _build(tables):
    return build_features(tables, make_config(), AS_OF, spec=_spec())


@SETTINGS
@given(event_rows)
def test_one_row_per_account(rows):
    f = _build(_tables(rows))
    assert list(f.index) == [f"a{i}" for i in range(N_ACCOUNTS)]
    assert f.index.is_unique


@SETTINGS
@given(event_rows, st.randoms(use_true_random=False))
def test_event_order_does_not_matter(rows, rnd):
    shuffled = list(rows)
    rnd.shuffle(shuffled)
    pd.testing.assert_frame_equal(_build(_tables(rows)), _build(_tables(shuffled)))


@SETTINGS
@given(event_rows, event_rows)
def test_events_at_or_after_as_of_change_nothing(rows, extra):
    cutoff = int((AS_OF - START).total_seconds())
    # shift the extra events to at-or-after as_of
    late = [(a, u, e, cutoff + abs(s) % (10 * 86400)) for a, u, e, s in extra]
    before = _build(_tables(rows))
    after = _build(_tables(rows + late))
    pd.testing.assert_frame_equal(before, after)


@SETTINGS
@given(event_rows)
def test_counts_are_consistent(rows):
    f = _build(_tables(rows))
    # every event counted in a window is also counted in the longer windows
    assert (f["engagement_events_7d"] <= f["engagement_events_28d"]).all()
    assert (f["engagement_events_28d"] <= f["engagement_events_all"]).all()
    assert (f["engagement_active_days_all"] <= f["engagement_events_all"]).all()
    assert f["activation_rate_all"].between(0, 1).all()
    assert f["engagement_stickiness_7d"].between(0, 1).all()
    count_cols = [c for c in f.columns if c.startswith("count_")]
    assert (f[count_cols].sum(axis=1) <= f["engagement_events_all"]).all()
    n_before = sum(1 for _, _, _, s in rows if s < int((AS_OF - START).total_seconds()))
    assert f["engagement_events_all"].sum() == n_before
    assert np.isfinite(f["engagement_decayed_score"]).all()
