"""Each monitored trial scored once, at the same day into its trial, and its outcome so far.

Every trial is scored at ``scoring_day`` days after its start (the first
training snapshot day: the earliest the model speaks for a trial, and a moment
the model was trained and calibrated on) from the data known then. Its chance
to have converted *by* ``as_of`` follows from the learned timing law
(``serving.forecast.timing``): a trial scored open at day ``d`` with
probability ``p`` converts by day ``a`` with chance

    q = p (F(tau(a)) - F(tau(d))) / S(tau(d))

where ``F`` is the converters' normalised conversion-time distribution and
``S = 1 - F``. Summed over a cohort, ``q`` is the number of conversions
expected so far; the conversions that happened in ``[scored, as_of)`` are the
realised ones. Once the window has closed, ``q = p``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.build import FeatureBuilder
from features.event_index import NAT_SECONDS, SECONDS_PER_DAY, timestamp_seconds
from models.artifact import TrialcastModel
from serving.forecast.timing import ConversionTiming, compute_tau
from trialcast.monitoring.spread import respread_for_estimate

#: Trials whose scoring moment fell before this many days before the training
#: export are the reference (training window) for drift.
REFERENCE_DAYS = 84
#: Trials whose window closed before the training export, started at most this
#: many days before it, recalibrate the champion at the scoring day.
CALIBRATION_DAYS = 182
#: Fewer calibration trials or conversions than these: no recalibration.
MIN_CALIBRATION_TRIALS, MIN_CALIBRATION_POSITIVES = 300, 30


@dataclass(frozen=True)
class ScoredTrials:
    """One row per trial scored at its scoring day.

    Attributes:
        frame: ``account_id``, ``trial_start``, ``cohort`` (Monday of the signup
            week), ``scored_at``, ``p`` (calibrated chance to convert from then
            until the window closes), ``q`` (chance to have converted by
            ``as_of``), ``y`` (converted in ``[scored_at, as_of)`` within the
            window), ``matured`` (window closed before ``as_of``), ``reference``
            (scored inside the training window), ``monitored`` (started at or
            after the training export), ``calibration`` (window closed before the
            training export; they rescale ``p``, see ``recalibrate``),
            ``out_of_sample`` (started from the champion's validation part on,
            before its training export, and matured by ``as_of``: never fitted
            by the booster, outcomes known; they correct the estimate's spread,
            see ``monitoring.spread``), ``p_champion`` (the champion's own
            probability) and ``share`` (``q / p``).
        features: the feature rows behind ``p`` (indexed by ``account_id``).
    """

    frame: pd.DataFrame
    features: pd.DataFrame


def week_start(times: pd.Series) -> pd.Series:
    """Monday 00:00 of each timestamp's week (the weekly signup cohort)."""
    t = pd.to_datetime(times)
    return (t.dt.normalize() - pd.to_timedelta(t.dt.day_of_week, unit="D")).rename("cohort")


