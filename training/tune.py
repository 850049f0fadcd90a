"""Optuna search over the main LightGBM knobs, minimising validation log loss.

Searched: ``num_leaves`` (7-63), ``learning_rate`` (0.02-0.2),
``min_child_samples`` (10-300), ``feature_fraction`` (0.4-1) and ``lambda_l2``
(0.001-30); everything else comes from ``[model].lightgbm``. The first trial is
the configured parameters, so tuning never does worse on validation. Each trial
trains with early stopping on the validation part; the data is binned once for
all trials; the sampler is seeded, so the same data gives the same search.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from training.metrics import log_loss
from training.model import Rounds, prepare_features

if TYPE_CHECKING:  # Optuna is imported only when a search runs (``--tune``)
    import optuna


@dataclass(frozen=True)
class TuneOptions:
    """How the search runs.

    Attributes:
        n_trials: Optuna trials (the first is the configured parameters).
        seed: the sampler's seed (the same data and seed give the same search).
        show_progress: Optuna's progress bar.
    """

    n_trials: int
    seed: int = 0
    show_progress: bool = False


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
    search: TuneOptions,
    rounds: Rounds | None = None,
) -> TuneResult:
    """Search LightGBM parameters; returns ``base_params`` updated with the best trial's.

    Each trial trains for up to ``rounds.num_boost_round`` rounds with early stopping
    on ``valid`` (``rounds.early_stopping_rounds``; default ``Rounds()``)."""
    import optuna

    rounds = rounds or Rounds()
    X_train = prepare_features(train, features, categories)
    X_valid = prepare_features(valid, features, categories)
    y_valid = valid["label"].to_numpy()
    cat_cols = [c for c in features if c in categories]
    # Bin the data once for all trials; no pre-filtering, since trials lower min_child_samples.
    dataset_params = {"verbose": -1, "feature_pre_filter": False}
    train_set = lgb.Dataset(
        X_train,
        label=train["label"].to_numpy(),
        categorical_feature=cat_cols,
        params=dataset_params,
        free_raw_data=False,
    ).construct()
    valid_set = lgb.Dataset(
        X_valid,
        label=y_valid,
        categorical_feature=cat_cols,
        reference=train_set,
        params=dataset_params,
    ).construct()
    fixed = {
        "objective": "binary",
        "metric": "binary_logloss",
        **base_params,
        **dataset_params,
    }

    def objective(trial: optuna.Trial) -> float:
        params = {
            **fixed,
            "num_leaves": trial.suggest_int("num_leaves", 7, 63, log=True),
            "learning_rate": trial.suggest_float("learning_rate", 0.02, 0.2, log=True),
            "min_child_samples": trial.suggest_int("min_child_samples", 10, 300, log=True),
            "feature_fraction": trial.suggest_float("feature_fraction", 0.4, 1.0),
            "lambda_l2": trial.suggest_float("lambda_l2", 1e-3, 30.0, log=True),
        }
        booster = lgb.train(
            params,
            train_set,
            num_boost_round=rounds.num_boost_round,
            valid_sets=[valid_set],
            valid_names=["valid"],
            callbacks=[lgb.early_stopping(rounds.early_stopping_rounds, verbose=False)],
        )
        trial.set_user_attr("rounds", booster.best_iteration)
        return log_loss(
            y_valid, np.asarray(booster.predict(X_valid, num_iteration=booster.best_iteration))
        )

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="minimize", sampler=optuna.samplers.TPESampler(seed=search.seed)
    )
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
    study.optimize(objective, n_trials=search.n_trials, show_progress_bar=search.show_progress)
    return TuneResult(
        params={**base_params, **study.best_params},
        best_log_loss=float(study.best_value),
        trials=len(study.trials),
    )
