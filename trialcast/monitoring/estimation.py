"""Performance per cohort: realised once it matured, estimated from probabilities before.

The estimate is confidence-based (NannyML's CBPE idea): if the probabilities
are calibrated, each trial's outcome is a Bernoulli(p) draw, so the ROC AUC the
cohort *will* show is the AUC of outcomes drawn that way. ``ESTIMATE_DRAWS``
draws (seeded, so runs repeat exactly) give its mean and a 90% interval. It
cannot see a change in what the same behaviour converts to (the pricing case):
that is the outcome test's job (``monitoring.outcomes``). Once a cohort
matures, the estimate sits beside the realised figure and its error is kept.

A weekly cohort of ~125 trials has a realised AUC whose own sampling spread is
about 0.04, so its error mostly measures that noise. ``estimation_summary``
therefore also judges the estimate on larger groups of matured cohorts: by
calendar month of the cohort and pooled over all of them, and sets the
per-cohort error beside the error sampling alone would give (the mean absolute
deviation of the draws from their mean).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from training.metrics import expected_calibration_error, log_loss, roc_auc

ESTIMATE_DRAWS = 400
#: A cohort needs this many trials and both outcomes to have an AUC.
MIN_TRIALS = 30


def _auc_draws(p: np.ndarray, seed: int) -> np.ndarray:
    """ROC AUC of ``ESTIMATE_DRAWS`` outcome sets drawn from calibrated ``p``."""
    rng = np.random.default_rng(seed)
    ranks = pd.Series(p).rank(method="average").to_numpy()
    draws = rng.random((ESTIMATE_DRAWS, len(p))) < p[None, :]
    n1 = draws.sum(axis=1)
    n0 = len(p) - n1
    ok = (n1 > 0) & (n0 > 0)
    return (draws @ ranks - n1 * (n1 + 1) / 2.0)[ok] / (n1 * n0)[ok]


def estimate_auc(p: np.ndarray, *, seed: int = 0) -> tuple[float, float, float]:
    """Expected ROC AUC under calibrated ``p`` and its 5-95% interval (NaN if too few)."""
    p = np.asarray(p, dtype=np.float64)
    if len(p) < MIN_TRIALS:
        return (float("nan"),) * 3  # type: ignore[return-value]
    auc = _auc_draws(p, seed)
    if len(auc) == 0:
        return (float("nan"),) * 3  # type: ignore[return-value]
    low, high = np.quantile(auc, [0.05, 0.95])
    return float(auc.mean()), float(low), float(high)


def _probabilities(part: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The champion's own ``p`` (realised figures) and the estimate's (``p_estimate``:
    re-spread out of sample, ``monitoring.spread``; else the champion's)."""
    p = part["p_champion" if "p_champion" in part else "p"].to_numpy(dtype=np.float64)
    est = part["p_estimate"].to_numpy(dtype=np.float64) if "p_estimate" in part else p
    return p, est


def cohort_performance(frame: pd.DataFrame) -> pd.DataFrame:
    """Per cohort: estimated AUC (with interval); realised AUC, log loss, ECE once matured."""
    rows = []
    for cohort, part in frame.groupby("cohort", sort=True):
        p, p_est = _probabilities(part)
        est, low, high = estimate_auc(
            p_est, seed=int(pd.Timestamp(str(cohort)).value // 10**9) % 2**31
        )
        row: dict[str, object] = {
            "cohort": cohort,
            "auc_estimated": est,
            "auc_estimated_low": low,
            "auc_estimated_high": high,
        }
        y = part["y"].to_numpy()
        matured = bool(part["matured"].all())
        if matured and len(part) >= MIN_TRIALS and 0 < y.sum() < len(y):
            row.update(
                {
                    "auc_realised": roc_auc(y, p),
                    "log_loss": log_loss(y, p),
                    "ece": expected_calibration_error(y, p, n_bins=10),
                    "observed_rate": float(y.mean()),
                    "expected_rate": float(p.mean()),
                }
            )
            row["auc_error"] = est - float(row["auc_realised"])  # type: ignore[arg-type]
        rows.append(row)
    return pd.DataFrame(rows)


def _group_error(part: pd.DataFrame, seed: int) -> tuple[float, float, float, int]:
    """Estimated and realised AUC of one group of matured trials, and the draws' noise."""
    p, p_est = _probabilities(part)
    y = part["y"].to_numpy()
    if len(p) < MIN_TRIALS or not 0 < y.sum() < len(y):
        return float("nan"), float("nan"), float("nan"), len(p)
    draws = _auc_draws(p_est, seed)
    est = float(draws.mean())
    return est, roc_auc(y, p), float(np.abs(draws - est).mean()), len(p)


def estimation_summary(frame: pd.DataFrame) -> dict[str, float | int | None]:
    """The estimate's error on matured cohorts: weekly, monthly, pooled, and its noise.

    Keys: ``weekly_mean_abs``, ``weekly_bias`` and ``weekly_noise_mean_abs`` (the
    mean |error| calibrated outcomes alone would give), ``weekly_cohorts``;
    ``monthly_mean_abs``, ``monthly_bias``, ``monthly_noise_mean_abs``,
    ``monthly_cohorts`` (cohorts grouped by the calendar month they start in;
    a month counts once all its cohorts matured); ``pooled_estimated``,
    ``pooled_realised``, ``pooled_error``, ``pooled_noise`` and
    ``pooled_trials`` (all matured cohorts' trials together). ``None`` where
    there is nothing to judge.
    """
    out: dict[str, float | int | None] = {}
    if frame.empty:
        return out
    matured = frame.groupby("cohort")["matured"].transform("all").to_numpy(dtype=bool)
    done = frame[matured]
    month = pd.to_datetime(frame["cohort"]).dt.to_period("M")
    whole = frame.assign(month=month).groupby("month")["matured"].all()
    groups = {
        "weekly": [(i, g) for i, (_, g) in enumerate(done.groupby("cohort", sort=True))],
        "monthly": [
            (i, g)
            for i, (m, g) in enumerate(done.assign(month=month[matured]).groupby("month"))
            if bool(whole.get(m, False))
        ],
    }
    for name, parts in groups.items():
        rows = [_group_error(g, seed=i) for i, g in parts]
        rows = [r for r in rows if np.isfinite(r[1])]
        err = np.array([r[0] - r[1] for r in rows])
        out[f"{name}_cohorts"] = len(rows)
        out[f"{name}_mean_abs"] = float(np.abs(err).mean()) if len(rows) else None
        out[f"{name}_bias"] = float(err.mean()) if len(rows) else None
        out[f"{name}_noise_mean_abs"] = float(np.mean([r[2] for r in rows])) if rows else None
    est, real, noise, n = _group_error(done, seed=0)
    ok = np.isfinite(real)
    out.update(
        {
            "pooled_estimated": est if ok else None,
            "pooled_realised": real if ok else None,
            "pooled_error": est - real if ok else None,
            "pooled_noise": noise if ok else None,
            "pooled_trials": n,
        }
    )
    return out
