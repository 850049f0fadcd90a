"""What the recording step does faster still gives the same answers: the SHAP values
computed ahead, the garbage collector."""

from __future__ import annotations

import gc

import numpy as np
import pytest
from conftest import SMALL_PARAMS, SYNTHETIC_FEATURES

from training.model import FitContext, fit_model
from training.shap_sample import shap_rows
from training.split import build_time_split
from training.tracking import cyclic_gc_paused, explain_ahead


@pytest.fixture(scope="module")
def fitted(synthetic_frame):
    frame, _ = synthetic_frame(3000, seed=2, snapshots=("d1", "end"))
    split = build_time_split(frame, "conversion", valid_fraction=0.2, test_fraction=0.2)
    train, valid, test = split.frames(frame)
    model = fit_model(train, valid, SYNTHETIC_FEATURES, PARAMS, ctx=FitContext("conversion"))
    test = test.assign(p_model=model.predict_proba(test))
    return model, train, test


PARAMS = SMALL_PARAMS


def test_explain_ahead_gives_the_plot_rows_and_raises_where_read(fitted):
    model, _, test = fitted
    broken = test.drop(columns=["x2"])
    with explain_ahead({"ok": (model, test), "broken": (model, broken)}, sample=300) as ahead:
        sample = ahead["ok"].result()
        with pytest.raises(KeyError, match="x2"):
            ahead["broken"].result()
    rows = shap_rows(test, sample=300)
    assert sample.rows.equals(rows.index)
    expected = model.contributions(rows).values.to_numpy()
    assert np.array_equal(sample.values, expected)


def test_the_collector_is_paused_in_the_block_and_restored():
    assert gc.isenabled()
    with cyclic_gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), cyclic_gc_paused():
        raise RuntimeError("the recording failed")
    assert gc.isenabled()
    gc.disable()
    try:
        with cyclic_gc_paused():
            pass
        assert not gc.isenabled()  # a caller's own pause is left as it was
    finally:
        gc.enable()
