"""The saved model's pinned requirements are still checked, without scanning every install."""

import pytest
from conftest import SMALL_PARAMS, SYNTHETIC_FEATURES
from mlflow.utils import requirements_utils

from training.model import FitContext, fit_model
from training.split import build_time_split
from training.tracking import pip_requirements, requirements_checked_by_name, save_pyfunc_model


def test_a_mismatched_pin_is_still_reported(monkeypatch):
    monkeypatch.setattr(requirements_utils, "_MODULES_TO_PACKAGES", None)
    with requirements_checked_by_name():
        wrong = requirements_utils._check_requirement_satisfied("lightgbm==0.0.1")
        right = [requirements_utils._check_requirement_satisfied(r) for r in pip_requirements()]
    assert wrong is not None and wrong.package_name == "lightgbm"
    assert wrong.installed_version not in (None, "0.0.1")
    assert right == [None] * len(right)
    assert requirements_utils._MODULES_TO_PACKAGES is None  # MLflow's own map, built on demand


def test_saving_a_model_does_not_map_every_installed_package(
    monkeypatch, tmp_path, synthetic_frame
):
    frame, _ = synthetic_frame(2000, seed=4)
    split = build_time_split(frame, "conversion", valid_fraction=0.2, test_fraction=0.2)
    train, valid, test = split.frames(frame)
    model = fit_model(train, valid, SYNTHETIC_FEATURES, SMALL_PARAMS, ctx=FitContext("conversion"))

    def scan(*_args, **_kwargs):
        raise AssertionError("every installed distribution was scanned")

    monkeypatch.setattr(requirements_utils, "_MODULES_TO_PACKAGES", None)
    monkeypatch.setattr(requirements_utils.importlib_metadata, "packages_distributions", scan)
    path = save_pyfunc_model(model, test.head(5), tmp_path / "model")
    assert (path / "MLmodel").is_file()
    pins = (path / "requirements.txt").read_text().split()
    assert set(pins) >= set(pip_requirements()[1:])  # MLflow may rewrite its own pin


@pytest.mark.parametrize("built", [{"sklearn": ["scikit-learn"], "x": ["y"]}])
def test_a_map_mlflow_already_built_is_left_as_it_is(monkeypatch, built):
    monkeypatch.setattr(requirements_utils, "_MODULES_TO_PACKAGES", built)
    with requirements_checked_by_name():
        assert requirements_utils._MODULES_TO_PACKAGES is built
    assert requirements_utils._MODULES_TO_PACKAGES is built
