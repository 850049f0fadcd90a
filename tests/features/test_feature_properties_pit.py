"""Hypothesis properties of point in time beyond events: messages, account attributes, exclusions."""

from __future__ import annotations

import pandas as pd
from factories import START, make_accounts, make_config
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features.build import build_features, feature_columns
from features.spec import fit_feature_spec
from features.tables import Tables

N_ACCOUNTS = 3
AS_OF = START + pd.Timedelta(days=8)
CUTOFF = int((AS_OF - START).total_seconds())
SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])

messages = st.lists(
    st.tuples(
        st.integers(0, N_ACCOUNTS - 1),
        st.integers(-3600, 20 * 86400),
        st.sampled_from(["inbound", "outbound"]),
        st.sampled_from(["email", "chat", "call", "meeting", "ticket", "in_app"]),
        st.one_of(st.none(), st.floats(-1, 1)),
    ),
    max_size=30,
)
EVENTS = pd.DataFrame(
    {
        "account_id": ["a0", "a0", "a1", "a2"],
        "user_id": ["u1", "u2", "u3", None],
        "event": ["setup", "core_a", "invite", "view"],
        "timestamp": [START + pd.Timedelta(days=d) for d in (0.5, 1, 2, 3)],
    }
).astype({"timestamp": "datetime64[ns]"})


def _comms(rows: list) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["acc", "sec", "direction", "channel", "sentiment"])
    return pd.DataFrame(
        {
            "account_id": [f"a{i}" for i in frame["acc"]],
            "timestamp": (START + pd.to_timedelta(frame["sec"], unit="s")).astype("datetime64[ns]"),
            "direction": frame["direction"],
            "channel": frame["channel"],
            "sentiment": frame["sentiment"].astype(float),
        }
    )


def _config(**kw: object):
    return make_config(
        firmographics={
            "numeric": ["size"],
            "categorical": ["plan"],
            "known_at": {"plan": "current"},
        },
        leakage={"exclude_events": ["setup"]},
        **kw,
    )


def _build(events: pd.DataFrame, accounts: pd.DataFrame, comms: pd.DataFrame) -> pd.DataFrame:
    tables = Tables(events=events, accounts=accounts, communications=comms)
    spec = fit_feature_spec(Tables(events=EVENTS, accounts=make_accounts(N_ACCOUNTS)), _config())
    frame = build_features(tables, _config(), AS_OF, spec=spec)
    return frame[feature_columns(frame)]


@SETTINGS
@given(messages, messages)
def test_messages_at_or_after_as_of_change_nothing(rows: list, extra: list) -> None:
    late = [(a, CUTOFF + abs(s) % (5 * 86400), d, c, x) for a, s, d, c, x in extra]
    accounts = make_accounts(N_ACCOUNTS)
    before = _build(EVENTS, accounts, _comms(rows))
    after = _build(EVENTS, accounts, _comms(rows + late))
    pd.testing.assert_frame_equal(before, after)


@SETTINGS
@given(
    messages,
    st.lists(st.sampled_from(["team", "starter", None, "enterprise"]), min_size=3, max_size=3),
    st.lists(st.integers(0, 40 * 86400), min_size=3, max_size=3),
    st.lists(st.one_of(st.none(), st.floats(0, 1e5)), min_size=3, max_size=3),
)
def test_current_attributes_and_later_outcomes_change_no_trial_feature(
    rows: list, plans: list, conv_sec: list, mrr: list
) -> None:
    base = make_accounts(N_ACCOUNTS)
    changed = base.copy()
    changed["plan"] = plans  # declared known_at = "current": never a feature
    later = [START + pd.Timedelta(seconds=CUTOFF + s) for s in conv_sec]  # after as_of
    changed["converted_at"] = pd.Series(later, dtype="datetime64[ns]")
    changed["mrr"] = pd.Series(mrr, dtype=float)
    before = _build(EVENTS, base, _comms(rows))
    after = _build(EVENTS, changed, _comms(rows))
    assert "firmo_plan" not in before.columns
    pd.testing.assert_frame_equal(before, after)


@SETTINGS
@given(st.lists(st.tuples(st.integers(0, N_ACCOUNTS - 1), st.integers(0, 7 * 86400)), max_size=40))
def test_excluded_events_change_no_feature(extra: list) -> None:
    added = pd.DataFrame(
        {
            "account_id": [f"a{a}" for a, _ in extra],
            "user_id": "u9",
            "event": "setup",
            "timestamp": [START + pd.Timedelta(seconds=s) for _, s in extra],
        }
    ).astype({"timestamp": "datetime64[ns]"})
    accounts = make_accounts(N_ACCOUNTS)
    clean = EVENTS[EVENTS["event"] != "setup"].reset_index(drop=True)
    before = _build(clean, accounts, _comms([]))
    after = _build(pd.concat([EVENTS, added], ignore_index=True), accounts, _comms([]))
    pd.testing.assert_frame_equal(before, after)
