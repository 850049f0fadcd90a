"""The trialcast model: a LightGBM booster plus Platt scaling on its raw margin.

Why Platt on the margin (and not isotonic): ``p = sigmoid(a * margin + b)`` with
``a > 0`` is a strictly increasing affine map in log-odds space, so the ranking is
the booster's and the booster's exact TreeSHAP contributions, scaled by ``a``, add
up to the calibrated log-odds (``base = a * bias + b``). Sales read those
contributions as "the reasons behind the score"; they stay exact after calibration.

No class weights are used: weighted training shifts the margin away from the
true log-odds and would have to be undone; calibration then has less to fix.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import expit

MODEL_KINDS = ("conversion", "churn")
FORMAT_VERSION = 1
BOOSTER_FILE = "booster.txt"
CALIBRATION_FILE = "calibration.json"
SPEC_FILE = "feature_spec.json"
#: Smallest slope Platt scaling may take (keeps the map strictly increasing).
MIN_SLOPE = 1e-6


@dataclass(frozen=True)
class Contributions:
    """Per-feature contributions in calibrated log-odds.

    ``base + values.sum(axis=1)`` equals ``logit(predict_proba(X))`` row by row.

    Attributes:
        values: one row per input row, one column per model feature.
        base: the calibrated log-odds of the average account (``a * bias + b``).
    """

    values: pd.DataFrame
    base: float

    def logit(self) -> np.ndarray:
        """The calibrated log-odds these contributions add up to."""
        return self.base + self.values.to_numpy().sum(axis=1)


def prepare_features(
    frame: pd.DataFrame, features: list[str], categories: dict[str, list[str]]
) -> pd.DataFrame:
    """Model inputs in the model's column order and dtypes.

    Categorical columns become ``category`` with the training levels (unknown levels
    become missing); everything else becomes float64. Raises ``KeyError`` naming
    missing columns.
    """
    missing = [c for c in features if c not in frame.columns]
    if missing:
        raise KeyError(f"{len(missing)} model feature(s) missing from the input: {missing[:10]}")
    out: dict[str, Any] = {}
    for col in features:
        values = frame[col]
        if col in categories:
            levels = categories[col]
            text = values.astype("string").astype(object)
            known = values.notna().to_numpy() & text.isin(levels).to_numpy()
            out[col] = pd.Categorical(text.where(known, None), categories=levels)
        else:
            out[col] = pd.to_numeric(values, errors="coerce").astype(np.float64).to_numpy()
    return pd.DataFrame(out, index=frame.index)


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


@dataclass
class TrialcastModel:
    """A fitted conversion or churn model.

    Attributes:
        booster: the LightGBM booster (best iteration only).
        a, b: Platt scaling of the raw margin, ``a > 0``.
        features: input columns, in order.
        categories: levels of each categorical feature.
        kind: ``"conversion"`` or ``"churn"``.
        spec_json: the ``FeatureSpec`` (JSON) the features were built with.
        params: LightGBM parameters used.
    """

    booster: lgb.Booster
    a: float
    b: float
    features: list[str]
    categories: dict[str, list[str]]
    kind: str
    spec_json: str = ""
    params: dict[str, Any] = field(default_factory=dict)

    def prepare(self, X: pd.DataFrame) -> pd.DataFrame:
        """``X`` reduced to the model's columns with the model's dtypes."""
        return prepare_features(X, self.features, self.categories)

    def margin(self, X: pd.DataFrame) -> np.ndarray:
        """The booster's raw score (uncalibrated log-odds)."""
        return np.asarray(self.booster.predict(self.prepare(X), raw_score=True), dtype=np.float64)

    def logit(self, X: pd.DataFrame) -> np.ndarray:
        """Calibrated log-odds ``a * margin + b``."""
        return self.a * self.margin(X) + self.b

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Calibrated probability of the positive class (conversion / churn)."""
        return np.asarray(expit(self.logit(X)), dtype=np.float64)

    def contributions(self, X: pd.DataFrame) -> Contributions:
        """Exact per-feature contributions to the calibrated log-odds (TreeSHAP x ``a``)."""
        raw = np.asarray(self.booster.predict(self.prepare(X), pred_contrib=True))
        values = pd.DataFrame(self.a * raw[:, :-1], index=X.index, columns=self.features)
        bias = float(raw[0, -1]) if len(raw) else float(self._bias())
        return Contributions(values=values, base=self.a * bias + self.b)

    def _bias(self) -> float:
        empty = pd.DataFrame({c: [np.nan] for c in self.features})
        raw = self.booster.predict(
            prepare_features(empty, self.features, self.categories), pred_contrib=True
        )
        return float(np.asarray(raw)[0, -1])

    @property
    def best_iteration(self) -> int:
        """Number of boosting rounds kept."""
        return int(self.booster.num_trees())

    def calibration_dict(self) -> dict[str, Any]:
        """Everything but the booster and the spec, as plain JSON data."""
        return {
            "format_version": FORMAT_VERSION,
            "kind": self.kind,
            "a": self.a,
            "b": self.b,
            "features": self.features,
            "categories": self.categories,
            "params": self.params,
        }

    def save(self, directory: str | Path) -> Path:
        """Write ``booster.txt``, ``calibration.json`` and ``feature_spec.json`` into ``directory``.

        The serving layer loads these files directly (the booster for
        ``pred_contrib``, the JSON for the calibration and the column order).
        """
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        self.booster.save_model(str(path / BOOSTER_FILE))
        (path / CALIBRATION_FILE).write_text(json.dumps(self.calibration_dict(), indent=2))
        (path / SPEC_FILE).write_text(self.spec_json or "{}")
        return path

    @classmethod
    def load(cls, directory: str | Path) -> TrialcastModel:
        """Read a model written by ``save``."""
        path = Path(directory)
        meta = json.loads((path / CALIBRATION_FILE).read_text())
        if meta.get("format_version") != FORMAT_VERSION:
            raise ValueError(
                f"{path / CALIBRATION_FILE} has format {meta.get('format_version')}, "
                f"expected {FORMAT_VERSION}; retrain the model"
            )
        spec_path = path / SPEC_FILE
        spec_json = spec_path.read_text() if spec_path.exists() else ""
        return cls(
            booster=lgb.Booster(model_file=str(path / BOOSTER_FILE)),
            a=float(meta["a"]),
            b=float(meta["b"]),
            features=list(meta["features"]),
            categories={k: list(v) for k, v in meta["categories"].items()},
            kind=str(meta["kind"]),
            spec_json="" if spec_json == "{}" else spec_json,
            params=dict(meta.get("params", {})),
        )


def fit_booster(
    train: pd.DataFrame,
    valid: pd.DataFrame,
    features: list[str],
    params: dict[str, Any],
    *,
    categories: dict[str, list[str]],
    num_boost_round: int = 1000,
    early_stopping_rounds: int = 50,
    label: str = "label",
) -> lgb.Booster:
    """LightGBM trained on ``train`` with early stopping on ``valid`` log loss.

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
        num_boost_round=num_boost_round,
        valid_sets=[valid_set],
        valid_names=["valid"],
        callbacks=[lgb.early_stopping(early_stopping_rounds, verbose=False)],
    )
    best = booster.best_iteration if booster.best_iteration > 0 else booster.current_iteration()
    return lgb.Booster(model_str=booster.model_to_string(num_iteration=best))


