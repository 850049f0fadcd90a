"""The paid share the champion expects for cohorts still deciding, with P10-P90.

A cohort's trials that have not paid by ``as_of`` but can still convert (window
open) each carry the champion's calibrated chance to convert before their window
closes (``serving.batch.predict_open_trials``, the one scoring path). The cohort's
expected paid share is (paid so far + the sum of those chances) / trials; its
P10 and P90 come from the exact distribution of the number of further
conversions (a sum of independent Bernoullis, ``serving.forecast.distribution``).
"""

from __future__ import annotations

from typing import cast

import numpy as np
import pandas as pd

from features.build import FeatureBuilder
from features.funnel_table import cohort_labels
from models.artifact import TrialcastModel
from serving.batch import predict_open_trials
from serving.forecast.distribution import compute_sum_distribution

EXPECTED_COLUMNS = ["open_trials", "expected_share", "expected_p10", "expected_p90"]


def open_trial_chances(
    builder: FeatureBuilder, model: TrialcastModel, as_of: pd.Timestamp
) -> pd.Series:
    """Each open trial's chance to convert before its window closes, by ``account_id``."""
    scored = predict_open_trials(builder, model, as_of)
    ids = builder.index.account_ids[scored.positions].astype(str)
    return pd.Series(scored.p_convert, index=pd.Index(ids, name="account_id"), name="p")


def add_expected_paid(
    table: pd.DataFrame,
    days: pd.DataFrame,
    segments: pd.DataFrame,
    chances: pd.Series,
    *,
    by: str,
) -> pd.DataFrame:
    """``table`` with ``EXPECTED_COLUMNS`` filled on the paid rows of cohorts that still
    have open trials (NaN elsewhere). ``days`` and ``segments`` are the per-trial
    frames the table was made from; ``chances`` as ``open_trial_chances``."""
    p = chances.reindex(days.index).to_numpy(dtype=np.float64)
    is_open = ~np.isnan(p)
    cohort = cohort_labels(days["trial_start"], by).to_numpy()
    found: dict[tuple[str, str, str], tuple[int, float, float, float]] = {}
    for dimension in segments.columns:
        keys = pd.DataFrame({"cohort": cohort[is_open], "segment": segments[dimension][is_open]})
        for key, rows in keys.groupby(["cohort", "segment"], sort=False).indices.items():
            c, s = cast(tuple[str, str], key)
            chance = p[is_open][rows]
            dist = compute_sum_distribution(chance, np.ones(len(chance)))
            found[(dimension, str(c), str(s))] = (
                len(chance),
                float(chance.sum()),
                dist.quantile(0.1),
                dist.quantile(0.9),
            )
    out = table.copy()
    for column in EXPECTED_COLUMNS:
        out[column] = np.nan
    trials_all = out["trials"].to_numpy(dtype=np.float64)
    reached_all = out["reached"].to_numpy(dtype=np.float64)
    keys_all = out[["dimension", "cohort", "segment"]].astype(str).to_numpy()
    for i in np.flatnonzero(out["stage_kind"].to_numpy() == "paid"):
        key = (keys_all[i, 0], keys_all[i, 1], keys_all[i, 2])
        if key not in found:
            continue
        n_open, mean, q10, q90 = found[key]
        trials, reached = trials_all[i], reached_all[i]
        out.loc[i, EXPECTED_COLUMNS] = [
            n_open,
            (reached + mean) / trials,
            (reached + q10) / trials,
            (reached + q90) / trials,
        ]
    return out
