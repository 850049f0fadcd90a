"""Milestone discovery: the planted driver ranks first; the proposed checklist is valid config."""

from __future__ import annotations

import tomllib

import numpy as np
import pandas as pd
import pytest

from features.config import load_demo_config, parse_config
from features.tables import Tables
from training.milestones import discover_milestones, milestone_name

START = pd.Timestamp("2025-01-01")


def planted_tables(n: int = 1500, seed: int = 0) -> Tables:
    """Trials where running ``report_run`` 3+ times in the first 3 days drives conversion.

    ``login`` is frequent and unrelated to conversion, ``setup`` is done by most
    trials (weakly related), ``noise_*`` are random.
    """
    rng = np.random.default_rng(seed)
    ids = np.array([f"t{i:05d}" for i in range(n)])
    start = START + pd.to_timedelta(rng.integers(0, 200 * 24, n), unit="h")
    driver = rng.random(n) < 0.35
    setup = rng.random(n) < np.where(driver, 0.95, 0.75)
    converted = rng.random(n) < np.where(driver, 0.7, 0.12)
    conv_day = rng.uniform(5, 30, n)
    rows = []

    def add(acc: np.ndarray, day: np.ndarray, name: str) -> None:
        rows.append(pd.DataFrame({"account_id": ids[acc], "event": name, "day": day}))

    acc = np.repeat(np.arange(n), 4)
    drv = acc[driver[acc]]
    add(drv, rng.uniform(0.05, 2.9, len(drv)), "report_run")
    few = np.flatnonzero(~driver & (rng.random(n) < 0.4))
    add(few, rng.uniform(3.5, 13, len(few)), "report_run")  # too late / too few
    add(np.flatnonzero(setup), rng.uniform(0.01, 1.0, int(setup.sum())), "setup")
    logins = np.repeat(np.arange(n), rng.poisson(8, n))
    add(logins, rng.uniform(0, 14, len(logins)), "login")
    for k in range(3):
        noisy = np.repeat(np.arange(n), rng.poisson(2, n))
        add(noisy, rng.uniform(0, 14, len(noisy)), f"noise_{k}")
    events = pd.concat(rows, ignore_index=True)
    events["timestamp"] = start[pd.Index(ids).get_indexer(events["account_id"])] + pd.to_timedelta(
        events.pop("day"), unit="D"
    )
    events = events[
        events["timestamp"]
        < start[pd.Index(ids).get_indexer(events["account_id"])] + pd.Timedelta(days=14)
    ]
    accounts = pd.DataFrame(
        {
            "account_id": ids,
            "trial_start": start,
            "trial_end": start + pd.Timedelta(days=14),
            "converted_at": pd.Series(start + pd.to_timedelta(conv_day, unit="D")).where(converted),
        }
    )
    return Tables(events=events.reset_index(drop=True), accounts=accounts)


@pytest.fixture(scope="module")
def planted():
    config = parse_config({"company": "planted", "trial": {"conversion_window_days": 30}})
    return config, discover_milestones(config, planted_tables(), max_steps=4)


def test_planted_driver_ranks_first_by_lift_and_importance(planted):
    _, found = planted
    best = found.candidates.iloc[0]
    assert best["event"] == "report_run" and best["supported"]
    assert best["deadline_days"] == 3.0 or best["min_count"] >= 3
    assert best["lift_low"] > 2.5  # ~0.7 vs ~0.15 converted
    by_importance = found.candidates.sort_values("importance", ascending=False)
    assert by_importance.iloc[0]["event"] == "report_run"
    login = found.candidates[found.candidates["event"] == "login"]
    assert (login["lift_low"] < 1.3).all()  # the busy-but-irrelevant event is not a driver
    assert {"reached", "not_reached", "rate_reached", "rate_not_reached", "lift_high"} <= set(
        found.candidates.columns
    )


def test_proposed_checklist_parses_as_config(planted):
    config, found = planted
    assert any(m.events == ["report_run"] for m in found.checklist)
    assert len({m.events[0] for m in found.checklist}) == len(found.checklist)  # one per event
    assert "login" not in {m.events[0] for m in found.checklist}
    snippet = found.toml(config.company)
    parsed = parse_config(tomllib.loads(snippet))
    assert [m.model_dump() for m in parsed.activation.milestones] == [
        m.model_dump() for m in found.checklist
    ]
    days = found.checklist_rows["median_day"].to_numpy()
    assert (np.diff(days) >= 0).all()  # ordered by when they are reached
    best = int(found.checklist_rows["lift"].to_numpy().argmax())
    assert found.checklist[best].stage == "aha" and found.checklist[best].events == ["report_run"]


def test_on_demo_data_a_successful_run_beats_creating_a_pipeline(demo_small):
    config = load_demo_config()
    found = discover_milestones(config, demo_small.tables)
    table = found.candidates[found.candidates["supported"]]
    best = table.groupby("event")["lift"].max()
    assert best["Pipeline Run Succeeded"] > 1.5 * best["Pipeline Created"]
    rank = table.groupby("event")["lift_rank"].min()
    assert rank["Pipeline Run Succeeded"] < rank["Pipeline Created"]
    importance = found.candidates.groupby("event")["importance"].max()
    assert importance["Pipeline Run Succeeded"] > importance["Pipeline Created"]
    assert found.seconds < 10
    # excluded background events are never proposed
    again = discover_milestones(config, demo_small.tables, exclude_events=["Login"])
    assert "Login" not in set(again.candidates["event"])


def test_milestone_names_read_well():
    assert milestone_name("Pipeline Run Succeeded", 3, 7.0) == (
        "Pipeline Run Succeeded 3+ times in the first 7 days"
    )
    assert milestone_name("Source Connected", 1, 1.0) == "Source Connected on the first day"
    assert milestone_name("User Invited", 1, None) == "User Invited during the trial"
