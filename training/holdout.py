"""The recent holdout: the newest cohorts' test part, scored by any number of models.

A challenger and a champion are only comparable on the same rows. The holdout is the
test part of today's training set, cut exactly the way training cuts it (whole
accounts in time order, newest last; see ``training.split``). Each model is scored
on features built with *its own* feature spec (the one it travels with), the way
the scoring service would build them: a champion fitted months ago may know a
different top-K of event types than today's spec.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import pandas as pd

from features.build import FeatureBuilder
from features.event_index import to_seconds
from features.personas import PersonaLevels, fit_persona_levels
from features.spec import FeatureSpec
from models.kinds import model_kind
from training.baselines import (
    build_base_rate_baseline,
    build_ceiling,
    build_persona_baseline,
    fit_logistic_baseline,
)
from training.metrics import evaluate_models, log_loss
from training.persona_rates import last_snapshot_rows
from training.split import split_training_frame

#: Holdout columns that identify, time or label a row (kept when features are rebuilt).
ROW_COLUMNS = ("account_id", "snapshot", "snapshot_day", "trial_start", "label", "as_of")


class ScoringModel(Protocol):
    """What the holdout needs from a model (``training.model.TrialcastModel`` fits)."""

    spec_json: str
    features: list[str]

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray: ...


@dataclass
class Holdout:
    """The newest cohorts' test rows, with one probability column per scored model.

    Attributes:
        kind: ``"conversion"`` or ``"churn"``.
        train: the training part of the same split (base rates, baselines).
        test: the holdout rows; ``p_<name>`` columns are added by ``score``.
        prob_cols: model name -> probability column in ``test``.
        persona_levels: lead-type levels for the persona baseline (default: the
            company's own, fitted on ``train``'s last snapshot per trial).
    """

    kind: str
    train: pd.DataFrame
    test: pd.DataFrame
    prob_cols: dict[str, str] = field(default_factory=dict)
    persona_levels: PersonaLevels | None = None

    @property
    def labels(self) -> np.ndarray:
        return self.test["label"].to_numpy(dtype=np.float64)

    def add(self, name: str, p: np.ndarray) -> None:
        """Add the probabilities ``p`` (aligned with ``test``) as model ``name``."""
        col = f"p_{name}"
        self.test[col] = np.asarray(p, dtype=np.float64)
        self.prob_cols[name] = col

    def score(self, name: str, model: ScoringModel, builder: FeatureBuilder | None = None) -> None:
        """Score ``model`` on the holdout as model ``name``.

        With ``builder`` (the indexed tables the holdout was built from), the rows are
        rebuilt with the model's own feature spec when it differs from the one the
        holdout was built with; without it the holdout's columns are used as they are.

        Raises:
            KeyError: the model needs a column neither the holdout nor its spec gives.
            ValueError: the model's feature spec cannot be read.
        """
        frame = self.test
        if builder is not None and model.spec_json:
            spec = FeatureSpec.from_json(model.spec_json)
            if not same_columns(spec, builder.spec):
                frame = rebuild_rows(builder, spec, self.test)
        self.add(name, model.predict_proba(frame))

    def log_loss(self, name: str) -> float:
        """Log loss of model ``name`` on the holdout."""
        return log_loss(self.labels, self.test[self.prob_cols[name]])

    def metrics(self) -> pd.DataFrame:
        """Tidy metrics of every scored model (overall and per snapshot)."""
        return evaluate_models(self.test, self.prob_cols)

    def add_baselines(
        self, features: list[str] | None = None, *, truth: pd.DataFrame | None = None
    ) -> None:
        """Add the base rate, the persona heuristic (conversion), a logistic regression
        on ``features`` (fitted on ``train``) and, with the demo ``truth``, the ceiling."""
        self.add("base_rate", build_base_rate_baseline(self.train, self.test))
        if model_kind(self.kind).persona_baseline:
            levels = self.persona_levels or fit_persona_levels(last_snapshot_rows(self.train))
            self.add("persona", build_persona_baseline(self.train, self.test, levels))
        if features:
            usable = [f for f in features if f in self.train.columns]
            self.add("logistic", fit_logistic_baseline(self.train, usable).predict_proba(self.test))
        if truth is not None:
            self.add("ceiling", build_ceiling(self.test, truth, self.kind))


def recent_holdout(
    frame: pd.DataFrame,
    kind: str,
    *,
    valid_fraction: float,
    test_fraction: float,
    horizon_days: float | None = None,
) -> Holdout:
    """The test part of ``frame`` (newest cohorts) and its training part.

    The same split ``training.train.fit_and_evaluate`` makes with the same fractions
    (give the churn ``horizon_days``: churn is split out of time), so the
    challenger trained on ``frame`` never saw these rows.
    """
    split = split_training_frame(
        frame,
        kind,
        valid_fraction=valid_fraction,
        test_fraction=test_fraction,
        horizon_days=horizon_days,
    )
    train, _valid, test = split.frames(frame)
    return Holdout(kind=kind, train=train, test=test.copy())


def same_columns(a: FeatureSpec, b: FeatureSpec) -> bool:
    """True when two specs give the same feature columns and categorical levels."""
    return (
        a.top_event_types == b.top_event_types
        and a.event_slugs == b.event_slugs
        and a.categorical_levels == b.categorical_levels
    )


def rebuild_rows(builder: FeatureBuilder, spec: FeatureSpec, rows: pd.DataFrame) -> pd.DataFrame:
    """The features of ``rows`` (``account_id``, ``as_of``, ``snapshot``) rebuilt with ``spec``.

    Point in time as before (same ``as_of``); one feature build per snapshot name,
    since an account appears at most once per snapshot. Row order is kept.
    """
    other = dataclasses.replace(builder, spec=spec)
    positions = other.positions(pd.Index(rows["account_id"].astype(str)))
    as_of = to_seconds(pd.to_datetime(rows["as_of"]).to_numpy())
    groups = (
        rows["snapshot"].astype(str).to_numpy()
        if "snapshot" in rows.columns
        else np.zeros(len(rows), dtype=int)
    )
    parts = []
    for value in pd.unique(groups):
        where = np.flatnonzero(groups == value)
        built = other.build(positions[where], as_of[where]).reset_index(drop=True)
        built.index = rows.index[where]
        parts.append(built.drop(columns=["as_of"]))
    features = pd.concat(parts).reindex(rows.index)
    keep = [c for c in ROW_COLUMNS if c in rows.columns]
    return pd.concat([rows[keep], features], axis=1)
