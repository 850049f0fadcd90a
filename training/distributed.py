"""Training and batch scoring on Dask: ``lightgbm.dask`` plus the usual calibration.

The result of training is an ordinary ``TrialcastModel`` (booster + Platt scaling
+ feature list + categories + spec), saved, loaded and served like one trained
on one machine. What differs is only where the work runs:

- The split, guards, calibration and verdict are the one recipe's
  (``training.recipe``, engine ``training.dask_recipe.DaskEngine``).
- The booster is trained data-parallel by ``DaskLGBMClassifier`` for up to
  ``num_boost_round`` rounds (``lightgbm.dask`` has no early stopping). The
  validation log loss of every round is then computed exactly on the whole
  validation set (leaf outputs summed per round, partition by partition) and
  the booster is cut where LightGBM's early stopping would have stopped.
- Calibration is ``training.calibration.fit_calibration`` (Platt plus an offset per
  trial phase, as on one machine) on the validation margins and phases gathered
  from the partitions.

Batch scoring maps ``TrialcastModel.predict_proba`` and ``contributions`` over
the partitions and keeps each row's strongest reasons.
"""

from __future__ import annotations

import warnings
from collections.abc import Hashable
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from scipy.special import expit

from training.calibration import fit_calibration, phase_inputs
from training.model import FitContext, TrialcastModel, prepare_features, wrap_booster

#: Parameters dropped before training: class weights (calibration relies on
#: unweighted margins) and thread counts (``lightgbm.dask`` uses each worker's).
DROPPED_PARAMS = ("scale_pos_weight", "is_unbalance", "num_threads", "n_jobs", "nthread")
UNKNOWN_CATEGORIES = "__UNKNOWN_CATEGORIES__"


def dask_categorical_levels(
    frame: Any, features: list[str], spec_json: str = ""
) -> dict[str, list[str]]:
    """Levels of each categorical feature, as ``training.model.categorical_levels`` gives them.

    Firmographic levels come from the feature spec (the dtype the feature job
    gave them, in that order); known categories from the dtype; anything else
    textual is computed (sorted distinct values).
    """
    spec_levels: dict[str, list[str]] = {}
    if spec_json:
        from features.spec import FeatureSpec

        spec = FeatureSpec.from_json(spec_json)
        spec_levels = {f"firmo_{c}": list(v) for c, v in spec.categorical_levels.items()}
    meta = frame._meta
    levels: dict[str, list[str]] = {}
    for col in features:
        dtype = meta[col].dtype
        if isinstance(dtype, pd.CategoricalDtype):
            cats = [str(c) for c in dtype.categories]
            if col in spec_levels:
                levels[col] = spec_levels[col]
            elif cats and cats != [UNKNOWN_CATEGORIES]:
                levels[col] = cats
            else:
                values = frame[col].astype(str).dropna().unique().compute()
                levels[col] = sorted(v for v in values.tolist() if v != "nan")
        elif pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype):
            values = frame[col].dropna().astype(str).unique().compute()
            levels[col] = sorted(values.tolist())
    return levels


def leaf_value_table(booster: lgb.Booster) -> np.ndarray:
    """Output of every leaf: ``table[tree, leaf]`` (NaN where a tree has fewer leaves)."""
    trees = booster.dump_model()["tree_info"]
    width = max((t.get("num_leaves", 1) for t in trees), default=1)
    table = np.full((len(trees), width), np.nan)
    for i, tree in enumerate(trees):
        stack = [tree["tree_structure"]]
        while stack:
            node = stack.pop()
            if "leaf_value" in node and "split_index" not in node:
                table[i, int(node.get("leaf_index", 0))] = float(node["leaf_value"])
            else:
                stack.extend((node["left_child"], node["right_child"]))
    return table


