"""Calibration of the booster's margin: Platt scaling plus a log-odds offset per trial phase.

``p = sigmoid(a * margin + b + c[phase])``, fitted by penalised maximum
likelihood on the validation part. The phase (``models.phases``: share of the
trial elapsed, or past end) is read from the model's own inputs
``trial_days_elapsed`` and ``trial_length_days``; one shared slope keeps the
ranking inside a phase the booster's, and the offsets let each phase sit at
its own level (one Platt map for every snapshot left a long trial's middle and
the trials past their end several percent off: docs/benchmarks.md).

A phase gets an offset only with ``MIN_PHASE_ROWS`` validation rows and
``MIN_PHASE_CLASS`` of each class; offsets are shrunk towards 0 (a normal prior
of sd ``OFFSET_SD`` in log-odds), so a thin phase moves little. When trials of
several lengths are seen, each phase x length cell (``"21d 0-25%"``) with as
many rows gets an offset on top of its phase's, shrunk towards it (prior sd
``CELL_SD``): trials of 7 and 21 days at the same share of their trial need not
sit at the same level (one offset per phase left a 21-day trial's first half
7-10% low on a company of 7- and 21-day trials: docs/benchmarks.md). Models without
the two phase inputs (churn, a feature table without them) get plain Platt.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import expit

from models.artifact import TrialcastModel
from models.kinds import model_kind
from models.phases import ELAPSED, LENGTH, PHASE_NAMES, cell_codes, cell_name

#: Fewest validation rows, and of each class, for a phase to get its own offset.
MIN_PHASE_ROWS = 300
MIN_PHASE_CLASS = 20
#: Prior sd of a phase offset (log-odds): shrinks thin phases towards the shared map.
OFFSET_SD = 1.0
#: Prior sd of a phase x length cell's offset on top of its phase's (log-odds).
CELL_SD = 0.5
#: Smallest slope (keeps the map strictly increasing; as ``training.model.MIN_SLOPE``).
MIN_SLOPE = 1e-6


@dataclass(frozen=True)
class Calibration:
    """A fitted calibration: slope, intercept and the offsets of the phases that have one."""

    a: float
    b: float
    phase_offsets: dict[str, float] = field(default_factory=dict)

    def apply(self, model: TrialcastModel) -> TrialcastModel:
        """Set this calibration on ``model`` (in place) and return it."""
        model.a, model.b = self.a, self.b
        model.phase_offsets = dict(self.phase_offsets)
        return model


def phase_inputs(model: TrialcastModel, frame: pd.DataFrame) -> np.ndarray | None:
    """Phase x length codes (``models.phases.cell_codes``) of ``frame``'s rows, or
    None when the model cannot see its phase."""
    if not model_kind(model.kind).phase_calibrated:
        return None
    if ELAPSED not in model.features or LENGTH not in model.features:
        return None
    elapsed = pd.to_numeric(frame[ELAPSED], errors="coerce").to_numpy(dtype=np.float64)
    length = pd.to_numeric(frame[LENGTH], errors="coerce").to_numpy(dtype=np.float64)
    return cell_codes(elapsed, length)


def fit_calibration(
    margin: np.ndarray, y: np.ndarray, phases: np.ndarray | None = None
) -> Calibration:
    """Penalised maximum likelihood of ``(a, b, offsets)``; ``phases`` from
    ``phase_inputs`` (cell codes; plain phase codes give phase offsets only)."""
    m = np.asarray(margin, dtype=np.float64)
    t = np.asarray(y, dtype=np.float64)
    n_phases = len(PHASE_NAMES)

    def enough(rows: np.ndarray) -> bool:
        positives = float(t[rows].sum())
        return bool(
            rows.sum() >= MIN_PHASE_ROWS
            and min(positives, rows.sum() - positives) >= MIN_PHASE_CLASS
        )

    columns: list[np.ndarray] = []
    names: list[str] = []
    sds: list[float] = []
    if phases is not None:
        codes = np.asarray(phases, dtype=np.int64)
        phase = np.where(codes >= 0, codes % n_phases, -1)
        for k in range(n_phases):
            if enough(phase == k):
                columns.append(phase == k)
                names.append(PHASE_NAMES[k])
                sds.append(OFFSET_SD)
        seen = np.unique(codes[codes >= 0])
        if len(np.unique(seen // n_phases)) > 1:  # trials of several lengths
            for code in seen:
                rows = codes == code
                if PHASE_NAMES[code % n_phases] in names and enough(rows):
                    columns.append(rows)
                    names.append(cell_name(code))
                    sds.append(CELL_SD)
    X = np.column_stack(columns).astype(np.float64) if columns else np.zeros((len(m), 0))
    ridge = 1.0 / np.asarray(sds, dtype=np.float64) ** 2

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        c = theta[2:]
        z = theta[0] * m + theta[1] + X @ c
        nll = float(np.sum(np.logaddexp(0.0, z) - t * z)) + 0.5 * float(ridge @ (c * c))
        r = expit(z) - t
        grad = np.concatenate([[r @ m, r.sum()], X.T @ r + ridge * c])
        return nll, grad

    x0 = np.zeros(2 + len(names))
    x0[0] = 1.0
    res = minimize(
        loss,
        x0,
        jac=True,
        method="L-BFGS-B",
        bounds=[(MIN_SLOPE, None)] + [(None, None)] * (1 + len(names)),
        options={"maxiter": 1000, "ftol": 1e-12, "gtol": 1e-9},
    )
    theta = res.x if np.all(np.isfinite(res.x)) else x0
    offsets = {name: float(c) for name, c in zip(names, theta[2:], strict=True)}
    return Calibration(a=float(theta[0]), b=float(theta[1]), phase_offsets=offsets)


def calibrate(
    model: TrialcastModel, valid: pd.DataFrame, *, label: str = "label"
) -> TrialcastModel:
    """Fit the calibration of ``model`` on the validation part and set it (in place)."""
    fitted = fit_calibration(
        model.margin(valid), valid[label].to_numpy(), phase_inputs(model, valid)
    )
    return fitted.apply(model)
