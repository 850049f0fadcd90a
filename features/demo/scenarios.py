"""What can happen to a company from a date on: the model-health scenarios.

Each scenario takes generated data (``DemoData``: tables + truth) and returns the
company as it would look if something changed at ``since``; none mutates its
input, and the truth stays consistent with the tables. They are what
``trialcast monitor`` must tell apart (docs/monitoring.md):

- ``none``: nothing changes (the monitor must stay quiet);
- ``pricing``: a price rise: the same behaviour converts less (each trial that
  starts from ``since`` has its conversion log-odds moved by ``log_odds``,
  -0.8 by default). Inputs unchanged, outcomes shifted;
- ``onboarding``: a new onboarding flow changes *who* gets going: trials from
  ``since`` that barely start (below the median first-day activity) are mostly
  turned away, so the behaviour mix moves while what a given behaviour
  converts to does not. Inputs shifted, outcomes not;
- ``tracking``: a tracking break: one event type stops being logged at
  ``since`` (the product still works, the data is broken).

The same hooks apply to the demo (``trialcast demo-data --scenario``) and to the
generated non-demo companies of the tests (before or after renaming events).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from features.demo.generator import DemoData

__all__ = ["SCENARIOS", "apply_scenario", "default_break_event"]

SCENARIOS: tuple[str, ...] = ("none", "pricing", "onboarding", "tracking")
#: The event type a tracking break silences when none is named: the aha moment's.
DEFAULT_BREAK_EVENT = "Pipeline Run Succeeded"
#: Share of the barely-starting trials the new onboarding turns away.
ONBOARDING_TURNED_AWAY = 0.8


def default_break_event(events: pd.DataFrame) -> str:
    """The demo's aha event if present, else the most frequent event type."""
    names = events["event"].astype(str)
    if (names == DEFAULT_BREAK_EVENT).any():
        return DEFAULT_BREAK_EVENT
    return str(names.value_counts().index[0])


def apply_scenario(
    demo: DemoData,
    scenario: str,
    *,
    since: str | pd.Timestamp,
    log_odds: float = -0.8,
    event: str | None = None,
    seed: int = 0,
) -> DemoData:
    """``demo`` with ``scenario`` happening from ``since`` (see the module docstring).

    Args:
        demo: generated tables and truth.
        scenario: one of ``SCENARIOS``.
        since: when the change happens (trials starting then or later are affected;
            for ``tracking``, events at or after it are no longer logged).
        log_odds: the pricing change's shift of the conversion log-odds.
        event: the event type a tracking break silences (default
            ``default_break_event``).
        seed: random seed of the draws (pricing, onboarding).

    Raises:
        ValueError: an unknown scenario, or an ``event`` the data does not hold.
    """
    moment = pd.Timestamp(since)
    if scenario == "none":
        return demo
    if scenario == "pricing":
        return _pricing(demo, moment, log_odds, seed)
    if scenario == "onboarding":
        return _onboarding(demo, moment, seed)
    if scenario == "tracking":
        name = event if event is not None else default_break_event(demo.tables.events)
        return _tracking(demo, moment, name)
    raise ValueError(f"unknown scenario {scenario!r}; use one of {', '.join(SCENARIOS)}")


def _affected(accounts: pd.DataFrame, moment: pd.Timestamp) -> np.ndarray:
    return (pd.to_datetime(accounts["trial_start"]) >= moment).to_numpy()


def _drop_rows(frame: pd.DataFrame, mask: np.ndarray) -> pd.DataFrame:
    """``frame`` without the rows where ``mask``; categoricals keep their categories."""
    return frame[~mask].reset_index(drop=True)


def _drop_optional(frame: pd.DataFrame | None, mask: np.ndarray) -> pd.DataFrame | None:
    return None if frame is None else _drop_rows(frame, mask)