def fit_model(
    train: pd.DataFrame,
    valid: pd.DataFrame,
    features: list[str],
    params: dict[str, Any],
    *,
    kind: str = "conversion",
    spec_json: str = "",
    num_boost_round: int = 1000,
    early_stopping_rounds: int = 50,
    label: str = "label",
) -> TrialcastModel:
    """Fit the booster on ``train`` (early stopping on ``valid``), then Platt-scale on ``valid``.

    Args:
        train, valid: training-set parts with ``label`` and the feature columns;
            categorical features must have ``category`` (or string) dtype.
        features: the model's input columns.
        params: LightGBM parameters (class weights are dropped on purpose).
        kind: ``"conversion"`` or ``"churn"``.
        spec_json: the feature spec the columns were built with (travels with the model).

    Returns:
        The calibrated model.
    """
    if kind not in MODEL_KINDS:
        raise ValueError(f"kind must be one of {MODEL_KINDS}, not {kind!r}")
    categories = categorical_levels(train, features)
    booster = fit_booster(
        train,
        valid,
        features,
        params,
        categories=categories,
        num_boost_round=num_boost_round,
        early_stopping_rounds=early_stopping_rounds,
        label=label,
    )
    model = TrialcastModel(
        booster=booster,
        a=1.0,
        b=0.0,
        features=list(features),
        categories=categories,
        kind=kind,
        spec_json=spec_json,
        params=dict(params),
    )
    model.a, model.b = fit_platt(model.margin(valid), valid[label].to_numpy())
    return model
