"""Fitting the trialcast model: LightGBM with early stopping, then Platt scaling.

The fitted artifact itself (``TrialcastModel``, ``Contributions``,
``prepare_features``, the file names and ``FORMAT_VERSION``) lives in
``models.artifact`` so the service can load it without importing ``training``;
those names are re-exported here so ``from training.model import TrialcastModel``
keeps working.

No class weights are used: weighted training shifts the margin away from the
true log-odds and would have to be undone; calibration then has less to fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import expit

from models.artifact import (
    BOOSTER_FILE,
    CALIBRATION_FILE,
    FORMAT_VERSION,
    MODEL_KINDS,
    SPEC_FILE,
    Contributions,
    TrialcastModel,
    prepare_features,
)
from models.kinds import model_kind
from training.calibration import calibrate

__all__ = [
    "BOOSTER_FILE",
    "CALIBRATION_FILE",
    "FORMAT_VERSION",
    "MIN_SLOPE",
    "MODEL_KINDS",
    "SPEC_FILE",
    "Contributions",
    "FitContext",
    "Rounds",
    "TrialcastModel",
    "categorical_levels",
    "fit_booster",
    "fit_model",
    "fit_platt",
    "prepare_features",
]

#: Smallest slope Platt scaling may take (keeps the map strictly increasing).
MIN_SLOPE = 1e-6


@dataclass(frozen=True)
class Rounds:
    """How long the booster trains (``[model]``'s two settings).

    Attributes:
        num_boost_round: the most boosting rounds.
        early_stopping_rounds: stop (keeping the best round) after this many rounds
            without a better validation log loss.
    """

    num_boost_round: int = 1000
    early_stopping_rounds: int = 50

    @classmethod
    def of(cls, model_config: Any) -> Rounds:
        """The rounds a ``[model]`` section sets."""
        return cls(model_config.num_boost_round, model_config.early_stopping_rounds)


@dataclass(frozen=True)
class FitContext:
    """What a fit needs besides the parts, the features and the LightGBM parameters.

    Attributes:
        kind: the model kind's name (``"conversion"``, ``"churn"``, ...).
        spec_json: the feature spec the columns were built with (travels with the model).
        rounds: how long the booster trains.
    """

    kind: str = "conversion"
    spec_json: str = ""
    rounds: Rounds = Rounds()


def categorical_levels(frame: pd.DataFrame, features: list[str]) -> dict[str, list[str]]:
    """Levels of every categorical (``category``/string) feature column of ``frame``."""
    levels: dict[str, list[str]] = {}
    for col in features:
        dtype = frame[col].dtype
        if isinstance(dtype, pd.CategoricalDtype):
            levels[col] = [str(c) for c in dtype.categories]
        elif pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype):
            levels[col] = sorted(frame[col].dropna().astype(str).unique().tolist())
    return levels


def fit_platt(margin: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Platt scaling ``p = sigmoid(a * margin + b)`` by maximum likelihood, with ``a > 0``.

    Returns:
        ``(a, b)``. If the margin carries no signal on ``y`` the slope sits at its
        lower bound and ``b`` gives the base rate.
    """
    m = np.asarray(margin, dtype=np.float64)
    t = np.asarray(y, dtype=np.float64)

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        z = theta[0] * m + theta[1]
        nll = float(np.sum(np.logaddexp(0.0, z) - t * z))
        r = expit(z) - t
        return nll, np.array([float(r @ m), float(r.sum())])

    rate = float(np.clip(t.mean(), 1e-6, 1 - 1e-6))
    x0 = np.array([1.0, 0.0])
    res = minimize(
        loss,
        x0,
        jac=True,
        method="L-BFGS-B",
        bounds=[(MIN_SLOPE, None), (None, None)],
        options={"maxiter": 500, "ftol": 1e-12, "gtol": 1e-9},
    )
    a, b = float(res.x[0]), float(res.x[1])
    if not np.isfinite(a) or not np.isfinite(b):  # pragma: no cover - defensive
        a, b = MIN_SLOPE, float(np.log(rate / (1 - rate)))
    return a, b


def fit_booster(
    train: pd.DataFrame,
    valid: pd.DataFrame,
    features: list[str],
    params: dict[str, Any],
    *,
    categories: dict[str, list[str]],
    rounds: Rounds = Rounds(),
    label: str = "label",
) -> lgb.Booster:
    """LightGBM trained on ``train`` for up to ``rounds.num_boost_round`` rounds, with
    early stopping on ``valid`` log loss.

    Returns a booster holding only the best iteration's trees (re-read from its
    text form, exactly what is saved and served).
    """
    X_train = prepare_features(train, features, categories)
    X_valid = prepare_features(valid, features, categories)
    cat_cols = [c for c in features if c in categories]
    train_set = lgb.Dataset(
        X_train, label=train[label].to_numpy(), categorical_feature=cat_cols, free_raw_data=True
    )
    valid_set = lgb.Dataset(
        X_valid, label=valid[label].to_numpy(), categorical_feature=cat_cols, reference=train_set
    )
    full = {"objective": "binary", "metric": "binary_logloss", "verbose": -1, **params}
    full.pop("scale_pos_weight", None)
    full.pop("is_unbalance", None)
    booster = lgb.train(
        full,
        train_set,
        num_boost_round=rounds.num_boost_round,
        valid_sets=[valid_set],
        valid_names=["valid"],
        callbacks=[lgb.early_stopping(rounds.early_stopping_rounds, verbose=False)],
    )
    best = booster.best_iteration if booster.best_iteration > 0 else booster.current_iteration()
    return lgb.Booster(model_str=booster.model_to_string(num_iteration=best))


def wrap_booster(
    booster: lgb.Booster,
    *,
    features: list[str],
    categories: dict[str, list[str]],
    kind: str,
    spec_json: str,
    params: dict[str, Any],
) -> TrialcastModel:
    """A not-yet-calibrated model (``a = 1``, ``b = 0``) around a trained booster;
    calibrate it with ``fit_platt`` on validation margins."""
    return TrialcastModel(
        booster=booster,
        a=1.0,
        b=0.0,
        features=list(features),
        categories=categories,
        kind=kind,
        spec_json=spec_json,
        params=dict(params),
    )


def fit_model(
    train: pd.DataFrame,
    valid: pd.DataFrame,
    features: list[str],
    params: dict[str, Any],
    *,
    ctx: FitContext = FitContext(),
    label: str = "label",
) -> TrialcastModel:
    """Fit the booster on ``train`` (early stopping on ``valid``), then calibrate on ``valid``
    (Platt plus an offset per trial phase: ``training.calibration``).

    Args:
        train, valid: training-set parts with ``label`` and the feature columns;
            categorical features must have ``category`` (or string) dtype.
        features: the model's input columns.
        params: LightGBM parameters (class weights are dropped on purpose).
        ctx: the model kind, the feature spec (travels with the model) and the rounds.
        label: the label column.

    Returns:
        The calibrated model.
    """
    kind = model_kind(ctx.kind).name  # unknown kinds fail here, naming the known ones
    categories = categorical_levels(train, features)
    booster = fit_booster(
        train, valid, features, params, categories=categories, rounds=ctx.rounds, label=label
    )
    model = wrap_booster(
        booster,
        features=features,
        categories=categories,
        kind=kind,
        spec_json=ctx.spec_json,
        params=params,
    )
    return calibrate(model, valid, label=label)
