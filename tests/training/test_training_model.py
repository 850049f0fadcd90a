"""The calibrated model: exact contributions, calibration on a known model, save / load."""

import numpy as np
import pytest
import shap
from conftest import SMALL_PARAMS, SYNTHETIC_FEATURES
from scipy.special import logit

from training.metrics import expected_calibration_error
from training.model import FitContext, TrialcastModel, fit_model, fit_platt
from training.split import build_time_split

FEATURES, PARAMS = SYNTHETIC_FEATURES, SMALL_PARAMS


@pytest.fixture(scope="module")
def fitted(synthetic_frame):
    frame, _ = synthetic_frame(6000, seed=1, snapshots=("d1", "end"))
    split = build_time_split(frame, "conversion", valid_fraction=0.2, test_fraction=0.2)
    train, valid, test = split.frames(frame)
    model = fit_model(train, valid, FEATURES, PARAMS, ctx=FitContext("conversion", '{"v": 1}'))
    return model, test


def test_contributions_add_up_to_the_calibrated_logit(fitted):
    model, test = fitted
    X = test.head(500)
    contrib = model.contributions(X)
    assert list(contrib.values.columns) == FEATURES
    total = contrib.base + contrib.values.to_numpy().sum(axis=1)
    np.testing.assert_allclose(total, model.logit(X), rtol=0, atol=1e-9)
    p = model.predict_proba(X)
    assert ((p > 0) & (p < 1)).all()
    np.testing.assert_allclose(total, logit(p), rtol=0, atol=1e-9)
    assert model.a > 0


def test_contributions_equal_shap_tree_explainer_times_a(fitted):
    model, test = fitted
    X = test.head(300)
    explainer = shap.TreeExplainer(model.booster)
    expected = model.a * np.asarray(explainer.shap_values(model.prepare(X)))
    np.testing.assert_allclose(model.contributions(X).values.to_numpy(), expected, atol=1e-6)
    base = model.a * float(np.ravel(explainer.expected_value)[0]) + model.b
    assert model.contributions(X).base == pytest.approx(base, abs=1e-6)


def test_calibrated_on_a_known_logistic_model(synthetic_frame):
    frame, p_true = synthetic_frame(40_000, seed=3)
    split = build_time_split(frame, "conversion", valid_fraction=0.25, test_fraction=0.5)
    train, valid, test = split.frames(frame)
    model = fit_model(train, valid, FEATURES, PARAMS, ctx=FitContext("conversion"))
    p = model.predict_proba(test)
    assert len(test) >= 19_000
    assert expected_calibration_error(test["label"], p) < 0.02
    # and close to the truth row by row
    assert np.mean(np.abs(p - p_true[split.test])) < 0.06


def test_platt_slope_stays_positive_and_recovers_known_values():
    rng = np.random.default_rng(0)
    m = rng.normal(size=50_000)
    y = (rng.random(50_000) < 1 / (1 + np.exp(-(0.7 * m - 0.4)))).astype(int)
    a, b = fit_platt(m, y)
    assert a == pytest.approx(0.7, abs=0.05) and b == pytest.approx(-0.4, abs=0.05)
    # an anti-correlated margin would need a < 0: the slope sits at its bound instead
    a_neg, b_neg = fit_platt(-m, y)
    assert 0 < a_neg < 1e-3
    assert 1 / (1 + np.exp(-b_neg)) == pytest.approx(y.mean(), abs=0.01)


def test_save_load_round_trip(fitted, tmp_path):
    model, test = fitted
    model.save(tmp_path / "m")
    assert {p.name for p in (tmp_path / "m").iterdir()} == {
        "booster.txt", "calibration.json", "feature_spec.json"
    }  # fmt: skip
    again = TrialcastModel.load(tmp_path / "m")
    np.testing.assert_allclose(again.predict_proba(test), model.predict_proba(test), atol=1e-12)
    assert again.features == model.features and again.categories == model.categories
    assert again.spec_json == '{"v": 1}' and again.kind == "conversion"


def test_unknown_category_and_string_input(fitted):
    model, test = fitted
    X = test.head(20).copy()
    X["firmo_plan"] = X["firmo_plan"].astype(str)
    X.loc[X.index[0], "firmo_plan"] = "enterprise"  # never seen: treated as missing
    p = model.predict_proba(X)
    assert np.isfinite(p).all()
    np.testing.assert_allclose(p[1:], model.predict_proba(test.head(20))[1:])
    with pytest.raises(KeyError, match="missing"):
        model.predict_proba(X.drop(columns=["x1"]))
