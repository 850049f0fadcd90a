"""The trialcast model as a scikit-learn classifier: LightGBM + Platt scaling on the margin.

``TrialcastClassifier`` is the library face of ``training.model.fit_model``: no
MLflow, no registry, no config file. ``fit`` returns ``self`` and stores its
fitted state in attributes ending in ``_``; ``predict_proba`` gives the usual
n x 2 array; ``explain`` gives exact per-feature contributions in calibrated
log-odds that add up (with ``base``) to the logit of ``predict_proba``. Because
it follows the estimator contract, ``clone``, ``cross_val_score`` and
``CalibrationDisplay`` work on it.

Example:
    >>> clf = TrialcastClassifier(num_boost_round=200).fit(X_train, y_train)
    >>> p = clf.predict_proba(X_test)[:, 1]
    >>> reasons = clf.explain(X_test)        # columns: features..., "base"
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from models.artifact import TrialcastModel
from models.config_sections import DEFAULT_LIGHTGBM_PARAMS
from training.model import FitContext, Rounds, fit_model

#: LightGBM defaults of the library estimator: the CLI's (``[model].lightgbm``), one thread.
DEFAULT_PARAMS: dict[str, Any] = {**DEFAULT_LIGHTGBM_PARAMS, "num_threads": 1}


class TrialcastClassifier(ClassifierMixin, BaseEstimator):
    """Calibrated LightGBM on a feature frame.

    Args:
        params: LightGBM parameters, merged over ``DEFAULT_PARAMS``.
        num_boost_round: maximum boosting rounds.
        early_stopping_rounds: stop when the validation log loss has not
            improved for this many rounds.
        valid_fraction: share of the rows held out (the LAST rows, in the order
            given: pass rows sorted by time) for early stopping and Platt
            scaling when ``fit`` gets no explicit validation part.
        kind: ``"conversion"`` or ``"churn"`` (travels with the fitted model).

    Attributes:
        model_: the fitted ``TrialcastModel`` (what the registry stores).
        a_, b_: Platt slope and intercept on the booster margin.
        classes_: ``[0, 1]``.
        feature_names_in_: the input columns, in order.
        n_features_in_: their number.
    """

    def __init__(
        self,
        params: dict[str, Any] | None = None,
        *,
        num_boost_round: int = 1000,
        early_stopping_rounds: int = 50,
        valid_fraction: float = 0.2,
        kind: str = "conversion",
    ) -> None:
        self.params = params
        self.num_boost_round = num_boost_round
        self.early_stopping_rounds = early_stopping_rounds
        self.valid_fraction = valid_fraction
        self.kind = kind

    def fit(
        self,
        X: pd.DataFrame,
        y: Any,
        *,
        X_valid: pd.DataFrame | None = None,
        y_valid: Any = None,
    ) -> TrialcastClassifier:
        """Fit the booster (early stopping on the validation part), then Platt-scale on it."""
        if not isinstance(X, pd.DataFrame):
            X = pd.DataFrame(np.asarray(X)).add_prefix("x")
        labels = np.asarray(y).astype(np.int8)
        if len(labels) != len(X):
            raise ValueError(f"X has {len(X)} rows but y has {len(labels)}")
        if set(np.unique(labels)) - {0, 1}:
            raise ValueError("y must be binary (0/1)")
        train = X.reset_index(drop=True).assign(label=labels)
        if X_valid is None:
            if not 0 < self.valid_fraction < 1:
                raise ValueError("valid_fraction must be between 0 and 1")
            cut = round(len(train) * (1 - self.valid_fraction))
            train, valid = train.iloc[:cut], train.iloc[cut:]
        else:
            valid = X_valid.reset_index(drop=True).assign(label=np.asarray(y_valid).astype(np.int8))
        for name, part in (("training", train), ("validation", valid)):
            if part["label"].nunique() < 2:
                raise ValueError(f"the {name} part needs both classes (0 and 1)")
        features = [c for c in X.columns if c != "label"]
        self.model_: TrialcastModel = fit_model(
            train,
            valid,
            features,
            {**DEFAULT_PARAMS, **(self.params or {})},
            ctx=FitContext(
                kind=self.kind, rounds=Rounds(self.num_boost_round, self.early_stopping_rounds)
            ),
        )
        self.a_, self.b_ = self.model_.a, self.model_.b
        self.classes_ = np.array([0, 1])
        self.feature_names_in_ = np.array(features, dtype=object)
        self.n_features_in_ = len(features)
        return self

    def _frame(self, X: Any) -> pd.DataFrame:
        check_is_fitted(self, "model_")
        if isinstance(X, pd.DataFrame):
            return X
        return pd.DataFrame(np.asarray(X), columns=list(self.feature_names_in_))

    def decision_function(self, X: Any) -> np.ndarray:
        """Calibrated log-odds ``a_ * margin + b_``."""
        return self.model_.logit(self._frame(X))

    def predict_proba(self, X: Any) -> np.ndarray:
        """``[[P(0), P(1)], ...]``: calibrated probabilities, n x 2."""
        p = self.model_.predict_proba(self._frame(X))
        return np.column_stack([1.0 - p, p])

    def predict(self, X: Any) -> np.ndarray:
        """1 where the calibrated probability is at least 0.5."""
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(np.int8)

    def explain(self, X: Any) -> pd.DataFrame:
        """Exact TreeSHAP contributions in calibrated log-odds, one column per
        feature plus ``base``; each row sums to ``decision_function``."""
        contrib = self.model_.contributions(self._frame(X))
        return contrib.values.assign(base=contrib.base)
