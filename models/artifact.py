"""The scoring artifact: a LightGBM booster plus Platt scaling on its raw margin.

This is what training writes and what batch scoring and the service read
(``booster.txt``, ``calibration.json``, ``feature_spec.json``). It lives in
``serving`` because serving must never import ``training``; ``training.model``
re-exports these names and adds the fitting code.

Why Platt on the margin (and not isotonic): ``p = sigmoid(a * margin + b)`` with
``a > 0`` is a strictly increasing affine map in log-odds space, so the ranking is
the booster's and the booster's exact TreeSHAP contributions, scaled by ``a``, add
up to the calibrated log-odds (``base = a * bias + b``). Sales read those
contributions as "the reasons behind the score"; they stay exact after calibration.

Phase offsets: one Platt map for every snapshot leaves trials in some phases
(a long trial's middle, trials past their end) off by several percent. An
optional log-odds offset per trial phase (``models.phases``: share of the trial
elapsed, or past end) corrects each phase's level. The phase is read from the
model's own ``trial_days_elapsed`` and ``trial_length_days`` inputs, and the
offset is credited to ``trial_days_elapsed``'s contribution, so the reasons
still add up exactly to the served log-odds.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from scipy.special import expit

from models.phases import ELAPSED, LENGTH, cell_codes, offsets_of

MODEL_KINDS = ("conversion", "churn")
FORMAT_VERSION = 1
BOOSTER_FILE = "booster.txt"
CALIBRATION_FILE = "calibration.json"
SPEC_FILE = "feature_spec.json"
#: The logged artifact folder holding the model files (``training.pyfunc`` logs it).
ARTIFACT_KEY = "trialcast_model"
#: Every file of a saved model (what the registry's ``trialcast_model`` artifact holds).
MODEL_FILES = (BOOSTER_FILE, CALIBRATION_FILE, SPEC_FILE)


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
        phase_offsets: log-odds added per trial phase (``models.phases.PHASE_NAMES``)
            and per phase x trial length (``"21d 0-25%"``, on top of its phase's;
            ``models.phases.offsets_of``); empty: one calibration for all phases.
    """

    booster: lgb.Booster
    a: float
    b: float
    features: list[str]
    categories: dict[str, list[str]]
    kind: str
    spec_json: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    phase_offsets: dict[str, float] = field(default_factory=dict)
    _codes_cache: dict[str, dict[str, float]] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def prepare(self, X: pd.DataFrame) -> pd.DataFrame:
        """``X`` reduced to the model's columns with the model's dtypes."""
        return prepare_features(X, self.features, self.categories)

    def margin(self, X: pd.DataFrame) -> np.ndarray:
        """The booster's raw score (uncalibrated log-odds)."""
        return np.asarray(self.booster.predict(self.prepare(X), raw_score=True), dtype=np.float64)

    def logit(self, X: pd.DataFrame) -> np.ndarray:
        """Calibrated log-odds ``a * margin + b`` (+ the row's phase offset)."""
        return self.a * self.margin(X) + self.b + self.phase_shift(X)

    def phase_shift(self, X: pd.DataFrame) -> np.ndarray:
        """The phase offset of each row of a feature frame (zeros without offsets)."""
        if self._matrix_columns() is None:
            return np.zeros(len(X))
        elapsed = pd.to_numeric(X[ELAPSED], errors="coerce").to_numpy(dtype=np.float64)
        length = pd.to_numeric(X[LENGTH], errors="coerce").to_numpy(dtype=np.float64)
        return self._shift(elapsed, length)

    def _shift(self, elapsed: np.ndarray, length: np.ndarray) -> np.ndarray:
        return offsets_of(self.phase_offsets, cell_codes(elapsed, length))

    def _matrix_shift(self, M: np.ndarray) -> np.ndarray | None:
        """Phase offsets of a model input matrix, or None when the model has none."""
        columns = self._matrix_columns()
        return None if columns is None else self._shift(M[:, columns[0]], M[:, columns[1]])

    def _matrix_columns(self) -> tuple[int, int] | None:
        """Positions of the phase inputs among the features (None: no phase offsets)."""
        if not self.phase_offsets or ELAPSED not in self.features or LENGTH not in self.features:
            return None
        return self.features.index(ELAPSED), self.features.index(LENGTH)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Calibrated probability of the positive class (conversion / churn)."""
        return np.asarray(expit(self.logit(X)), dtype=np.float64)

    def contributions(self, X: pd.DataFrame) -> Contributions:
        """Exact per-feature contributions to the calibrated log-odds (TreeSHAP x ``a``)."""
        raw = np.asarray(self.booster.predict(self.prepare(X), pred_contrib=True))
        values = pd.DataFrame(self.a * raw[:, :-1], index=X.index, columns=self.features)
        if self._matrix_columns() is not None:
            values[ELAPSED] += self.phase_shift(X)
        bias = float(raw[0, -1]) if len(raw) else float(self._bias())
        return Contributions(values=values, base=self.a * bias + self.b)

    def _bias(self) -> float:
        empty = pd.DataFrame({c: [np.nan] for c in self.features})
        raw = self.booster.predict(
            prepare_features(empty, self.features, self.categories), pred_contrib=True
        )
        return float(np.asarray(raw)[0, -1])

    # --- the fast path: plain float matrices, no pandas (what the service uses) ----------

    def matrix(self, records: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """The model input matrix of ``records`` (feature name -> value mappings).

        Numeric values become float64 (``None`` and absent keys are missing);
        categorical values become the index of their training level, exactly as
        LightGBM encodes a pandas ``category`` column (unknown levels are missing).
        Gives the same predictions as ``prepare`` on the equivalent frame.
        """
        levels = self._level_codes()
        out = np.full((len(records), len(self.features)), np.nan, dtype=np.float64)
        for i, record in enumerate(records):
            row = out[i]
            for j, name in enumerate(self.features):
                value = record.get(name)
                if value is None:
                    continue
                codes = levels.get(name)
                if codes is not None:
                    code = codes.get(str(value))
                    if code is not None:
                        row[j] = code
                else:
                    try:
                        row[j] = float(value)
                    except (TypeError, ValueError):  # as pd.to_numeric(errors="coerce")
                        continue
        return out

    def matrix_from_frame(self, frame: pd.DataFrame) -> np.ndarray:
        """The model input matrix of a feature frame (see ``matrix``), vectorised."""
        prepared = self.prepare(frame)
        out = np.empty((len(frame), len(self.features)), dtype=np.float64)
        for j, name in enumerate(self.features):
            col = prepared[name]
            if name in self.categories:
                codes = np.asarray(col.cat.codes, dtype=np.float64)
                out[:, j] = np.where(codes < 0, np.nan, codes)
            else:
                out[:, j] = col.to_numpy(dtype=np.float64)
        return out

    def explain_matrix(self, M: np.ndarray, *, num_threads: int = 0) -> tuple[np.ndarray, float]:
        """Contributions to the calibrated log-odds of each row of ``M``, and the base value.

        One TreeSHAP pass (``pred_contrib``) gives both the explanation and the
        score: ``base + values.sum(axis=1)`` is the calibrated log-odds.

        Args:
            M: a matrix from ``matrix`` / ``matrix_from_frame``.
            num_threads: LightGBM threads (0: its default; 1 is fastest for a few rows).
        """
        if len(M) == 0:
            return np.zeros((0, len(self.features))), self.a * self._bias() + self.b
        kwargs: dict[str, Any] = {"num_threads": num_threads} if num_threads else {}
        raw = np.asarray(self.booster.predict(M, pred_contrib=True, **kwargs), dtype=np.float64)
        values = self.a * raw[:, :-1]
        shift = self._matrix_shift(M)
        if shift is not None:
            values[:, self.features.index(ELAPSED)] += shift
        return values, self.a * float(raw[0, -1]) + self.b

    def _level_codes(self) -> dict[str, dict[str, float]]:
        cached = self._codes_cache
        if cached is None:
            cached = {
                name: {str(level): float(k) for k, level in enumerate(levels)}
                for name, levels in self.categories.items()
            }
            self._codes_cache = cached
        return cached

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
            "phase_offsets": self.phase_offsets,
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
            phase_offsets={str(k): float(v) for k, v in meta.get("phase_offsets", {}).items()},
        )


def sigmoid(z: float) -> float:
    """The logistic function of one log-odds value, overflow-safe."""
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)
