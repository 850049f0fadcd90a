"""Small-data mode and the point-in-time feature spec, on generated companies."""

from __future__ import annotations

import pandas as pd
import pytest

from features.config import load_demo_config, parse_config
from features.demo import variants
from features.demo.generator import generate_demo_data
from training.small_data import data_size, small_data_params, spec_cutoff
from training.train import build_training_sets


@pytest.mark.parametrize("n,seed,days", [(300, 1, (10,)), (700, 2, (21, 30))])
def test_spec_is_fitted_before_the_split_time(n: int, seed: int, days: tuple[int, ...]) -> None:
    demo = generate_demo_data(n, seed=seed, trial_days=days, conversion_window_days=7)
    company = variants.rename_events(demo, prefix="x")
    raw = load_demo_config().model_dump(mode="json")
    raw["trial"]["conversion_window_days"] = 7
    raw["engagement"]["top_k_event_types"] = 40
    config = parse_config(raw)
    cut = spec_cutoff(company.tables, config)
    assert cut is not None
    # A brand-new event type used only by trials that start after the cut, heavily.
    acc = company.tables.accounts
    late = acc[acc["trial_start"] >= cut]
    added = pd.DataFrame(
        {
            "account_id": late["account_id"].astype(str).repeat(50).to_numpy(),
            "user_id": None,
            "event": "New Feature Used",
            "timestamp": (late["trial_start"] + pd.Timedelta(hours=2)).repeat(50).to_numpy(),
        }
    )
    events = pd.concat([company.tables.events.astype(object), added], ignore_index=True)
    events["timestamp"] = pd.to_datetime(events["timestamp"])
    tables = company.tables.__class__(
        events=events, accounts=acc, communications=company.tables.communications
    )
    sets = build_training_sets(config, tables, kinds=("conversion",))
    assert sets.spec is not None and sets.spec.fitted_before == str(cut)
    assert "New Feature Used" not in sets.spec.top_event_types
    assert "x0" in sets.spec.top_event_types


def test_small_data_is_detected_and_regularised() -> None:
    config = load_demo_config()
    frame = pd.DataFrame({"account_id": ["a", "a", "b", "c"], "label": [0, 1, 0, 0]})
    size = data_size(config, frame, "conversion")
    assert size.small and size.accounts == 3 and size.positive_accounts == 1
    assert "SMALL-DATA MODE" in size.message() and "3 trials" in size.message()
    tight = small_data_params({"num_leaves": 31, "lambda_l2": 1.0, "min_child_samples": 50})
    assert tight == {"num_leaves": 7, "lambda_l2": 10.0, "min_child_samples": 50}
