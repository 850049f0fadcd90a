"""The churn champion's rows for the monitor: paying accounts at their monthly snapshots.

The churn model speaks for a paying account at a monthly snapshot (every
``churn_snapshot_every_days`` after conversion, while it pays): ``p`` is its
chance to churn within ``churn_horizon_days``. The monitor scores, from the
data known at ``as_of``:

- **monitored** rows: snapshots at or after the champion's training export,
  one in every ``ceil(horizon / step)`` of an account's snapshots from its
  first one then on, so one account's label windows never overlap (a churn
  counts once; a later window exists only if the account survived the
  earlier one, so the likelihood factorises as the outcome test assumes);
- **reference** rows: every snapshot in the ``REFERENCE_DAYS`` before the
  export (the training window, for drift);
- **calibration** rows: snapshots whose horizon closed before the export,
  from the ``CALIBRATION_DAYS`` before it (``scoring.recalibrate``), which
  also give the timing law below;
- **out_of_sample** rows: snapshots from the champion's held-out test part on
  (``data_test_from``: never fitted, nor calibrated on) and before the export,
  whose horizon closed by ``as_of`` (``spread.respread_for_estimate``).

Outcomes so far: a snapshot's churn lands by ``as_of`` with chance
``q = p F(elapsed / horizon)``, ``F`` the share of churners (within the
horizon) that had churned by that share of it, learned from the calibration
rows (uniform when fewer than ``MIN_TIMING_CHURNERS``). The rows come out in
the frame ``trialcast.monitoring.scoring.ScoredTrials`` describes (``cohort``
= Monday of the snapshot's week), so the conversion champion's outcome test,
estimate and drift judge them unchanged.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from features.build import FeatureBuilder
from features.event_index import NAT_SECONDS, SECONDS_PER_DAY, timestamp_seconds
from models.artifact import TrialcastModel
from trialcast.monitoring.scoring import (
    CALIBRATION_DAYS,
    REFERENCE_DAYS,
    ScoredTrials,
    judged_frame,
)

#: Fewer churners with a closed horizon than this: the timing law is uniform.
MIN_TIMING_CHURNERS = 20


def churn_timing(delays: np.ndarray) -> np.ndarray:
    """Sorted shares of the horizon at which churners churned (the law ``F``'s sample);
    empty when too few (``landed_share`` then assumes a uniform law)."""
    d = np.sort(np.clip(np.asarray(delays, dtype=np.float64), 0.0, 1.0))
    return d if len(d) >= MIN_TIMING_CHURNERS else np.zeros(0)


def landed_share(law: np.ndarray, elapsed: np.ndarray) -> np.ndarray:
    """``F(elapsed)``: share of a horizon's churns landed after ``elapsed`` (share of it)."""
    x = np.clip(np.asarray(elapsed, dtype=np.float64), 0.0, 1.0)
    if len(law) == 0:
        return x
    return np.searchsorted(law, x, side="right") / len(law)


def _snapshots(builder: FeatureBuilder, now: int) -> pd.DataFrame:
    """Every monthly snapshot before ``now`` of an account still paying then."""
    idx = builder.index
    cfg = builder.config.trial
    step = cfg.churn_snapshot_every_days * SECONDS_PER_DAY
    conv, churned = idx.converted_at, idx.churned_at
    paying = np.flatnonzero(conv != NAT_SECONDS)
    parts = []
    k = 1
    while True:
        at = conv[paying] + k * step
        if not (at < now).any():
            break
        ch = churned[paying]
        ok = (at < now) & ((ch == NAT_SECONDS) | (ch > at))
        parts.append(pd.DataFrame({"pos": paying[ok], "k": k, "at": at[ok], "churned": ch[ok]}))
        k += 1
    if parts:
        return pd.concat(parts, ignore_index=True)
    empty = np.zeros(0, dtype=np.int64)
    return pd.DataFrame({"pos": empty, "k": empty, "at": empty, "churned": empty})


def score_paying(
    builder: FeatureBuilder,
    model: TrialcastModel,
    *,
    as_of: pd.Timestamp,
    trained_at: pd.Timestamp,
    unfitted_from: pd.Timestamp | None = None,
) -> ScoredTrials:
    """Score the churn champion's monitored, reference, calibration and out-of-sample
    snapshots (module docstring); ``unfitted_from`` is its test part's start."""
    cfg = builder.config.trial
    now, trained = timestamp_seconds(as_of), timestamp_seconds(trained_at)
    horizon = cfg.churn_horizon_days * SECONDS_PER_DAY
    every = max(1, math.ceil(cfg.churn_horizon_days / cfg.churn_snapshot_every_days))
    snaps = _snapshots(builder, now)
    at, closes = snaps["at"].to_numpy(), snaps["at"].to_numpy() + horizon
    after = at >= trained
    first = snaps["k"].where(after).groupby(snaps["pos"]).transform("min").to_numpy()
    monitored = after & ((snaps["k"].to_numpy() - np.nan_to_num(first)) % every == 0)
    reference = (at < trained) & (at >= trained - REFERENCE_DAYS * SECONDS_PER_DAY)
    calibration = (closes < trained) & (at >= trained - CALIBRATION_DAYS * SECONDS_PER_DAY)
    unfitted = np.zeros(len(at), dtype=bool)
    if unfitted_from is not None:
        unfitted = (at >= timestamp_seconds(unfitted_from)) & ~after & (closes < now)
    keep = np.flatnonzero(monitored | reference | calibration | unfitted)
    rows = snaps.iloc[keep]
    at, closes = at[keep], closes[keep]
    pos = rows["pos"].to_numpy()
    # One build per snapshot number (an account appears once in each; rows are in k order).
    ks = rows["k"].to_numpy()
    features = pd.concat(
        [builder.build(pos[ks == k], at[ks == k]) for k in np.unique(ks)]
        or [builder.build(pos, at)]
    )
    p = model.predict_proba(features) if len(keep) else np.zeros(0)
    ch = rows["churned"].to_numpy()
    churns = (ch != NAT_SECONDS) & (ch <= closes)
    y = churns & (ch < now)
    known = calibration[keep] & churns
    law = churn_timing((ch[known] - at[known]) / horizon)
    share = np.where(closes < now, 1.0, landed_share(law, (now - at) / horizon))
    frame = judged_frame(
        {
            "account_id": builder.index.account_ids[pos].astype(str),
            "scored_at": pd.to_datetime(at, unit="s"),
        },
        p=np.asarray(p, dtype=np.float64),
        share=share,
        y=y,
        masks={
            "matured": closes < now,
            "reference": reference[keep],
            "monitored": monitored[keep],
            "calibration": calibration[keep],
            "out_of_sample": unfitted[keep],
        },
    )
    return ScoredTrials(frame=frame, features=features)