def _pricing(demo: DemoData, moment: pd.Timestamp, log_odds: float, seed: int) -> DemoData:
    """Each affected converter keeps converting with chance p'/p, p' = sigmoid(logit p + shift).

    Unconverted accounts lose what paying brought: conversion, deal value, MRR,
    churn, and their product use and messages after trial end (paid usage).
    """
    rng = np.random.default_rng(seed)
    acc = demo.tables.accounts.copy()
    truth = demo.truth.set_index("account_id").reindex(acc["account_id"]).reset_index()
    p = truth["p_convert"].to_numpy(dtype=np.float64)
    p_new = 1.0 / (1.0 + np.exp(-(np.log(p / (1.0 - p)) + log_odds)))
    hit = _affected(acc, moment)
    converted = truth["converted"].to_numpy(dtype=bool)
    lose = hit & converted & (rng.random(len(acc)) >= p_new / np.maximum(p, 1e-12))
    for col in ("converted_at", "churned_at"):
        acc[col] = acc[col].where(~lose)
    for col in ("deal_value", "mrr"):
        acc[col] = acc[col].where(~lose)
    truth.loc[lose, "converted"] = False
    for col in ("converted_at_true", "churned_at_true"):
        truth[col] = truth[col].where(~lose)
    ratio = np.where(hit, p_new / np.maximum(p, 1e-12), 1.0)
    for col in [c for c in truth.columns if c.startswith("p_convert_open")]:
        # open = p S / (1 - p + p S): recompute from the shifted p with the same S.
        q = truth[col].to_numpy(dtype=np.float64)
        s = q * (1.0 - p) / np.maximum(p * (1.0 - q), 1e-12)
        pn = p * ratio
        truth[col] = pn * s / (1.0 - pn + pn * s)
    truth["p_convert"] = p * ratio
    truth.attrs = dict(demo.truth.attrs)
    truth.attrs["scenario"] = {"name": "pricing", "since": str(moment), "log_odds": log_odds}
    lost_ids = set(acc.loc[lose, "account_id"].astype(str))
    end = acc.set_index(acc["account_id"].astype(str))["trial_end"]

    def after_end(frame: pd.DataFrame | None) -> np.ndarray:
        if frame is None:
            return np.zeros(0, dtype=bool)
        ids = frame["account_id"].astype(str)
        lost = ids.isin(lost_ids).to_numpy()
        ends = ids.map(end).to_numpy(dtype="datetime64[ns]")
        return lost & (frame["timestamp"].to_numpy(dtype="datetime64[ns]") >= ends)

    tables = replace(
        demo.tables,
        accounts=acc,
        events=_drop_rows(demo.tables.events, after_end(demo.tables.events)),
        communications=_drop_optional(
            demo.tables.communications, after_end(demo.tables.communications)
        ),
    )
    return DemoData(tables=tables, truth=truth)


def _onboarding(demo: DemoData, moment: pd.Timestamp, seed: int) -> DemoData:
    """Turn away most affected trials whose first day's activity is below the median.

    The choice depends only on behaviour the model sees (first-day events), so
    P(convert | behaviour) is unchanged; the mix of behaviours is not.
    """
    rng = np.random.default_rng(seed)
    acc = demo.tables.accounts
    events = demo.tables.events
    ids = acc["account_id"].astype(str)
    start = pd.to_datetime(acc["trial_start"]).set_axis(ids)
    ev_ids = events["account_id"].astype(str)
    first_day = events["timestamp"].to_numpy() < (
        ev_ids.map(start).to_numpy(dtype="datetime64[ns]") + np.timedelta64(1, "D")
    )
    counts = ev_ids[first_day].value_counts().reindex(ids, fill_value=0).to_numpy()
    hit = _affected(acc, moment)
    quiet = counts < np.median(counts)
    gone = hit & quiet & (rng.random(len(acc)) < ONBOARDING_TURNED_AWAY)
    gone_ids = set(ids[gone])
    truth = demo.truth[~demo.truth["account_id"].astype(str).isin(gone_ids)].reset_index(drop=True)
    truth.attrs = {
        **demo.truth.attrs,
        "scenario": {"name": "onboarding", "since": str(moment), "turned_away": int(gone.sum())},
    }

    def gone_rows(frame: pd.DataFrame) -> np.ndarray:
        return frame["account_id"].astype(str).isin(gone_ids).to_numpy()

    comms = demo.tables.communications
    tables = replace(
        demo.tables,
        accounts=acc[~gone].reset_index(drop=True),
        events=_drop_rows(events, gone_rows(events)),
        communications=None if comms is None else _drop_rows(comms, gone_rows(comms)),
    )
    return DemoData(tables=tables, truth=truth)


def _tracking(demo: DemoData, moment: pd.Timestamp, name: str) -> DemoData:
    """Events called ``name`` at or after ``moment`` are no longer in the export."""
    events = demo.tables.events
    names = events["event"].astype(str)
    if not (names == name).any():
        raise ValueError(f"tracking break: no event type {name!r} in the events table")
    stopped = ((names == name) & (events["timestamp"] >= moment)).to_numpy()
    truth = demo.truth.copy()
    truth.attrs = {
        **demo.truth.attrs,
        "scenario": {"name": "tracking", "since": str(moment), "event": name},
    }
    return DemoData(tables=replace(demo.tables, events=_drop_rows(events, stopped)), truth=truth)
