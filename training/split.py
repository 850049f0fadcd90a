"""Time-ordered train / valid / test split by account.

Models are judged the way they are used: trained on older cohorts, scored on
newer ones. Accounts are ordered by when they entered the population (trial
start for conversion, first churn snapshot for churn), the oldest go to train,
the next ``valid_fraction`` to validation (early stopping and calibration) and
the newest ``test_fraction`` to the final test. All snapshots of one account
land in the same split, so no account's later rows leak into an earlier split.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from models.kinds import model_kind


@dataclass(frozen=True)
class Split:
    """Row positions of each part of a training frame.

    Attributes:
        train, valid, test: integer row positions (``iloc``) into the frame.
        cut_valid, cut_test: the entry time of the first account of the valid and
            test parts (for reports).
    """

    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    cut_valid: pd.Timestamp
    cut_test: pd.Timestamp

    def frames(self, frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        """The three parts of ``frame`` (fresh indexes)."""
        return tuple(  # type: ignore[return-value]
            frame.iloc[part].reset_index(drop=True) for part in (self.train, self.valid, self.test)
        )

    def sizes(self) -> dict[str, int]:
        """Row counts per part."""
        return {"train": len(self.train), "valid": len(self.valid), "test": len(self.test)}


def entry_time(frame: pd.DataFrame, kind: str) -> pd.Series:
    """When each account entered the population, indexed by ``account_id``.

    Conversion rows carry ``trial_start``; churn rows are ordered by the ``as_of``
    of the account's first snapshot (one churn period after conversion).
    """
    declared = model_kind(kind).entry_column
    column = declared if declared in frame.columns else "as_of"
    return pd.to_datetime(frame[column]).groupby(frame["account_id"].astype(str)).min()


def build_time_split(
    frame: pd.DataFrame,
    kind: str,
    *,
    valid_fraction: float,
    test_fraction: float,
) -> Split:
    """Split ``frame`` by account in time order: oldest train, then valid, newest test.

    Args:
        frame: a training set with ``account_id`` and ``trial_start`` (conversion)
            or ``as_of`` (churn).
        kind: ``"conversion"`` or ``"churn"``.
        valid_fraction, test_fraction: approximate shares of rows in valid and test
            (whole accounts are assigned, in time order).

    Returns:
        Row positions per part; every account is in exactly one part.

    Raises:
        ValueError: when there are too few accounts to give each part one.
    """
    entry = entry_time(frame, kind)
    rows = frame["account_id"].astype(str).value_counts()
    # Ties in time are broken by account id so the split is deterministic.
    order = pd.DataFrame(
        {
            "t": entry.to_numpy(),
            "id": entry.index.to_numpy(),
            "rows": rows.reindex(entry.index).to_numpy(),
        }
    ).sort_values(["t", "id"], kind="mergesort")
    n = len(order)
    # Cut on cumulative *rows* (each account placed by its middle row), so the
    # parts get about the requested share of rows even when newer accounts have
    # fewer snapshots (churn).
    counts = order["rows"].to_numpy(dtype=np.float64)
    middle = (np.cumsum(counts) - counts / 2) / counts.sum()
    part = np.where(
        middle < 1 - valid_fraction - test_fraction, 0, np.where(middle < 1 - test_fraction, 1, 2)
    )
    part = part.astype(np.int8)
    if n < 3 or not all((part == k).any() for k in (0, 1, 2)):
        raise ValueError(
            f"{n} account(s) cannot be split into train / valid / test "
            f"({valid_fraction:.0%} valid, {test_fraction:.0%} test); add more accounts"
        )
    n_train = int((part == 0).sum())
    n_valid = int((part == 1).sum())
    by_account = pd.Series(part, index=order["id"].to_numpy())
    row_part = by_account.reindex(frame["account_id"].astype(str).to_numpy()).to_numpy()
    times = order["t"].to_numpy()
    return Split(
        train=np.flatnonzero(row_part == 0),
        valid=np.flatnonzero(row_part == 1),
        test=np.flatnonzero(row_part == 2),
        cut_valid=pd.Timestamp(times[n_train]),
        cut_test=pd.Timestamp(times[n_train + n_valid]),
    )


def build_churn_time_split(
    frame: pd.DataFrame,
    *,
    horizon_days: float,
    valid_fraction: float,
    test_fraction: float,
) -> Split:
    """Out-of-time split of churn snapshots by time, with purged label windows.

    Paying accounts have a row every month for as long as they pay, so splitting
    by account lets an old account's rows run through the test period. Here rows
    are cut in time: the newest ``test_fraction`` of rows (by ``as_of``) are the
    test part. Of the rows whose whole label window (``as_of + horizon``) ends
    before the test period, those whose window ends last (about
    ``valid_fraction`` of all rows) are validation, the rest training. So no
    training or validation label looks into the test period, and no training
    label into the validation period's outcomes. Rows whose window straddles the
    test cut are left out of every part.

    Raises:
        ValueError: when a part ends up empty.
    """
    as_of = pd.to_datetime(frame["as_of"]).to_numpy()
    stamps = as_of.astype("datetime64[ns]").astype("int64")
    cut_test = int(np.quantile(stamps, 1 - test_fraction))
    ends = stamps + int(horizon_days * 86_400 * 10**9)
    eligible = np.flatnonzero(ends <= cut_test)
    test = np.flatnonzero(stamps >= cut_test)
    train = valid = np.array([], dtype=np.int64)
    cut_valid = cut_test
    if len(eligible):
        share = min(valid_fraction / max(len(eligible) / len(frame), 1e-9), 0.5)
        cut_valid = int(np.quantile(ends[eligible], 1 - share))
        train = eligible[ends[eligible] <= cut_valid]
        valid = eligible[ends[eligible] > cut_valid]
    if len(train) == 0 or len(valid) == 0 or len(test) == 0:
        raise ValueError(
            f"{len(frame)} churn rows cannot be split out of time into train / valid / test "
            f"with a {horizon_days:g}-day label window (train {len(train)}, valid {len(valid)}, "
            f"test {len(test)} rows); add more paying-customer history"
        )
    return Split(
        train=train,
        valid=valid,
        test=test,
        cut_valid=pd.Timestamp(cut_valid),
        cut_test=pd.Timestamp(cut_test),
    )


def split_training_frame(
    frame: pd.DataFrame,
    kind: str,
    *,
    valid_fraction: float,
    test_fraction: float,
    horizon_days: float | None = None,
) -> Split:
    """The one split rule of training and of the retraining holdout.

    Churn with a label horizon: out of time (``build_churn_time_split``);
    otherwise by account in time order (``build_time_split``).
    """
    if model_kind(kind).purged_split and horizon_days is not None:
        return build_churn_time_split(
            frame,
            horizon_days=horizon_days,
            valid_fraction=valid_fraction,
            test_fraction=test_fraction,
        )
    return build_time_split(frame, kind, valid_fraction=valid_fraction, test_fraction=test_fraction)


def split_for_config(frame: pd.DataFrame, kind: str, config: Any) -> Split:
    """``split_training_frame`` with the company's ``[model]`` fractions and churn
    horizon: the split every training engine makes."""
    return split_training_frame(
        frame,
        kind,
        valid_fraction=config.model.valid_fraction,
        test_fraction=config.model.test_fraction,
        horizon_days=config.trial.churn_horizon_days,
    )
