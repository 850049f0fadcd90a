"""The rows a run's SHAP summary plot draws, and their exact contributions.

Apart from the plots (no matplotlib here), so the contributions can be computed
in a thread that starts before matplotlib is even imported: the TreeSHAP pass is
LightGBM's C code, which runs without Python's lock (see
``training.tracking.explain_ahead``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from training.model import TrialcastModel


@dataclass(frozen=True)
class ShapSample:
    """The rows drawn in a SHAP summary plot: which rows, their inputs, their contributions.

    Attributes:
        rows: the rows' index labels (in the frame they were sampled from).
        matrix: the rows' model input matrix (``TrialcastModel.matrix_from_frame``).
        values: their contributions to the calibrated log-odds, one column per feature
            (``TrialcastModel.contributions`` of the same rows).
    """

    rows: pd.Index
    matrix: np.ndarray
    values: np.ndarray


def shap_rows(frame: pd.DataFrame, *, sample: int = 1000, seed: int = 0) -> pd.DataFrame:
    """The rows of ``frame`` a SHAP summary plot draws (a fixed random sample)."""
    return frame.sample(n=min(sample, len(frame)), random_state=seed) if len(frame) else frame


def explain_rows(model: TrialcastModel, rows: pd.DataFrame, *, num_threads: int = 0) -> ShapSample:
    """Model inputs and exact contributions of ``rows`` (``model.contributions``, on the matrix).

    ``num_threads``: LightGBM's threads for the TreeSHAP pass (0: its default).
    """
    if not len(rows):
        empty = np.zeros((0, len(model.features)))
        return ShapSample(rows=rows.index, matrix=empty, values=np.zeros((0, 0)))
    matrix = model.matrix_from_frame(rows)
    values, _ = model.explain_matrix(matrix, num_threads=num_threads)
    return ShapSample(rows=rows.index, matrix=matrix, values=values)
