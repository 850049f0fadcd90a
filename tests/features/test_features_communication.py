"""Communication features checked by hand."""

import numpy as np
import pandas as pd
import pytest
from factories import T, make_config, make_tables

from features.build import build_features


def _comms():
    rows = [
        ("a0", "2026-01-02 09:00", "outbound", "email", np.nan),
        ("a0", "2026-01-02 13:00", "inbound", "email", 0.6),  # reply after 4 h
        ("a0", "2026-01-04 09:00", "outbound", "email", np.nan),  # never answered in 72 h
        ("a0", "2026-01-09 09:00", "inbound", "ticket", -0.8),  # 5 days later: not a reply
        ("a0", "2026-01-10 09:00", "outbound", "call", np.nan),
        ("a0", "2026-01-10 11:00", "inbound", "chat", -0.1),  # reply after 2 h
        ("a0", "2026-01-20 09:00", "inbound", "email", 1.0),  # after as_of
        ("a1", "2026-01-03 09:00", "inbound", "meeting", np.nan),
    ]
    frame = pd.DataFrame(
        rows, columns=["account_id", "timestamp", "direction", "channel", "sentiment"]
    )
    frame["timestamp"] = pd.to_datetime(frame["timestamp"]).astype("datetime64[ns]")
    return frame


def test_reply_rate_latency_tickets_and_tone():
    tables = make_tables([("a0", "u1", "view", "2026-01-02")], communications=_comms())
    f = build_features(tables, make_config(), T("2026-01-15"))
    a0, a1 = f.loc["a0"], f.loc["a1"]
    assert a0["comm_inbound_all"] == 3 and a0["comm_outbound_all"] == 3
    assert a0["comm_reply_rate_all"] == pytest.approx(2 / 3)
    assert a0["comm_reply_latency_median_hours"] == pytest.approx(3.0)  # median of 4 h and 2 h
    assert a0["comm_tickets_all"] == 1
    assert a0["comm_meetings_all"] == 1  # the call
    assert a0["comm_sentiment_mean_all"] == pytest.approx((0.6 - 0.8 - 0.1) / 3)
    assert a0["comm_sentiment_min_all"] == pytest.approx(-0.8)
    assert a0["comm_negative_share_all"] == pytest.approx(1 / 3)
    assert a0["comm_inbound_7d"] == 2  # Jan 9 and Jan 10
    # a1: one meeting, no outreach, no tone
    assert a1["comm_meetings_all"] == 1 and np.isnan(a1["comm_reply_rate_all"])
    assert np.isnan(a1["comm_sentiment_mean_all"])


def test_reply_after_as_of_does_not_count():
    tables = make_tables([("a0", "u1", "view", "2026-01-02")], communications=_comms())
    f = build_features(tables, make_config(), T("2026-01-02 12:00"))
    assert f.loc["a0", "comm_outbound_all"] == 1
    assert f.loc["a0", "comm_reply_rate_all"] == 0


def test_without_communications_columns_exist_and_are_empty():
    f = build_features(
        make_tables([("a0", "u1", "view", "2026-01-02")]), make_config(), T("2026-01-15")
    )
    assert (f["comm_inbound_all"] == 0).all()
    assert f["comm_reply_rate_all"].isna().all()
