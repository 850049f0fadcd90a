"""The estimate's probabilities: the champion's, re-spread out of sample at the scoring day.

The estimated AUC (``monitoring.estimation``) is the AUC that outcomes drawn
from the probabilities would show, so it is only as right as their *spread*
at the scoring day. The champion is calibrated on its validation part over
all snapshot days pooled (one slope, a level per phase): at the first
snapshot day its probabilities can be too spread (the estimate too high: the
three-week-trial company at ~120 trials a week, +0.024) or too narrow (the
same company at ~480 a week, -0.022). The outcome test's rescaling
(``scoring.recalibrate``) is fitted mostly on training trials, where the
booster looks sharper than it is, so it cannot correct this.

Here ``sigmoid(a logit(p) + b)`` is fitted (Platt, by maximum likelihood) on
the ``out_of_sample`` trials: started from the champion's validation part on
and before its training export, so never fitted by the booster, and matured
by ``as_of``, so their outcomes are known. Nothing monitored (started after
the training export) enters the fit, so the estimate's error on matured
monitored cohorts stays an honest measure. The fit on ``n`` such trials is
itself noisy (on 1,200-1,800 its slope ranged 0.79-1.26 over 25 generated
companies), about as much as the mis-spread it corrects, so it is taken only
``w = n / (n + PRIOR_TRIALS)`` of the way: ``logit(p_estimate) = (1 - w) logit(p)
+ w (a logit(p) + b)``, a shrinkage towards the champion's own calibration,
which counts as ``PRIOR_TRIALS`` trials of evidence (a precision weight: the
fit's variance falls as ``1 / n``). With ``PRIOR_TRIALS`` = 1,500: about 0.45
on ~1,200 never-fitted trials (a one-week trial at ~120 trials a week), 0.55
on ~1,800, 0.8 on ~5,000-7,000 (~480 a week). Measured (docs/benchmarks.md,
"Model health", sessions 7 and 8): halfway (session 7) beat the full fit at
~120 trials a week on the first 20 companies, while at ~480 a week the full
fit was better; the precision weight, chosen after those runs, was checked on
fresh seeds: level with halfway at ~120 a week, better at ~480 a week.

The served probabilities are untouched: this is the monitor's own view,
reported as ``estimate_calibration``. Too few trials or conversions:
``p_estimate`` is the champion's ``p``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Fewer out-of-sample trials or conversions than these: no re-spreading.
MIN_TRIALS, MIN_POSITIVES = 300, 30
#: The champion's own calibration counts as this many trials of evidence: the estimate
#: moves ``n / (n + PRIOR_TRIALS)`` of the way to the fit on ``n`` trials (module docstring).
PRIOR_TRIALS = 1500.0


def spread_weight(trials: int, prior_trials: float = PRIOR_TRIALS) -> float:
    """How far the estimate moves towards an out-of-sample fit on ``trials`` trials:
    ``trials / (trials + prior_trials)`` (0.5 at ``trials == prior_trials``)."""
    return trials / (trials + prior_trials)


def weighted_map(fitted_a: float, fitted_b: float, weight: float) -> tuple[float, float]:
    """``(a, b)`` of ``logit p' = (1 - weight) logit p + weight (fitted_a logit p + fitted_b)``."""
    return 1.0 + weight * (fitted_a - 1.0), weight * fitted_b


def respread_for_estimate(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with ``p_estimate`` (see module docstring) and its map in
    ``attrs["estimate_calibration"]``: ``a``, ``b`` (applied: ``logit(p_estimate)
    = a logit(p) + b``), ``fitted_a``, ``fitted_b`` (the out-of-sample Platt fit),
    ``weight``, ``trials``, ``positives``; empty when not fitted."""
    from training.model import fit_platt

    out = frame.copy()
    p0 = out["p_champion" if "p_champion" in out else "p"].to_numpy(dtype=np.float64)
    out["p_estimate"] = p0
    out.attrs["estimate_calibration"] = {}
    if "out_of_sample" not in out:
        return out
    fit = out["out_of_sample"].to_numpy(dtype=bool)
    y = out["y"].to_numpy()
    if fit.sum() < MIN_TRIALS or y[fit].sum() < MIN_POSITIVES:
        return out
    p = np.clip(p0, 1e-9, 1 - 1e-9)
    logit = np.log(p / (1 - p))
    fitted_a, fitted_b = fit_platt(logit[fit], y[fit])
    weight = spread_weight(int(fit.sum()))
    a, b = weighted_map(fitted_a, fitted_b, weight)
    out["p_estimate"] = 1.0 / (1.0 + np.exp(-(a * logit + b)))
    out.attrs["estimate_calibration"] = {
        "a": float(a),
        "b": float(b),
        "fitted_a": float(fitted_a),
        "fitted_b": float(fitted_b),
        "weight": float(weight),
        "trials": int(fit.sum()),
        "positives": int(y[fit].sum()),
    }
    return out
