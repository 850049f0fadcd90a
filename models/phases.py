"""Trial phases: where an open trial stands at a moment, from two model inputs.

A phase is the share of the trial elapsed (``0-25%`` ... ``75-100%``) or
``past end`` (the trial is over, its conversion window still open). The model
artifact calibrates per phase (``TrialcastModel.phase_offsets``) and the
backtest reports per phase (``trialcast.backtest_phases``): one definition for
both, so the bench judges exactly the groups the calibration corrects.
"""

from __future__ import annotations

import numpy as np

#: The model inputs a phase is read from (``features.families``: days).
ELAPSED = "trial_days_elapsed"
LENGTH = "trial_length_days"
#: Upper edges of the in-trial phases (share of the trial elapsed).
PHASE_EDGES = (0.25, 0.5, 0.75, 1.0)
PHASE_NAMES = ("0-25%", "25-50%", "50-75%", "75-100%", "past end")
PAST_END = PHASE_NAMES[-1]


def phase_codes(elapsed_days: np.ndarray, length_days: np.ndarray) -> np.ndarray:
    """Index into ``PHASE_NAMES`` per row; -1 where either input is missing."""
    elapsed = np.asarray(elapsed_days, dtype=np.float64)
    length = np.asarray(length_days, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = elapsed / np.maximum(length, 1e-9)
    codes = np.searchsorted(np.asarray(PHASE_EDGES), share, side="right")
    codes = np.minimum(codes, len(PHASE_NAMES) - 1)
    return np.where(np.isfinite(share), codes, -1).astype(np.int64)


def phase_names(elapsed_days: np.ndarray, length_days: np.ndarray) -> np.ndarray:
    """The phase name of each row (``"unknown"`` where an input is missing)."""
    names = np.array([*PHASE_NAMES, "unknown"], dtype=object)
    return np.asarray(names[phase_codes(elapsed_days, length_days)], dtype=object)


def cell_codes(elapsed_days: np.ndarray, length_days: np.ndarray) -> np.ndarray:
    """Phase x trial length (whole days) per row: ``phase + len(PHASE_NAMES) * days``;
    -1 where either input is missing. ``code % len(PHASE_NAMES)`` is the phase."""
    phase = phase_codes(elapsed_days, length_days)
    length = np.nan_to_num(np.asarray(length_days, dtype=np.float64), nan=0.0)
    days = np.clip(np.rint(length), 0, 100_000).astype(np.int64)
    return np.where(phase >= 0, phase + len(PHASE_NAMES) * days, -1).astype(np.int64)


def cell_name(code: int) -> str:
    """The offset key of a cell code: ``"21d 0-25%"``."""
    days, phase = divmod(int(code), len(PHASE_NAMES))
    return f"{days}d {PHASE_NAMES[phase]}"


def _cell_code(name: str) -> int | None:
    days, _, phase = name.partition("d ")
    if not days.isdigit() or phase not in PHASE_NAMES:
        return None
    return PHASE_NAMES.index(phase) + len(PHASE_NAMES) * int(days)


def offsets_of(offsets: dict[str, float], codes: np.ndarray) -> np.ndarray:
    """Log-odds shift per row of ``cell_codes`` (or ``phase_codes``): the offset of
    its phase (``"past end"``) plus that of its phase x length cell (``"21d past
    end"``), each 0 where absent; 0 where the code is -1."""
    codes = np.asarray(codes, dtype=np.int64)
    known = codes >= 0
    table = np.array([offsets.get(n, 0.0) for n in PHASE_NAMES], dtype=np.float64)
    out = np.where(known, table[np.where(known, codes, 0) % len(PHASE_NAMES)], 0.0)
    for name, value in offsets.items():
        code = _cell_code(name)
        if code is not None:
            out = out + np.where(codes == code, float(value), 0.0)
    return out