def score_trials(
    builder: FeatureBuilder,
    model: TrialcastModel,
    timing: ConversionTiming,
    *,
    as_of: pd.Timestamp,
    trained_at: pd.Timestamp,
    scoring_day: float,
    unfitted_from: pd.Timestamp | None = None,
) -> ScoredTrials:
    """Score the reference trials and every trial started since ``trained_at``.

    With ``unfitted_from`` (the champion's validation start) also the trials
    started from then until ``trained_at`` whose windows closed by ``as_of``
    (``out_of_sample``). Only trials whose scoring moment is before ``as_of`` and that had not
    converted by then are scored (a trial converted on day 0 is not at risk).
    """
    idx = builder.index
    now = timestamp_seconds(as_of)
    trained = timestamp_seconds(trained_at)
    window = builder.config.trial.conversion_window_days
    start, end, conv = idx.trial_start, idx.trial_end, idx.converted_at
    scored_at = start + int(scoring_day * SECONDS_PER_DAY)
    open_then = (conv == NAT_SECONDS) | (conv >= scored_at)
    reference = (scored_at < trained) & (scored_at >= trained - REFERENCE_DAYS * SECONDS_PER_DAY)
    monitored = start >= trained
    closed_then = end + int(window * SECONDS_PER_DAY) < trained
    calibration = closed_then & (start >= trained - CALIBRATION_DAYS * SECONDS_PER_DAY)
    unfitted = (
        (start >= timestamp_seconds(unfitted_from)) & ~monitored
        if unfitted_from is not None
        else np.zeros(len(start), dtype=bool)
    )
    unfitted &= end + int(window * SECONDS_PER_DAY) < now
    keep = np.flatnonzero(
        open_then & (scored_at < now) & (reference | monitored | calibration | unfitted)
    )
    features = builder.build(keep, scored_at[keep])
    p = model.predict_proba(features) if len(keep) else np.zeros(0)
    length = (end[keep] - start[keep]) / SECONDS_PER_DAY
    closes = end[keep] + int(window * SECONDS_PER_DAY)
    days_now = (np.minimum(now, closes) - start[keep]) / SECONDS_PER_DAY
    f_then = timing.below(compute_tau(np.full(len(keep), scoring_day), length, window))
    f_now = timing.below(compute_tau(days_now, length, window))
    surv = np.maximum(1.0 - f_then, 1e-12)
    matured = closes < now
    share = np.where(matured, 1.0, np.clip((f_now - f_then) / surv, 0.0, 1.0))
    c = conv[keep]
    y = (c != NAT_SECONDS) & (c < now) & (c <= closes)
    frame = judged_frame(
        {
            "account_id": idx.account_ids[keep].astype(str),
            "trial_start": pd.to_datetime(start[keep], unit="s"),
            "scored_at": pd.to_datetime(scored_at[keep], unit="s"),
        },
        p=np.asarray(p, dtype=np.float64),
        share=share,
        y=y,
        masks={
            "matured": matured,
            "reference": reference[keep],
            "monitored": monitored[keep],
            "calibration": calibration[keep],
            "out_of_sample": unfitted[keep],
        },
    )
    return ScoredTrials(frame=frame, features=features)


def judged_frame(
    identity: dict[str, object],
    *,
    p: np.ndarray,
    share: np.ndarray,
    y: np.ndarray,
    masks: dict[str, np.ndarray],
) -> pd.DataFrame:
    """The rows the monitor judges (``ScoredTrials.frame``), from any model kind's scoring:
    ``identity`` columns (with ``scored_at``), ``p``, ``q = p share``, ``y``, the row
    masks, ``cohort`` (Monday of ``trial_start``'s week, else ``scored_at``'s), then
    the outcome test's rescaling (``recalibrate``) and the estimate's re-spread
    (``monitoring.spread``)."""
    frame = pd.DataFrame(
        {
            **identity,
            "p": p,
            "q": p * share,
            "y": np.asarray(y).astype(np.int8),
            "share": share,
            **masks,
        }
    )
    when = frame["trial_start"] if "trial_start" in frame else frame["scored_at"]
    frame.insert(1, "cohort", week_start(when).to_numpy())
    frame["p_champion"] = frame["p"]
    return respread_for_estimate(recalibrate(frame))


def recalibrate(frame: pd.DataFrame) -> pd.DataFrame:
    """Platt-rescale ``p`` (and ``q``) on the calibration trials' known outcomes.

    The champion is calibrated over all its training snapshots pooled; at one
    snapshot day its slope and level can be off, which a shift in the mix of
    trials would turn into a false outcome alarm. The trials of the 26 weeks
    before the training export whose windows had closed by then (outcomes known
    then, nothing later used) fit ``p' = sigmoid(a logit(p) + b)`` at the
    scoring day. Too few: unchanged. Most of them were training trials, where a
    model looks sharper than it is, so the rescaled ``p`` serves the outcome
    test only; the estimated AUC keeps the champion's own ``p_champion``.
    """
    from training.model import fit_platt

    cal = frame["calibration"].to_numpy()
    y = frame["y"].to_numpy()
    if cal.sum() < MIN_CALIBRATION_TRIALS or y[cal].sum() < MIN_CALIBRATION_POSITIVES:
        return frame
    p = np.clip(frame["p"].to_numpy(dtype=np.float64), 1e-9, 1 - 1e-9)
    logit = np.log(p / (1 - p))
    a, b = fit_platt(logit[cal], y[cal])
    out = frame.copy()
    out["p_champion"] = frame["p"]
    out["p"] = 1.0 / (1.0 + np.exp(-(a * logit + b)))
    out["q"] = out["p"] * out["share"]
    out.attrs["recalibration"] = {"a": float(a), "b": float(b), "trials": int(cal.sum())}
    return out
