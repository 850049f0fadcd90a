"""Generated companies whose conversion is driven by ONE success event.

A test bed for judgements that must hold on companies unlike the demo (milestone
discovery, lead types, observed chances): the vocabulary, scale, trial length and
conversion lag are parameters, and the truth is known per account.

Every account has a latent activity level ``a`` (log-normal). Then:

- **noise events** (several types): Poisson counts proportional to ``a`` times the
  company's events per day, spread over the trial. They say how busy a trial was
  and nothing else, so their raw lift is high (busy trials do the driver more
  often) but they add nothing *given* overall activity.
- **the near-universal event** (opening the main screen): done early by almost
  every account; the few that never do it are dead accounts (almost no activity).
- **the driver** (a success event): done by a share of accounts that grows
  mildly with ``a``; conversion probability is ``driver_rate`` for accounts that
  reached it and ``base_rate`` for the rest. Nothing else moves conversion.
- **communications**: inbound / outbound touches with a tone, independent of
  conversion, so lead types get communication levels.

``generate_driver_company`` returns the contract tables, the per-account truth
(``p_convert``, ``did_driver``, ``activity``) and the data's "now".
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from features.config import CompanyConfig, parse_config
from features.tables import Tables


@dataclass(frozen=True)
class DriverCompanySpec:
    """Shape of a generated company.

    Attributes:
        company: its name.
        n_accounts: trial accounts.
        trial_days: trial length (days).
        driver_event: the one success event that drives conversion.
        noise_events: event types whose counts only track overall activity.
        universal_event: an event almost every account does on day 0-1.
        events_per_day: scale: noise events per trial day of an average account.
        driver_share: share of accounts of average activity that reach the driver.
        driver_by_day: the driver comes within the first ``driver_by_day`` days.
        base_rate, driver_rate: conversion chance without / with the driver.
        conversion_lag_days: mean days from trial end to paying (exponential).
        dead_share: share of accounts that never open the product (no universal event).
        seed: random seed.
    """

    company: str
    n_accounts: int
    trial_days: int
    driver_event: str
    noise_events: tuple[str, ...]
    universal_event: str
    events_per_day: float = 3.0
    driver_share: float = 0.35
    driver_by_day: float = 5.0
    base_rate: float = 0.08
    driver_rate: float = 0.55
    conversion_lag_days: float = 5.0
    dead_share: float = 0.03
    seed: int = 0
    start: pd.Timestamp = field(default_factory=lambda: pd.Timestamp("2025-01-01"))


@dataclass
class DriverCompany:
    """Tables plus the generator's truth.

    Attributes:
        spec: what was generated.
        tables: events, accounts, communications (canonical).
        truth: per account: ``account_id``, ``activity``, ``did_driver``,
            ``p_convert`` (the true chance), ``converted``.
        now: the data's "now" (every conversion window has closed by then).
    """

    spec: DriverCompanySpec
    tables: Tables
    truth: pd.DataFrame
    now: pd.Timestamp

    def config(self, conversion_window_days: int = 30, **overrides: object) -> CompanyConfig:
        """A company config for these tables (no checklist: discovery proposes one)."""
        raw: dict = {
            "company": self.spec.company,
            "trial": {
                "default_trial_days": self.spec.trial_days,
                "conversion_window_days": conversion_window_days,
            },
            "engagement": {"core_events": [self.spec.driver_event]},
        }
        raw.update(overrides)
        return parse_config(raw)


CLINIC = DriverCompanySpec(
    company="clinicbook",
    n_accounts=2500,
    trial_days=14,
    driver_event="Appointment Reminder Delivered",
    noise_events=("Calendar Viewed", "Patient List Opened", "Settings Browsed"),
    universal_event="Front Desk Opened",
    events_per_day=3.0,
    conversion_lag_days=4.0,
    seed=11,
)

FREIGHT = DriverCompanySpec(
    company="freightlane",
    n_accounts=1500,
    trial_days=30,
    driver_event="shipment.label.printed_ok",
    noise_events=("map.zoom", "lane.search", "rate.table.view", "carrier.list.scroll"),
    universal_event="dashboard.home",
    events_per_day=12.0,
    driver_share=0.25,
    driver_by_day=10.0,
    base_rate=0.12,
    driver_rate=0.6,
    conversion_lag_days=12.0,
    seed=23,
    start=pd.Timestamp("2024-06-01"),
)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def generate_driver_company(spec: DriverCompanySpec) -> DriverCompany:
    """Generate the company described by ``spec`` (deterministic in ``spec.seed``)."""
    rng = np.random.default_rng(spec.seed)
    n, days = spec.n_accounts, float(spec.trial_days)
    ids = np.array([f"{spec.company[:3]}-{i:06d}" for i in range(n)])
    start = spec.start + pd.to_timedelta(rng.uniform(0, 300, n), unit="D").round("s")
    activity = rng.lognormal(0.0, 0.7, n)
    dead = rng.random(n) < spec.dead_share
    activity = np.where(dead, 0.03 * activity, activity)

    rows: list[tuple[np.ndarray, np.ndarray, str]] = []  # (account positions, day, event)
    for k, name in enumerate(spec.noise_events):
        weight = 1.0 / (k + 1)
        counts = rng.poisson(spec.events_per_day * weight * activity * days / 2)
        acc = np.repeat(np.arange(n), counts)
        rows.append((acc, rng.uniform(0, days, len(acc)), name))
    opened = np.flatnonzero(~dead)
    acc = np.repeat(opened, 1 + rng.poisson(1.0, len(opened)))
    rows.append((acc, rng.uniform(0, 1.0, len(acc)), spec.universal_event))

    logit_share = np.log(spec.driver_share / (1 - spec.driver_share))
    p_driver = np.where(dead, 0.0, _sigmoid(logit_share + 0.6 * np.log(activity)))
    did_driver = rng.random(n) < p_driver
    first = rng.uniform(0.2, spec.driver_by_day, n)
    drv = np.flatnonzero(did_driver)
    acc = np.repeat(drv, 1 + rng.poisson(2.0, len(drv)))
    gap = rng.uniform(0, days - spec.driver_by_day, len(acc))
    is_first = np.r_[True, acc[1:] != acc[:-1]]
    rows.append((acc, first[acc] + np.where(is_first, 0.0, gap), spec.driver_event))

    p_convert = np.where(did_driver, spec.driver_rate, spec.base_rate)
    converted = rng.random(n) < p_convert
    # Pay after the driver came (and mostly after trial end): conversions inside the
    # trial happen too, but never before the success that caused them.
    conv_day = np.maximum(
        days * rng.uniform(0.7, 1.0, n) + rng.exponential(spec.conversion_lag_days, n),
        np.where(did_driver, first + 0.5, 0.0),
    )
    accounts = pd.DataFrame(
        {
            "account_id": ids,
            "trial_start": start,
            "trial_end": start + pd.Timedelta(days=spec.trial_days),
            "converted_at": pd.Series(start + pd.to_timedelta(conv_day, unit="D").round("s")).where(
                converted
            ),
            "deal_value": np.round(rng.lognormal(np.log(900), 0.5, n), 2),
        }
    )
    accounts["churned_at"] = pd.Series(pd.NaT, index=accounts.index, dtype="datetime64[ns]")
    accounts["mrr"] = np.where(converted, np.round(accounts["deal_value"] / 12, 2), np.nan)

    users = np.array([f"{a}-u{u}" for a in ids for u in range(3)])
    frames = []
    for acc, day, name in rows:
        frames.append(
            pd.DataFrame(
                {
                    "account_id": ids[acc],
                    "user_id": users[acc * 3 + rng.integers(0, 3, len(acc))],
                    "event": name,
                    "timestamp": start[acc] + pd.to_timedelta(day, unit="D").round("s"),
                }
            )
        )
    events = pd.concat(frames, ignore_index=True).sort_values(["timestamp", "account_id"])
    events["timestamp"] = events["timestamp"].astype("datetime64[ns]")

    talk = rng.gamma(0.8, 2.0, n)
    tone = np.clip(rng.normal(0.1, 0.4, n), -1, 1)
    inbound = rng.poisson(talk)
    acc = np.repeat(np.arange(n), inbound)
    comms_in = pd.DataFrame(
        {
            "account_id": ids[acc],
            "timestamp": start[acc] + pd.to_timedelta(rng.uniform(0, days, len(acc)), unit="D"),
            "direction": "inbound",
            "channel": "email",
            "sentiment": np.clip(tone[acc] + rng.normal(0, 0.15, len(acc)), -1, 1),
        }
    )
    acc = np.repeat(np.arange(n), 2)
    comms_out = pd.DataFrame(
        {
            "account_id": ids[acc],
            "timestamp": start[acc] + pd.to_timedelta(rng.uniform(0, days, len(acc)), unit="D"),
            "direction": "outbound",
            "channel": "email",
            "sentiment": np.nan,
        }
    )
    comms = pd.concat([comms_in, comms_out], ignore_index=True).sort_values("timestamp")
    comms["timestamp"] = comms["timestamp"].dt.round("s").astype("datetime64[ns]")
    truth = pd.DataFrame(
        {
            "account_id": ids,
            "activity": activity,
            "did_driver": did_driver,
            "p_convert": p_convert,
            "converted": converted,
        }
    )
    last_start = start.max()
    now = pd.Timestamp(last_start) + pd.Timedelta(days=spec.trial_days + 90)
    tables = Tables(
        events=events.reset_index(drop=True),
        accounts=accounts,
        communications=comms.reset_index(drop=True),
    )
    return DriverCompany(spec=spec, tables=tables, truth=truth, now=now)
