"""Leak statistics add up across partitions of accounts, so Dask judges like one machine."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.config import load_demo_config, parse_config
from features.demo import variants
from features.demo.generator import generate_demo_data
from features.leak_stats import empty_stats, event_leak_stats, merge_stats
from features.leaks import judge_events, scan_events
from features.tables import Tables


def _config(window: int):
    raw = load_demo_config().model_dump(mode="json")
    raw["trial"]["conversion_window_days"] = window
    return parse_config(raw)


def _partitions(tables: Tables, n: int, seed: int) -> list[Tables]:
    ids = tables.accounts["account_id"].astype(str)
    part = pd.Series(np.random.default_rng(seed).integers(0, n, len(ids)), index=ids.to_numpy())
    of_event = part.reindex(tables.events["account_id"].astype(str)).to_numpy()
    return [
        Tables(
            events=tables.events[of_event == i],
            accounts=tables.accounts[(part == i).to_numpy()],
            export_at=tables.export_time(),
        )
        for i in range(n)
    ]


@pytest.mark.parametrize(
    "seed,trial_days,window,prefix", [(3, (10,), 8, "act_"), (8, (21, 28), 40, "e")]
)
def test_merged_partition_statistics_equal_the_whole(
    seed: int, trial_days: tuple[int, ...], window: int, prefix: str
) -> None:
    demo = generate_demo_data(800, seed=seed, trial_days=trial_days, conversion_window_days=window)
    company = variants.hindsight_event(variants.rename_events(demo, prefix=prefix), seed=seed)
    cfg = _config(window)
    whole = event_leak_stats(company.tables, cfg)
    parts = [
        event_leak_stats(p, cfg, export_time=company.tables.export_time())
        for p in _partitions(company.tables, 4, seed)
    ]
    merged = merge_stats(parts)
    pd.testing.assert_frame_equal(
        merged.frame().sort_index(), whole.frame().sort_index(), check_dtype=False
    )
    assert (merged.labelled, merged.converters) == (whole.labelled, whole.converters)
    # the company's usual week (hour-of-week event counts) adds up the same way
    assert merged.hour_of_week.tolist() == whole.hour_of_week.tolist()
    assert merged.hour_of_week.sum() == len(company.tables.events)
    assert sum(parts, empty_stats()).frame().equals(merged.frame())
    leaks, labelled, converters = scan_events(company.tables, cfg)
    assert [e.event for e in judge_events(merged, cfg)] == [e.event for e in leaks]
    assert "Subscription Activated" in [e.event for e in leaks]
    assert (labelled, converters) == (whole.labelled, whole.converters) and converters > 20


def test_chunked_and_sparse_counting_agree_with_dense(monkeypatch: pytest.MonkeyPatch) -> None:
    """Many accounts x types (a table too big to hold densely) and events in chunks:
    the same statistics as one dense pass."""
    import features.leak_stats as stats_module

    demo = generate_demo_data(500, seed=5, trial_days=(7, 14), conversion_window_days=20)
    company = variants.event_before_payment(variants.hindsight_event(demo, seed=5), seed=5)
    cfg = _config(20)
    dense = event_leak_stats(company.tables, cfg).frame()
    monkeypatch.setattr(stats_module, "CHUNK_EVENTS", 7_777)
    monkeypatch.setattr(stats_module, "DENSE_PAIRS", 0)
    monkeypatch.setattr(stats_module, "DENSE_COUNTS", 0)
    chunked = event_leak_stats(company.tables, cfg).frame()
    pd.testing.assert_frame_equal(chunked, dense)
    assert dense["clustered_converters"].sum() > 0 and dense["reach_others"].sum() > 0


def test_spec_before_a_cut_is_the_same_for_categorical_and_text_ids() -> None:
    """The training path's point-in-time spec matches ids on a categorical's categories."""
    from dataclasses import replace

    from features.spec import fit_feature_spec

    demo = generate_demo_data(400, seed=4, trial_days=(14,), conversion_window_days=10)
    tables, cfg = demo.tables, _config(10)
    cut = tables.accounts["trial_start"].quantile(0.6)
    as_category = tables.events.astype({"account_id": "category", "event": "category"})
    as_text = tables.events.astype({"account_id": "str", "event": "str"})
    a = fit_feature_spec(replace(tables, events=as_category), cfg, before=cut)
    b = fit_feature_spec(replace(tables, events=as_text), cfg, before=cut)
    assert a == b and a.top_event_types and a.fitted_before
