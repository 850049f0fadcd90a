"""Optuna search over the main LightGBM knobs, minimising validation log loss.

Searched: ``num_leaves``, ``learning_rate``, ``min_child_samples``,
``feature_fraction`` and ``lambda_l2``; everything else comes from
``[model].lightgbm``. Each trial trains with early stopping on the validation
part; the sampler is seeded, so the same data gives the same search.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
import pandas as pd

from training.metrics import log_loss
from training.model import fit_booster, prepare_features


@dataclass(frozen=True)
class TuneResult:
    """Best parameters found and the validation log loss they reached."""

    params: dict[str, Any]
    best_log_loss: float
    trials: int


def tune_params(
    train: pd.DataFrame,
    valid: pd.DataFrame,
    features: list[str],
    base_params: dict[str, Any],
    *,
    categories: dict[str, list[str]],
    n_trials: int,
    num_boost_round: int = 1000,
    early_stopping_rounds: int = 50,
    seed: int = 0,
    show_progress: bool = False,
) -> TuneResult:
    """Search LightGBM parameters; returns ``base_params`` updated with the best trial's."""
    X_valid = prepare_features(valid, features, categories)
    y_valid = valid["label"].to_numpy()

    def objective(trial: optuna.Trial) -> float:
        params = {
            **base_params,
            "num_leaves": trial.suggest_int("num_leaves", 7, 127, log=True),
            "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.2, log=True),
            "min_child_samples": trial.suggest_int("min_child_samples", 10, 300, log=True),
            "feature_fraction": trial.suggest_float("feature_fraction", 0.4, 1.0),
            "lambda_l2": trial.suggest_float("lambda_l2", 1e-3, 30.0, log=True),
        }
        booster = fit_booster(
            train,
            valid,
            features,
            params,
            categories=categories,
            num_boost_round=num_boost_round,
            early_stopping_rounds=early_stopping_rounds,
        )
        return log_loss(y_valid, np.asarray(booster.predict(X_valid)))

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.enqueue_trial(
        {
            k: base_params[k]
            for k in (
                "num_leaves",
                "learning_rate",
                "min_child_samples",
                "feature_fraction",
                "lambda_l2",
            )
            if k in base_params
        }
    )
    study.optimize(objective, n_trials=n_trials, show_progress_bar=show_progress)
    return TuneResult(
        params={**base_params, **study.best_params},
        best_log_loss=float(study.best_value),
        trials=len(study.trials),
    )
