"""Leak advice fits the kind of input: a feature-table column is excluded with
``[feature_table].exclude_columns``, an event with ``[leakage].exclude_events``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.config import parse_config
from features.leak_advice import leak_advice
from training.gate import Verdict, judge


def _test_part(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Held-out rows whose model probabilities give the answer away (a leak)."""
    rng = np.random.default_rng(seed)
    label = (rng.random(n) < 0.3).astype(float)
    frame = pd.DataFrame({"label": label, "account_id": [f"a{seed}_{i}" for i in range(n)]})
    return frame, np.clip(label, 0.001, 0.999)


@pytest.mark.parametrize(("n", "seed"), [(400, 1), (900, 2)])
@pytest.mark.parametrize(
    ("top", "key", "not_key"),
    [
        ("table_days_to_convert", '[feature_table].exclude_columns = ["days_to_convert"]',
         "exclude_events"),
        ("count_billing_done_all", "[leakage].exclude_events", "exclude_columns"),
        ("firmo_plan", 'plan known_at = "current"', "exclude_columns"),
    ],
)  # fmt: skip
def test_probable_leak_advice_names_the_key_for_its_input(n, seed, top, key, not_key):
    test, p = _test_part(n, seed)
    importance = pd.Series({top: 2.0, "engagement_active_days_all": 0.1, "table_seats": 0.05})
    gate = judge(parse_config({}), test, p, train_rate=0.3, importance=importance)
    assert gate.verdict is Verdict.PROBABLE_LEAK
    text = gate.message("conversion")
    assert key in text and not_key not in text


def test_advice_for_mixed_inputs_names_each_key():
    text = leak_advice(["table_outcome", "count_paid_all"])
    assert "[feature_table].exclude_columns" in text and "[leakage].exclude_events" in text
