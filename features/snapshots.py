"""Training sets: trials snapshotted at several days in, and paying accounts monthly.

Every snapshot row is built strictly from data before its ``as_of`` and labelled
only when its whole label window is known at export time (censored rows are left
out of training; they are the open trials that get scored).

- Trial snapshots: at each configured day into the trial (1, 3, 7, 14...), at
  trial end, and after it (``end_1d``, ``end_3d``, ``end_7d``... while inside the
  conversion window: most conversions land after trial end, and ``score`` and
  ``forecast`` meet trials in that state), for accounts not yet converted then.
  Label: the account converts from the snapshot until
  ``trial_end + conversion_window_days`` (it is still open at the snapshot), the
  very probability the forecast needs for a trial open at ``as_of``.
- Churn snapshots: every ``churn_snapshot_every_days`` after conversion while
  the account still pays. Label: it churns within ``churn_horizon_days``.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd

from features.build import FeatureBuilder
from features.event_index import NAT_SECONDS, SECONDS_PER_DAY, timestamp_seconds


class NoLabelledRowsError(ValueError):
    """A training set has no labelled row yet (no closed label window / horizon)."""


END = "end"


def converted_in_window(
    converted_at: np.ndarray, trial_end: np.ndarray, window_days: float
) -> np.ndarray:
    """The one label rule (training labels and lifecycle): converted at or before
    ``trial_end + window_days`` (the window is inclusive at its end; with a window
    of 0 a conversion exactly at trial end counts). Int64 seconds in, bools out."""
    conv = np.asarray(converted_at)
    limit = np.asarray(trial_end) + int(window_days * SECONDS_PER_DAY)
    return (conv != NAT_SECONDS) & (conv <= limit)


def label_window_closed(trial_end: np.ndarray, window_days: float, now: int) -> np.ndarray:
    """True where the whole (inclusive) label window lies strictly before ``now``:
    data holds only moments before the export, so a window ending at ``now`` is
    still open."""
    return np.asarray(trial_end) + int(window_days * SECONDS_PER_DAY) < now


def _export_seconds(builder: FeatureBuilder, export_time: pd.Timestamp | None) -> int:
    moment = pd.Timestamp(export_time) if export_time is not None else builder.tables.export_time()
    return timestamp_seconds(moment)


def random_shares(account_ids: pd.Index, k: int) -> np.ndarray:
    """A share in [0, 1) per account for random snapshot ``k``: a hash of the
    account id and ``k``, so an account's moments do not depend on the export."""
    keys = pd.Series(account_ids.astype(str)) + f"#r{k}"
    h = pd.util.hash_pandas_object(keys, index=False).to_numpy(dtype=np.uint64)
    return (h >> np.uint64(11)).astype(np.float64) / float(2**53)


