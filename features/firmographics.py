"""Firmographic features: the configured account columns, typed for the models."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.config import FirmographicsConfig
from features.spec import FeatureSpec


def compute_firmographic_features(
    accounts: pd.DataFrame, rows_acc: np.ndarray, config: FirmographicsConfig, spec: FeatureSpec
) -> dict[str, pd.Series | np.ndarray]:
    """``firmo_<column>`` for each configured firmographic.

    Numeric columns become floats (NaN where missing or not a number); categorical
    columns become ``category`` with the spec's levels, so a level never seen in
    training is NaN rather than a new code.
    """
    out: dict[str, pd.Series | np.ndarray] = {}
    subset = accounts.iloc[rows_acc]
    for col in config.numeric:
        values = subset[col] if col in subset.columns else pd.Series(np.nan, index=subset.index)
        out[f"firmo_{col}"] = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64)
    for col in config.categorical:
        levels = spec.categorical_levels.get(col, [])
        if col in subset.columns:
            raw = subset[col]
            labels = raw.astype(str).where(raw.notna()).to_numpy(dtype=object)
        else:
            labels = np.full(len(rows_acc), None, dtype=object)
        cat = pd.Categorical(labels, categories=levels)
        out[f"firmo_{col}"] = pd.Series(cat)
    return out
