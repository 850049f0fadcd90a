"""The library API: a point-in-time transformer and a calibrated classifier, no MLflow.

Checked on a generated company unlike the demo's defaults (30-day trials only,
a 10-day conversion window), against scikit-learn's own contracts."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from features.build import feature_columns
from features.config import load_demo_config
from features.demo.generator import generate_demo_data
from features.tables import Tables
from features.transformer import PointInTimeFeatures
from training.estimator import TrialcastClassifier


@pytest.fixture(scope="module")
def company():
    demo = generate_demo_data(
        1500, seed=21, trial_days=(30,), conversion_window_days=10, start="2025-06-01"
    )
    config = load_demo_config().model_copy(
        update={"trial": load_demo_config().trial.model_copy(update={"conversion_window_days": 10})}
    )
    return demo, config


@pytest.fixture(scope="module")
def trial_set(company):
    demo, config = company
    pit = PointInTimeFeatures(config).fit(demo.tables)
    frame = pit.training_set(demo.tables).sort_values("as_of", kind="stable")
    return pit, frame.reset_index(drop=True)


def test_fit_returns_self_and_probabilities_are_n_by_2(trial_set):
    pit, frame = trial_set
    X, y = frame[pit.feature_names_out_], frame["label"]
    clf = TrialcastClassifier(num_boost_round=200)
    assert clf.fit(X, y) is clf
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert set(clf.predict(X)) <= {0, 1}
    assert clf.a_ > 0 and list(clf.classes_) == [0, 1]
    assert list(clf.feature_names_in_) == list(X.columns)


def test_explanations_add_up_to_the_served_logit(trial_set):
    pit, frame = trial_set
    X, y = frame[pit.feature_names_out_], frame["label"]
    clf = TrialcastClassifier(num_boost_round=150).fit(X, y)
    head = X.head(200)
    contributions = clf.explain(head)
    np.testing.assert_allclose(
        contributions.sum(axis=1).to_numpy(), clf.decision_function(head), atol=1e-9
    )
    p = clf.predict_proba(head)[:, 1]
    np.testing.assert_allclose(1 / (1 + np.exp(-contributions.sum(axis=1))), p, atol=1e-12)


def test_clone_and_cross_validation_work_and_beat_the_base_rate(trial_set):
    pit, frame = trial_set
    X, y = frame[pit.feature_names_out_], frame["label"]
    clf = TrialcastClassifier({"num_leaves": 15}, num_boost_round=150)
    copy = clone(clf)
    assert copy.get_params()["params"] == {"num_leaves": 15}
    scores = -cross_val_score(copy, X, y, cv=3, scoring="neg_log_loss")
    base = y.mean()
    base_loss = -(base * np.log(base) + (1 - base) * np.log(1 - base))
    assert np.all(scores < base_loss), (scores, base_loss)
    # and it ranks at least as well as a plain logistic regression on the numeric columns
    numeric = X.select_dtypes("number").fillna(0)
    logistic = -cross_val_score(
        make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)),
        numeric,
        y,
        cv=3,
        scoring="neg_log_loss",
    )
    assert scores.mean() <= logistic.mean() + 0.01


def test_no_mlflow_is_needed():
    code = (
        "import sys\n"
        "import training.estimator, features.transformer\n"
        "print('mlflow' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_transformer_is_point_in_time_and_fitted_on_the_training_period(company):
    demo, config = company
    tables = demo.tables
    cutoff = pd.Timestamp("2026-01-01")
    early = tables.accounts["trial_start"] < cutoff
    past = Tables(
        events=tables.events[tables.events["timestamp"] < cutoff],
        accounts=tables.accounts[early],
        communications=None,
    )
    pit = PointInTimeFeatures(config).fit(past)
    # the spec was chosen from the past only, and transforming later data keeps it
    later = pit.transform(tables, as_of=cutoff + pd.Timedelta(days=60))
    assert feature_columns(later) == pit.feature_names_out_
    # events at or after as_of change nothing
    as_of = pd.Timestamp("2026-02-01")
    cut = Tables(
        events=tables.events[tables.events["timestamp"] < as_of],
        accounts=tables.accounts,
        communications=tables.communications,
    )
    pd.testing.assert_frame_equal(pit.transform(tables, as_of), pit.transform(cut, as_of))
    with pytest.raises(RuntimeError, match="fit"):
        PointInTimeFeatures(config).transform(tables)