def trial_snapshot_plan(
    builder: FeatureBuilder, export_time: pd.Timestamp | None = None, *, labelled: bool = True
) -> Iterator[tuple[str, float, np.ndarray, np.ndarray]]:
    """Yield ``(snapshot, day, account positions, as_of seconds)`` per snapshot.

    With ``labelled`` only rows whose label window has closed by ``export_time``.
    """
    idx = builder.index
    cfg = builder.config.trial
    now = _export_seconds(builder, export_time)
    start, end, conv = idx.trial_start, idx.trial_end, idx.converted_at
    known = (
        label_window_closed(end, cfg.conversion_window_days, now)
        if labelled
        else np.ones(len(start), dtype=bool)
    )
    if builder.tables.features is not None:  # snapshots from the company's feature table
        from features.feature_table import table_snapshot_plan

        yield from table_snapshot_plan(builder, now, known)
        return
    # (name, day into the trial or NaN, each account's as_of, must fall before trial end)
    nan = float("nan")
    plans: list[tuple[str, float, np.ndarray, bool]] = [
        (f"d{d}", float(d), start + int(d * SECONDS_PER_DAY), True) for d in cfg.snapshot_days
    ]
    plans.append((END, nan, end, False))
    # MLflow metric names allow no "+": end_1d, end_3d... days after trial end.
    plans += [(f"{END}_{k}d", nan, end + k * SECONDS_PER_DAY, False) for k in cfg.post_trial_days()]
    # Shares of the trial: the same phase of every trial, whatever its length.
    plans += [
        (f"p{round(x * 100)}", nan, start + ((end - start) * x).astype(np.int64), True)
        for x in cfg.snapshot_shares
    ]
    # Random moments of each trial's life (trial start to window end), per account.
    span = end + int(cfg.conversion_window_days * SECONDS_PER_DAY) - start
    plans += [
        (f"r{k}", nan, start + (span * random_shares(idx.account_ids, k)).astype(np.int64), False)
        for k in range(1, cfg.random_snapshots + 1)
    ]
    # The first midnights (00:00 UTC) after each start: where scheduled origins fall.
    first_midnight = (start // SECONDS_PER_DAY + 1) * SECONDS_PER_DAY
    plans += [
        (f"u{k}", nan, first_midnight + (k - 1) * SECONDS_PER_DAY, True)
        for k in range(1, cfg.midnight_snapshots + 1)
    ]
    for name, day, as_of, in_trial in plans:
        ok = known & ((conv == NAT_SECONDS) | (conv >= as_of)) & (as_of <= now)
        if in_trial:
            ok &= as_of < end  # later moments are covered by the trial-end snapshot
        positions = np.flatnonzero(ok)
        yield name, day, positions, as_of[positions]


def build_trial_training_set(
    builder: FeatureBuilder, *, export_time: pd.Timestamp | None = None
) -> pd.DataFrame:
    """Trial snapshots with features and the conversion label.

    Returns:
        One row per (account, snapshot): ``account_id``, ``snapshot`` (``d1``...
        ``end``, ``end_1d``, ``end_3d``...), ``snapshot_day`` (days into the trial), ``trial_start``,
        ``label`` (1 = converted within the window), ``as_of`` and the features.
    """
    idx = builder.index
    window_days = builder.config.trial.conversion_window_days
    parts = []
    for name, _day, positions, as_of in trial_snapshot_plan(builder, export_time):
        if len(positions) == 0:
            continue
        frame = builder.build(positions, as_of).reset_index()
        # Open at ``as_of`` (the plan keeps only those): converting before the
        # window closes is converting from now until then (one inclusive rule).
        label = converted_in_window(
            idx.converted_at[positions], idx.trial_end[positions], window_days
        )
        frame.insert(1, "snapshot", name)
        frame.insert(2, "snapshot_day", frame["trial_days_elapsed"].to_numpy())
        frame.insert(3, "trial_start", pd.to_datetime(idx.trial_start[positions], unit="s"))
        frame.insert(4, "label", label.astype(np.int8))
        parts.append(frame)
    if not parts:
        raise NoLabelledRowsError(
            "no trial has a closed label window at export time: nothing to train on "
            "(need trials that ended more than conversion_window_days before the export)"
        )
    return pd.concat(parts, ignore_index=True)


def build_churn_training_set(
    builder: FeatureBuilder, *, export_time: pd.Timestamp | None = None
) -> pd.DataFrame:
    """Monthly snapshots of paying accounts with the churn label.

    Returns:
        One row per (account, snapshot): ``account_id``, ``snapshot`` (``m1``,
        ``m2``... months since conversion), ``label`` (1 = churned within
        ``churn_horizon_days``), ``as_of`` and the features.
    """
    idx = builder.index
    cfg = builder.config.trial
    now = _export_seconds(builder, export_time)
    conv = idx.converted_at
    churned = idx.churned_at
    horizon = cfg.churn_horizon_days * SECONDS_PER_DAY
    step = cfg.churn_snapshot_every_days * SECONDS_PER_DAY
    paying = conv != NAT_SECONDS
    parts = []
    k = 1
    while True:
        as_of = conv + k * step
        still_paying = paying & ((churned == NAT_SECONDS) | (churned > as_of))
        ok = still_paying & (as_of + horizon <= now)
        if not (paying & (as_of + horizon <= now)).any():
            break
        positions = np.flatnonzero(ok)
        if len(positions):
            frame = builder.build(positions, as_of[positions]).reset_index()
            ch = churned[positions]
            label = (ch != NAT_SECONDS) & (ch <= as_of[positions] + horizon)
            frame.insert(1, "snapshot", f"m{k}")
            frame.insert(2, "label", label.astype(np.int8))
            parts.append(frame)
        k += 1
    if not parts:
        raise NoLabelledRowsError(
            "no paying account has a full churn horizon before the export: nothing to train on"
        )
    return pd.concat(parts, ignore_index=True)


#: Each model kind's labelled-snapshot builder, by kind name (``models.kinds``
#: declares the same builder on each ``ModelKind``).
TRAINING_SET_BUILDERS = {
    "conversion": build_trial_training_set,
    "churn": build_churn_training_set,
}


def select_open_trials(builder: FeatureBuilder, as_of: pd.Timestamp) -> np.ndarray:
    """Positions of accounts whose trial had started by ``as_of``, not yet converted,
    and that can still convert within their window (the trials a forecast covers)."""
    idx = builder.index
    t = timestamp_seconds(as_of)
    window = builder.config.trial.conversion_window_days * SECONDS_PER_DAY
    started = idx.trial_start < t
    not_converted = (idx.converted_at == NAT_SECONDS) | (idx.converted_at >= t)
    can_convert = idx.trial_end + window >= t  # the window is inclusive at its end
    return np.flatnonzero(started & not_converted & can_convert)