def _round_log_loss(
    frame: pd.DataFrame,
    booster: lgb.Booster,
    leaves: np.ndarray,
    features: list[str],
    categories: dict[str, list[str]],
    label: str,
) -> tuple[np.ndarray, int]:
    """Sum over ``frame``'s rows of the log loss after each boosting round, and the row count."""
    n_trees = leaves.shape[0]
    total = np.zeros(n_trees)
    if len(frame) == 0 or n_trees == 0:
        return total, 0
    X = prepare_features(frame, features, categories)
    y = frame[label].to_numpy(dtype=np.float64)
    leaf_idx = np.asarray(booster.predict(X, pred_leaf=True), dtype=np.int64).reshape(len(X), -1)
    chunk = max(1, 4_000_000 // n_trees)
    tree_ids = np.arange(n_trees)
    for start in range(0, len(X), chunk):
        idx = leaf_idx[start : start + chunk]
        z = np.cumsum(leaves[tree_ids, idx], axis=1)  # raw margin after each round
        t = y[start : start + chunk, None]
        total += (np.logaddexp(0.0, z) - t * z).sum(axis=0)
    return total, len(X)


def validation_curve(
    booster: lgb.Booster,
    valid: Any,
    features: list[str],
    categories: dict[str, list[str]],
    *,
    label: str = "label",
) -> np.ndarray:
    """Mean validation log loss after each boosting round, exact over every partition of ``valid``."""
    import dask

    leaves = leaf_value_table(booster)
    shared_booster = dask.delayed(booster, pure=True)
    shared_leaves = dask.delayed(leaves, pure=True)
    fn = dask.delayed(_round_log_loss, pure=True)
    parts = [
        fn(p, shared_booster, shared_leaves, features, categories, label)
        for p in valid.to_delayed()
    ]
    results = dask.compute(*parts)
    total = np.sum([r[0] for r in results], axis=0)
    n = sum(r[1] for r in results)
    if n == 0:
        raise ValueError("the validation part is empty")
    return np.asarray(total / n, dtype=np.float64)


def early_stopping_round(curve: np.ndarray, patience: int) -> int:
    """Rounds LightGBM's early stopping would keep on ``curve`` (lower is better)."""
    best, best_i = np.inf, 0
    for i, value in enumerate(curve):
        if value < best:
            best, best_i = float(value), i
        elif i - best_i >= patience:
            break
    return best_i + 1


def _margins(frame: pd.DataFrame, model: TrialcastModel, label: str) -> pd.DataFrame:
    """Margin, label and trial phase (``training.calibration``: -1 when unseen) per row."""
    if len(frame) == 0:
        return pd.DataFrame(
            {"margin": np.zeros(0), "y": np.zeros(0), "phase": np.zeros(0, dtype=np.int64)}
        )
    phases = phase_inputs(model, frame)
    return pd.DataFrame(
        {
            "margin": model.margin(frame),
            "y": frame[label].to_numpy(dtype=np.float64),
            "phase": np.full(len(frame), -1, dtype=np.int64) if phases is None else phases,
        }
    )


def fit_booster_dask(
    client: Any,
    train: Any,
    valid: Any,
    features: list[str],
    params: dict[str, Any],
    *,
    ctx: FitContext | None = None,
) -> TrialcastModel:
    """``DaskLGBMClassifier`` on ``train``, cut where early stopping on ``valid`` would
    stop; returns the not-yet-calibrated model (``wrap_booster``: ``a = 1, b = 0``).

    Args:
        client: the ``distributed.Client``.
        train, valid: Dask training-set parts with ``label`` and the feature columns.
        features: the model's input columns.
        params: LightGBM parameters (class weights and thread counts are dropped).
        ctx: the model kind, the feature spec (travels with the model; gives the
            firmographic levels) and the rounds (``num_boost_round`` trained,
            ``early_stopping_rounds`` the patience of the cut); default ``FitContext()``.
    """
    from lightgbm.dask import DaskLGBMClassifier

    ctx = ctx or FitContext()
    categories = dask_categorical_levels(train, features, ctx.spec_json)
    meta = prepare_features(train._meta, features, categories)
    X = train.map_partitions(prepare_features, features, categories, meta=meta)
    y = train["label"]
    full = {"objective": "binary", "verbose": -1, **params}
    for key in (*DROPPED_PARAMS, "metric", "n_estimators", "num_boost_round", "num_iterations"):
        full.pop(key, None)
    clf = DaskLGBMClassifier(client=client, n_estimators=ctx.rounds.num_boost_round, **full)
    with warnings.catch_warnings():
        # lightgbm.dask sets each worker's thread count itself and says so.
        warnings.filterwarnings("ignore", message="Parameter n_jobs will be ignored")
        clf.fit(X, y, categorical_feature=[c for c in features if c in categories])
    trained = clf.booster_
    curve = validation_curve(trained, valid, features, categories)
    best = early_stopping_round(curve, ctx.rounds.early_stopping_rounds)
    booster = lgb.Booster(model_str=trained.model_to_string(num_iteration=best))
    return wrap_booster(
        booster,
        features=list(features),
        categories=categories,
        kind=ctx.kind,
        spec_json=ctx.spec_json,
        params=dict(params),
    )


def margins_dask(model: TrialcastModel, part: Any, *, label: str = "label") -> pd.DataFrame:
    """Raw margin, label and trial phase of every row of a Dask part, gathered."""
    import dask

    shared = dask.delayed(model, pure=True)
    margin_meta = _margins(pd.DataFrame(), model, label)
    return part.map_partitions(_margins, shared, label, meta=margin_meta).compute()


def fit_model_dask(
    client: Any,
    train: Any,
    valid: Any,
    features: list[str],
    params: dict[str, Any],
    *,
    ctx: FitContext | None = None,
) -> TrialcastModel:
    """``training.model.fit_model`` on Dask: ``fit_booster_dask`` then the calibration
    (``training.calibration``) on the validation margins and phases gathered from the
    partitions (what the recipe does in steps)."""
    model = fit_booster_dask(client, train, valid, features, params, ctx=ctx)
    margins = margins_dask(model, valid)
    phases = margins["phase"].to_numpy(dtype=np.int64)
    calibration = fit_calibration(
        margins["margin"].to_numpy(),
        margins["y"].to_numpy(),
        phases if phase_inputs(model, valid._meta) is not None else None,
    )
    return calibration.apply(model)


def score_columns(top_k: int) -> list[str]:
    """Columns of a scored partition after ``as_of`` and ``p``: the top reasons up and down."""
    cols = []
    for side in ("up", "down"):
        for j in range(1, top_k + 1):
            cols += [f"reason_{side}_{j}", f"reason_{side}_{j}_logodds"]
    return cols


def score_meta(index_name: Hashable, top_k: int) -> pd.DataFrame:
    """The empty frame ``score_partition`` returns: the schema of the scores."""
    data: dict[str, Any] = {"as_of": pd.Series(dtype="datetime64[us]"), "p": np.zeros(0)}
    for col in score_columns(top_k):
        data[col] = np.zeros(0) if col.endswith("_logodds") else pd.Series(dtype="str")
    return pd.DataFrame(data, index=pd.Index([], dtype="str", name=index_name))


def score_partition(frame: pd.DataFrame, model: TrialcastModel, top_k: int = 3) -> pd.DataFrame:
    """Calibrated probability and the ``top_k`` strongest reasons each way, per row.

    ``reason_up_j`` is the feature with the j-th largest positive contribution
    (calibrated log-odds, in ``reason_up_j_logodds``); ``reason_down_j`` the
    j-th most negative. Missing where a row has fewer such features.
    """
    out = score_meta(frame.index.name, top_k)
    if len(frame) == 0:
        return out
    contrib = model.contributions(frame)
    values = contrib.values.to_numpy()
    names = np.asarray(model.features, dtype=object)
    result: dict[str, Any] = {
        "as_of": (
            pd.to_datetime(frame["as_of"]).astype("datetime64[us]").to_numpy()
            if "as_of" in frame.columns
            else np.full(len(frame), np.datetime64("NaT", "us"))
        ),
        "p": np.asarray(expit(contrib.logit()), dtype=np.float64),
    }
    k = min(top_k, values.shape[1])
    for side, sign in (("up", 1.0), ("down", -1.0)):
        order = np.argsort(-sign * values, axis=1, kind="stable")[:, :k]
        picked = np.take_along_axis(values, order, axis=1)
        for j in range(top_k):
            if j < k:
                ok = sign * picked[:, j] > 0
                picked_names = names[order[:, j]].copy()
                picked_names[~ok] = None
                result[f"reason_{side}_{j + 1}"] = pd.array(picked_names, dtype="str")
                result[f"reason_{side}_{j + 1}_logodds"] = np.where(ok, picked[:, j], np.nan)
            else:
                result[f"reason_{side}_{j + 1}"] = pd.array([None] * len(frame), dtype="str")
                result[f"reason_{side}_{j + 1}_logodds"] = np.full(len(frame), np.nan)
    scored = pd.DataFrame(result, index=frame.index.astype("str"))
    return scored[out.columns].astype(out.dtypes.to_dict())


def score_dask(frame: Any, model: TrialcastModel, *, top_k: int = 3) -> Any:
    """``score_partition`` mapped over a Dask frame of feature rows (the model shipped once)."""
    import dask

    shared = dask.delayed(model, pure=True)
    meta = score_meta(frame._meta.index.name, top_k)
    return frame.map_partitions(score_partition, shared, top_k, meta=meta)
