"""The served record (one account's raw rows) and the batch feature row agree, on a Saturday."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.build import FeatureBuilder
from features.config import load_demo_config
from serving.online_features import build_account_features

WEEKEND = ["trial_weekend_days_elapsed", "trial_weekend_share_elapsed", "trial_weekend_days_2d"]


def _rows(frame: pd.DataFrame) -> list[dict]:
    out = frame.astype(object).where(frame.notna(), None).to_dict("records")
    return [
        {k: (str(v) if k in ("event", "user_id") and v is not None else v) for k, v in r.items()}
        for r in out
    ]


def test_served_record_equals_the_batch_row_when_scored_on_a_saturday(demo_small) -> None:
    tables, config = demo_small.tables, load_demo_config()
    builder = FeatureBuilder.from_tables(tables, config)
    acc = tables.accounts
    as_of = pd.Timestamp("2026-03-07 15:00")  # a Saturday (UTC)
    assert as_of.day_of_week == 5
    # trials started in the 12 days before: some span a weekend, some start on it
    recent = acc[(acc["trial_start"] < as_of) & (acc["trial_start"] > as_of - pd.Timedelta("12D"))]
    picked = recent.sort_values("trial_start").iloc[:: max(1, len(recent) // 6)].head(6)
    assert len(picked) >= 4
    ids = pd.Index(picked["account_id"].astype(str))
    batch = builder.build(builder.positions(ids), np.full(len(ids), as_of.value // 10**9))
    batch = batch.drop(columns=["as_of"])
    weekends = []
    for i, account_id in enumerate(ids):
        account = acc[acc["account_id"].astype(str) == account_id].iloc[0].to_dict()
        events = tables.events[tables.events["account_id"].astype(str) == account_id]
        comms = tables.communications[tables.communications["account_id"] == account_id]
        record, _ = build_account_features(
            config,
            builder.spec,
            account,
            _rows(events.drop(columns=["account_id"])),
            _rows(comms.drop(columns=["account_id"])),
            as_of,
        )
        row = batch.iloc[i]
        for name in WEEKEND:
            assert record[name] == pytest.approx(row[name], abs=1e-12), (account_id, name)
        for name, value in record.items():  # and every other input, too
            want = row[name]
            if value is None:
                assert pd.isna(want), (account_id, name)
            elif isinstance(value, float | int | np.number):
                assert value == pytest.approx(float(want), rel=1e-12, abs=1e-12), (account_id, name)
            else:
                assert str(value) == str(want), (account_id, name)
        weekends.append(record["trial_weekend_days_elapsed"])
    # both kinds were compared: started this week (only this Saturday so far, 0.625 days)
    # and spanning last weekend too (2.625 days)
    assert min(weekends) < 1 and max(weekends) > 2
