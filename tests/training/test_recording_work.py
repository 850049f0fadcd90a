"""What the recording step does faster still gives the same answers: the data fingerprint,
the verdict with the champion, the SHAP values computed ahead, the garbage collector."""

from __future__ import annotations

import gc
import hashlib

import numpy as np
import pandas as pd
import pytest
from conftest import SMALL_PARAMS, SYNTHETIC_FEATURES

from features.config import parse_config
from training.gate import judge, snapshot_base_rates
from training.model import FitContext, fit_model
from training.shap_sample import shap_rows
from training.split import build_time_split
from training.tracking import cyclic_gc_paused, data_fingerprint, explain_ahead


def _reference_sha(frame: pd.DataFrame) -> str:
    """The fingerprint's hash as it was computed before (pandas sort and concatenation)."""
    keys = pd.DataFrame(
        {
            "a": frame["account_id"].astype(str).to_numpy(),
            "s": frame["snapshot"].astype(str).to_numpy() if "snapshot" in frame else "",
            "y": frame["label"].astype(int).astype(str).to_numpy(),
        }
    ).sort_values(["a", "s"], kind="mergesort")
    text = "\n".join(keys["a"] + "|" + keys["s"] + "|" + keys["y"])
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture(scope="module")
def frame_and_split(synthetic_frame):
    frame, _ = synthetic_frame(1500, seed=3, snapshots=("d1", "d3", "end"))
    split = build_time_split(frame, "conversion", valid_fraction=0.2, test_fraction=0.2)
    return frame, split


def _variants(frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
    head = frame.head(60)
    return {
        "as built": frame,
        "shuffled": frame.sample(frac=1.0, random_state=1),
        # the same (account, snapshot) twice with different labels: row order decides
        "repeated keys": pd.concat([head, head.assign(label=1 - head["label"])]).sample(
            frac=1.0, random_state=2
        ),
        "no snapshot column": frame.drop(columns=["snapshot"]),
        "integer ids": frame.assign(account_id=np.arange(len(frame)) % 997),
    }


@pytest.mark.parametrize(
    "variant", ["as built", "shuffled", "repeated keys", "no snapshot column", "integer ids"]
)
def test_the_fingerprint_hash_is_unchanged(frame_and_split, variant):
    frame, split = frame_and_split
    part = _variants(frame)[variant]
    assert data_fingerprint(part, split, "conversion")["sha256"] == _reference_sha(part)


@pytest.fixture(scope="module")
def fitted(synthetic_frame):
    frame, _ = synthetic_frame(3000, seed=2, snapshots=("d1", "end"))
    split = build_time_split(frame, "conversion", valid_fraction=0.2, test_fraction=0.2)
    train, valid, test = split.frames(frame)
    model = fit_model(train, valid, SYNTHETIC_FEATURES, PARAMS, ctx=FitContext("conversion"))
    test = test.assign(p_model=model.predict_proba(test))
    return model, train, test


PARAMS = SMALL_PARAMS


@pytest.mark.parametrize("timing", [True, False])
def test_the_verdict_with_the_champion_is_the_one_computed_in_full(fitted, timing):
    _, train, test = fitted
    config = parse_config({})
    p = test["p_model"].to_numpy()
    p_timing = snapshot_base_rates(train, test) if timing else None
    rate = float(train["label"].mean())
    first = judge(config, test, p, train_rate=rate, p_timing=p_timing)
    champion = np.clip(p + np.random.default_rng(0).normal(0, 0.05, len(p)), 0.01, 0.99)
    full = judge(config, test, p, train_rate=rate, p_timing=p_timing, p_champion=champion)
    reused = judge(
        config, test, p, train_rate=rate, p_timing=p_timing, p_champion=champion, known=first
    )
    assert reused == full
    assert reused.gain_base is first.gain_base  # taken, not recomputed
    # a verdict on other rows is not taken
    other = judge(config, test.iloc[::2], p[::2], train_rate=rate)
    again = judge(
        config, test, p, train_rate=rate, p_timing=p_timing, p_champion=champion, known=other
    )
    assert again == full and again.gain_base is not other.gain_base


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
