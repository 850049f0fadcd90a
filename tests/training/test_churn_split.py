"""The churn split is out of time: no training label looks into the validation or test period."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.split import build_churn_time_split


@pytest.mark.parametrize("horizon,months", [(90, 24), (30, 12)])
def test_churn_split_is_out_of_time_and_purged(horizon: int, months: int) -> None:
    rng = np.random.default_rng(horizon)
    starts = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 300, 200), unit="D")
    rows = [
        (f"c{i}", start + pd.Timedelta(days=30 * k), int(rng.random() < 0.1))
        for i, start in enumerate(starts)
        for k in range(1, months + 1)
    ]
    frame = pd.DataFrame(rows, columns=["account_id", "as_of", "label"])
    split = build_churn_time_split(
        frame, horizon_days=horizon, valid_fraction=0.15, test_fraction=0.15
    )
    train, valid, test = split.frames(frame)
    window = pd.Timedelta(days=horizon)
    assert (train["as_of"] + window).max() <= (valid["as_of"] + window).min()
    assert (valid["as_of"] + window).max() <= test["as_of"].min()
    assert test["as_of"].min() >= split.cut_test
    # Old accounts appear in train (old months) and test (new months): out of time, not by account.
    assert set(train["account_id"]) & set(test["account_id"])
    assert len(test) == pytest.approx(0.15 * len(frame), rel=0.1)


def test_churn_split_too_short_history_says_why() -> None:
    frame = pd.DataFrame(
        {"account_id": ["a", "b", "c"], "as_of": pd.to_datetime(["2024-01-01"] * 3), "label": 0}
    )
    with pytest.raises(ValueError, match="cannot be split out of time"):
        build_churn_time_split(frame, horizon_days=90, valid_fraction=0.15, test_fraction=0.15)
