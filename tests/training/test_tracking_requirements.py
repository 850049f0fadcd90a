"""The saved model's pinned requirements are still checked, without scanning every install."""

import logging

import pytest
from conftest import SMALL_PARAMS, SYNTHETIC_FEATURES
from mlflow.utils import requirements_utils

from training.model import FitContext, fit_model
from training.split import build_time_split
from training.tracking import pip_requirements, requirements_checked_by_name, save_pyfunc_model


def test_a_mismatched_pin_is_still_reported(monkeypatch, caplog):
    monkeypatch.setattr(requirements_utils, "_MODULES_TO_PACKAGES", None)
    with caplog.at_level(logging.WARNING), requirements_checked_by_name():
        requirements_utils.warn_dependency_requirement_mismatches(["lightgbm==0.0.1"])
        requirements_utils.warn_dependency_requirement_mismatches(pip_requirements())
    mismatches = [r.getMessage() for r in caplog.records if "mismatches" in r.getMessage()]
    assert len(mismatches) == 1 and "lightgbm" in mismatches[0]
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
