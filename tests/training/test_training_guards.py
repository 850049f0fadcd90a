"""Guards: too little data is refused, leaks are caught, the base rate must be beaten."""

import numpy as np
import pandas as pd
import pytest

from features.config import load_demo_config
from training.guards import (
    NotEnoughDataError,
    check_base_rate,
    check_enough_data,
    check_leakage,
    single_feature_auc,
)
from training.train import RecordTarget, TrainingSets, fit_and_evaluate, train_models


@pytest.fixture
def config():
    base = load_demo_config()
    # a forced leak never stops improving: cap the rounds to keep the test fast
    return base.model_copy(update={"model": base.model.model_copy(update={"num_boost_round": 150})})


def _with_leak(frame: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return frame.assign(leak=frame["label"] + rng.normal(0, 0.1, len(frame)))


def test_planted_leak_is_flagged_and_excluded(synthetic_frame):
    frame, _ = synthetic_frame(2000)
    frame = _with_leak(frame)
    features = ["x1", "x2", "x3", "x4", "x5", "firmo_plan", "leak"]
    report = check_leakage(frame, features, threshold=0.98)
    assert set(report.flagged) == {"leak"} and report.flagged["leak"] > 0.99
    assert report.excluded == ["leak"] and "leak" not in report.kept
    assert "probable leak, EXCLUDED" in report.message()
    forced = check_leakage(frame, features, threshold=0.98, force_features=["leak"])
    assert forced.excluded == [] and "leak" in forced.kept
    assert "kept (forced)" in forced.message()


def test_leak_handling_in_the_training_job(synthetic_frame, config):
    frame, _ = synthetic_frame(3000, snapshots=("d1", "end"))
    frame = _with_leak(frame)
    fitted = fit_and_evaluate(config, frame, "conversion")
    assert "leak" in fitted.leakage.excluded and "leak" not in fitted.model.features
    assert {"x1", "firmo_plan", "trial_days_elapsed"} <= set(fitted.model.features)
    assert not {"account_id", "trial_start", "as_of", "label"} & set(fitted.model.features)
    forced = fit_and_evaluate(config, frame, "conversion", force_features=("leak",))
    assert "leak" in forced.model.features
    # with the leak the held-out ranking is (nearly) perfect: proof the leak really leaks
    row = forced.metrics.query("model == 'model' and segment == 'all'").iloc[0]
    assert row["roc_auc"] > 0.99


def test_missing_values_count_as_a_value():
    y = np.array([1, 1, 1, 0, 0, 0] * 50)
    # missing exactly when positive: a perfect leak even though observed values are constant
    x = pd.Series(np.where(y == 1, np.nan, 5.0))
    assert single_feature_auc(x, y) == pytest.approx(1.0)
    cat = pd.Series(pd.Categorical(np.where(y == 1, "won", "open")))
    assert single_feature_auc(cat, y) == pytest.approx(1.0)
    assert single_feature_auc(pd.Series(np.ones(len(y))), y) == pytest.approx(0.5)


def test_too_little_data_is_refused_with_a_clear_message(synthetic_frame, config):
    frame, _ = synthetic_frame(200, seed=2)
    frame = frame.assign(label=0)
    frame.loc[frame.index[:30], "label"] = 1
    with pytest.raises(NotEnoughDataError) as info:
        check_enough_data(frame, "conversion", min_positives=50)
    message = str(info.value)
    assert "200 labelled rows from 200 accounts" in message
    assert "only 30 converted" in message and "at least 50" in message
    assert "min_positives" in message
    with pytest.raises(NotEnoughDataError, match="both outcomes are needed"):
        check_enough_data(frame.assign(label=0), "churn", min_positives=1)
    # the whole job refuses too, before touching MLflow
    with pytest.raises(NotEnoughDataError, match="only 30 converted"):
        train_models(
            config,
            TrainingSets(conversion=frame, churn=None),
            target=RecordTarget(tracking_uri="sqlite://"),
        )


def test_base_rate_check():
    y = np.array([0, 0, 0, 1] * 25)
    good = check_base_rate(y, np.where(y == 1, 0.7, 0.1), train_rate=0.25)
    assert good.beats and "beats the base rate" in good.message("conversion")
    bad = check_base_rate(y, np.where(y == 1, 0.1, 0.7), train_rate=0.25)
    assert not bad.beats
    assert "does NOT beat the base rate" in bad.message("churn")
