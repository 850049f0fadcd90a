"""Performance per cohort: realised once it matured, estimated from probabilities before.

The estimate is confidence-based (NannyML's CBPE idea): if the probabilities
are calibrated, each trial's outcome is a Bernoulli(p) draw, so the ROC AUC the
cohort *will* show is the AUC of outcomes drawn that way. ``ESTIMATE_DRAWS``
draws (seeded, so runs repeat exactly) give its mean and a 90% interval. It
cannot see a change in what the same behaviour converts to (the pricing case):
that is the outcome test's job (``monitoring.outcomes``). Once a cohort
matures, the estimate sits beside the realised figure and its error is kept.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from training.metrics import expected_calibration_error, log_loss, roc_auc

ESTIMATE_DRAWS = 400
#: A cohort needs this many trials and both outcomes to have an AUC.
MIN_TRIALS = 30


def estimate_auc(p: np.ndarray, *, seed: int = 0) -> tuple[float, float, float]:
    """Expected ROC AUC under calibrated ``p`` and its 5-95% interval (NaN if too few)."""
    p = np.asarray(p, dtype=np.float64)
    if len(p) < MIN_TRIALS:
        return (float("nan"),) * 3  # type: ignore[return-value]
    rng = np.random.default_rng(seed)
    ranks = pd.Series(p).rank(method="average").to_numpy()
    draws = rng.random((ESTIMATE_DRAWS, len(p))) < p[None, :]
    n1 = draws.sum(axis=1)
    n0 = len(p) - n1
    ok = (n1 > 0) & (n0 > 0)
    auc = (draws @ ranks - n1 * (n1 + 1) / 2.0)[ok] / (n1 * n0)[ok]
    if len(auc) == 0:
        return (float("nan"),) * 3  # type: ignore[return-value]
    low, high = np.quantile(auc, [0.05, 0.95])
    return float(auc.mean()), float(low), float(high)


def cohort_performance(frame: pd.DataFrame) -> pd.DataFrame:
    """Per cohort: estimated AUC (with interval); realised AUC, log loss, ECE once matured."""
    rows = []
    for cohort, part in frame.groupby("cohort", sort=True):
        p = part["p_champion" if "p_champion" in part else "p"].to_numpy(dtype=np.float64)
        est, low, high = estimate_auc(p, seed=int(pd.Timestamp(str(cohort)).value // 10**9) % 2**31)
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
