"""What the learned model must beat: the persona heuristic, logistic regression, the base rate.

- **persona**: the seven trial lead types of DOMAIN.md, each predicting the
  conversion rate observed for its type in the training part (by snapshot;
  ``training.persona_rates``), with the company's own levels; conversion only.
  (The seed's stated chances are shown beside the observed ones, not scored.)
- **logistic**: a plain logistic regression on the same features (impute, one-hot
  the categoricals, standardise), fitted on the training part.
- **base_rate**: the training positive rate for every row (the no-skill forecast).
- **ceiling** (demo data only): the generator's true probability for the row,
  ``p_convert_open_<snapshot>`` (conversion, given the trial is still open then)
  or ``p_churn_90d`` (churn). No model can beat it on average.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from features.personas import PersonaLevels
from models.kinds import model_kind
from training.persona_rates import build_observed_persona_baseline


def build_persona_baseline(
    train: pd.DataFrame, frame: pd.DataFrame, levels: PersonaLevels | None = None
) -> np.ndarray:
    """Each row's lead-type conversion rate as observed in ``train`` (see
    ``training.persona_rates.build_observed_persona_baseline``)."""
    return build_observed_persona_baseline(train, frame, levels)


def build_base_rate_baseline(train: pd.DataFrame, frame: pd.DataFrame) -> np.ndarray:
    """The training positive rate, for every row of ``frame``."""
    return np.full(len(frame), float(train["label"].mean()))


def _split_columns(frame: pd.DataFrame, features: list[str]) -> tuple[list[str], list[str]]:
    categorical = [
        c
        for c in features
        if isinstance(frame[c].dtype, pd.CategoricalDtype)
        or pd.api.types.is_object_dtype(frame[c].dtype)
        or pd.api.types.is_string_dtype(frame[c].dtype)
    ]
    numeric = [c for c in features if c not in categorical]
    return numeric, categorical


def _logistic_inputs(
    frame: pd.DataFrame, numeric: list[str], categorical: list[str]
) -> pd.DataFrame:
    out: dict[str, pd.Series] = {
        c: pd.to_numeric(frame[c], errors="coerce").astype(np.float64) for c in numeric
    }
    out.update(
        {
            c: frame[c].astype(object).where(frame[c].notna(), "missing").astype(str)
            for c in categorical
        }
    )
    data = pd.DataFrame(out, index=frame.index)
    return data.replace([np.inf, -np.inf], np.nan)


class LogisticBaseline:
    """Logistic regression on the model's features: impute, one-hot, standardise."""

    def __init__(self, features: list[str], *, C: float = 1.0) -> None:
        self.features = list(features)
        self.C = C
        self.numeric: list[str] = []
        self.categorical: list[str] = []
        self.pipeline: Pipeline | None = None

    def fit(self, train: pd.DataFrame) -> LogisticBaseline:
        """Fit on ``train`` (its ``label`` column and the features)."""
        self.numeric, self.categorical = _split_columns(train, self.features)
        # Columns empty on train carry nothing; imputation would drop them anyway.
        self.numeric = [c for c in self.numeric if train[c].notna().any()]
        transform = ColumnTransformer(
            [
                (
                    "num",
                    make_pipeline(
                        SimpleImputer(strategy="median", add_indicator=True), StandardScaler()
                    ),
                    self.numeric,
                ),
                ("cat", OneHotEncoder(handle_unknown="ignore", min_frequency=5), self.categorical),
            ]
        )
        self.pipeline = make_pipeline(
            transform, LogisticRegression(C=self.C, solver="newton-cholesky", max_iter=200)
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.pipeline.fit(
                _logistic_inputs(train, self.numeric, self.categorical), train["label"].to_numpy()
            )
        return self

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Probability of the positive class for each row."""
        if self.pipeline is None:
            raise RuntimeError("fit the logistic baseline first")
        X = _logistic_inputs(frame, self.numeric, self.categorical)
        return np.asarray(self.pipeline.predict_proba(X)[:, 1], dtype=np.float64)


def fit_logistic_baseline(train: pd.DataFrame, features: list[str]) -> LogisticBaseline:
    """A logistic regression fitted on ``train``; see ``LogisticBaseline``."""
    return LogisticBaseline(features).fit(train)


def build_ceiling(frame: pd.DataFrame, truth: pd.DataFrame, kind: str) -> np.ndarray:
    """The demo truth's probability for each row (NaN where the truth has none).

    Conversion rows: P(converts in the window | still open at the row's moment),
    from the truth's ``p_convert`` and the generator's timing law (its attrs) at
    the row's ``trial_days_elapsed``, so every snapshot has one (the days after
    trial end too); without those, ``p_convert_open_<snapshot>`` where the truth
    has it. Churn rows take ``p_churn_90d``. Joined on ``account_id``.
    """
    ids = frame["account_id"].astype(str).to_numpy()
    by_id = truth.assign(account_id=truth["account_id"].astype(str)).set_index("account_id")
    column = model_kind(kind).truth_column
    if column is not None:
        if column not in by_id.columns:
            return np.full(len(frame), np.nan)
        return by_id[column].reindex(ids).to_numpy(dtype=np.float64)
    timing = truth.attrs.get("conversion_timing")
    window = truth.attrs.get("conversion_window_days")
    if (
        timing is not None
        and window is not None
        and {"p_convert", "trial_days"} <= set(by_id.columns)
        and "trial_days_elapsed" in frame.columns
    ):
        from features.demo.latent import DemoConversionLags, open_probability

        lags = DemoConversionLags.from_params(timing)
        p = by_id["p_convert"].reindex(ids).to_numpy(dtype=np.float64)
        length = by_id["trial_days"].reindex(ids).to_numpy(dtype=np.float64)
        day = pd.to_numeric(frame["trial_days_elapsed"], errors="coerce").to_numpy(dtype=float)
        return open_probability(p, lags.survival(day, length, float(window)))
    out = np.full(len(frame), np.nan)
    snaps = frame["snapshot"].astype(str).to_numpy()
    for snap in np.unique(snaps):
        col = f"p_convert_open_{snap}"
        if col in by_id.columns:
            mask = snaps == snap
            out[mask] = by_id[col].reindex(ids[mask]).to_numpy(dtype=np.float64)
    return out
