"""The MLflow pyfunc wrapper: a logged trialcast model that returns probabilities.

``mlflow.pyfunc.load_model(uri).predict(features)`` gives calibrated probabilities
(one per row). The model's files (``booster.txt``, ``calibration.json``,
``feature_spec.json``) are logged as the artifact ``trialcast_model`` so the
serving layer can also load the booster directly for exact contributions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel

from models.artifact import ARTIFACT_KEY
from training.model import TrialcastModel

#: The models-from-code file MLflow runs to build the pyfunc (no pickling).
ENTRY_FILE = Path(__file__).with_name("pyfunc_entry.py")


class TrialcastPyfunc(PythonModel):
    """Pyfunc face of ``TrialcastModel``: ``predict`` returns probabilities in [0, 1]."""

    def __init__(self) -> None:
        self.model: TrialcastModel | None = None

    def load_context(self, context: Any) -> None:
        """Load the model files logged under ``trialcast_model``."""
        self.model = TrialcastModel.load(context.artifacts[ARTIFACT_KEY])

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> np.ndarray:
        """Calibrated probability of each input row (a frame of feature columns)."""
        if self.model is None:
            self.load_context(context)
        assert self.model is not None
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        return self.model.predict_proba(frame)


def signature_frame(model: TrialcastModel, frame: pd.DataFrame) -> pd.DataFrame:
    """``frame``'s model columns as the logged signature sees them (categoricals as text)."""
    X = model.prepare(frame)
    out = {}
    for col in model.features:
        if col in model.categories:
            out[col] = X[col].astype(object).where(X[col].notna(), None)
        else:
            out[col] = X[col].astype(np.float64)
    return pd.DataFrame(out, index=frame.index)
