"""The recipe's engine on Dask: the same steps as one machine, run over partitions.

``training.recipe.fit_kind`` does the judging; this engine only says how each
heavy step runs on a Dask training set:

- the split is the one-machine ``split_for_config`` (by account in time
  order; churn out of time with purged label windows) run on the small key
  columns, its row positions mapped back onto the partitions;
- the single-feature guard counts (value, label) pairs per partition and merges
  them: the ROC AUC of one feature is exact from those counts
  (``auc_from_counts``), so the guard flags what it flags on one machine;
- the booster is ``lightgbm.dask`` (``training.distributed.fit_booster_dask``),
  calibrated by the recipe's own ``calibrate`` step on gathered margins;
- the test part comes back as its id columns, label, the model's inputs and
  the probability (the champion duel, the logged input example and the SHAP
  plots need the inputs; the test part is ``test_fraction`` of the rows).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from models.kinds import ModelKind
from training.calibration import phase_inputs
from training.distributed import fit_booster_dask, margins_dask
from training.model import FitContext, TrialcastModel
from training.recipe import LABEL_COLUMNS, SCORED_COLUMNS, Parts
from training.split import split_for_config

MISSING = "__missing__"


def auc_from_counts(score: np.ndarray, n0: np.ndarray, n1: np.ndarray) -> float:
    """ROC AUC of ``score`` from the negatives / positives at each distinct score
    (ties count half: the Mann-Whitney statistic ``rankdata`` gives)."""
    order = np.argsort(score, kind="mergesort")
    s, a, b = score[order], n0[order].astype(float), n1[order].astype(float)
    # merge equal scores
    _, start = np.unique(s, return_index=True)  # first row of each distinct score
    a = np.add.reduceat(a, start) if len(a) else a
    b = np.add.reduceat(b, start) if len(b) else b
    total0, total1 = a.sum(), b.sum()
    if total0 == 0 or total1 == 0:
        return 0.5
    below = np.cumsum(a) - a
    return float((b * (below + 0.5 * a)).sum() / (total0 * total1))


def single_feature_auc_counts(counts: pd.DataFrame, numeric: bool) -> float:
    """``training.guards.single_feature_auc`` from (value, n0, n1) counts.

    Numeric: missing ranked lowest and highest, the better kept; textual: each
    level scored by its positive rate (missing a level of its own).
    """
    n0 = counts["n0"].to_numpy(dtype=float)
    n1 = counts["n1"].to_numpy(dtype=float)
    if not numeric:
        rate = n1 / np.maximum(n0 + n1, 1)
        auc = auc_from_counts(rate, n0, n1)
        return max(auc, 1 - auc)
    values = counts["value"].to_numpy(dtype=np.float64)
    missing = np.isnan(values)
    best = 0.5
    for fill in (-np.inf, np.inf) if missing.any() else (0.0,):
        auc = auc_from_counts(np.where(missing, fill, values), n0, n1)
        best = max(best, auc, 1 - auc)
    return float(best)


def _is_numeric(dtype: Any) -> bool:
    return not isinstance(dtype, pd.CategoricalDtype) and pd.api.types.is_numeric_dtype(dtype)


def _value_counts(frame: pd.DataFrame, features: list[str]) -> dict[str, pd.DataFrame]:
    """Per feature, negatives and positives at each value of one partition."""
    y = frame["label"].to_numpy(dtype=np.int64)
    out = {}
    for name in features:
        col = frame[name]
        if _is_numeric(col.dtype):
            value: Any = pd.to_numeric(col, errors="coerce").astype("float64").to_numpy()
        else:
            value = col.astype(object).where(col.notna(), MISSING).astype(str).to_numpy()
        table = pd.DataFrame({"value": value, "n1": y, "n0": 1 - y})
        out[name] = table.groupby("value", dropna=False, sort=False)[["n0", "n1"]].sum()
    return out


class DaskEngine:
    """The recipe's steps on Dask training sets (see the module docstring)."""

    name = "dask"

    def __init__(self, client: Any) -> None:
        self.client = client

    def labels(self, frame: Any) -> pd.DataFrame:
        cols = [c for c in LABEL_COLUMNS if c in frame.columns]
        return frame[cols].compute().reset_index(drop=True)

    def columns(self, frame: Any) -> pd.DataFrame:
        return frame._meta

    def split(self, frame: Any, kind: ModelKind, config: Any) -> Parts:
        import dask
        import dask.dataframe as dd

        cols = ["account_id", *[c for c in ("trial_start", "as_of") if c in frame.columns]]
        keys = frame[cols].compute().reset_index(drop=True)
        split = split_for_config(keys, kind.name, config)
        part = np.full(len(keys), -1, dtype=np.int8)
        for k, rows in enumerate((split.train, split.valid, split.test)):
            part[rows] = k
        sizes = frame.map_partitions(len).compute().tolist()
        offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
        pieces = frame.to_delayed()
        take = dask.delayed(_take_rows, pure=True)
        parts = []
        for k in range(3):
            chosen = [
                take(piece, part[offsets[i] : offsets[i + 1]] == k)
                for i, piece in enumerate(pieces)
            ]
            parts.append(dd.from_delayed(chosen, meta=frame._meta, verify_meta=False))
        return Parts(split, *parts)

    def feature_aucs(self, train: Any, features: list[str]) -> dict[str, float]:
        import dask

        count = dask.delayed(_value_counts, pure=True)
        per_part = dask.compute(*[count(p, features) for p in train.to_delayed()])
        meta = train._meta
        out = {}
        for name in features:
            merged = (
                pd.concat([p[name] for p in per_part])
                .groupby(level=0, dropna=False, sort=False)
                .sum()
                .reset_index()
            )
            out[name] = single_feature_auc_counts(merged, _is_numeric(meta[name].dtype))
        return out

    def fit(
        self, parts: Parts, features: list[str], params: dict[str, Any], ctx: FitContext
    ) -> TrialcastModel:
        return fit_booster_dask(self.client, parts.train, parts.valid, features, params, ctx=ctx)

    def margins(
        self, model: TrialcastModel, part: Any
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        frame = margins_dask(model, part)
        seen = phase_inputs(model, part._meta) is not None
        phases = frame["phase"].to_numpy(dtype=np.int64) if seen else None
        return frame["margin"].to_numpy(), frame["y"].to_numpy(), phases

    def scored(self, model: TrialcastModel, part: Any) -> pd.DataFrame:
        import dask

        # ids, label and the model's inputs (the champion duel, the input example, SHAP)
        cols = [c for c in (*SCORED_COLUMNS, *model.features) if c in part.columns]
        meta = part._meta[cols].assign(p_model=np.zeros(0))
        shared = dask.delayed(model, pure=True)
        out = part.map_partitions(_score_rows, shared, cols, meta=meta).compute()
        return out.reset_index(drop=True)

    def sample(self, part: Any, n: int) -> pd.DataFrame:
        return part.head(n, npartitions=-1)


def _take_rows(frame: pd.DataFrame, keep: np.ndarray) -> pd.DataFrame:
    return frame[keep]


def _score_rows(frame: pd.DataFrame, model: TrialcastModel, cols: list[str]) -> pd.DataFrame:
    out = frame[cols].copy()
    out["p_model"] = model.predict_proba(frame) if len(frame) else np.zeros(0)
    return out
