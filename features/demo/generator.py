"""Demo data generator: a synthetic self-serve data-pipeline SaaS ("Pipewise").

``generate_demo_data`` draws each account's lead type and latent traits
(``features.demo.latent``), its true chance to convert and churn, and then turns
them into the three contract tables (events, accounts, communications) plus a
``truth`` table that says what really happened and with what probability. The data
lets the whole pipeline run end to end and lets tests compare learned probabilities
with the known truth.

Everything is vectorised numpy over account-days and events (no Python loop over
accounts or events), so 100k accounts and 20M+ events take seconds. Id columns are
built as pandas Categoricals from integer codes; Parquet is written with pyarrow.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from features.demo import aha as da
from features.demo import latent as dl
from features.demo.communications import (
    AccountLives,
    communications_frame,
    generate_communications,
)
from features.demo.timebase import DAY, HOUR, MS, NEVER, RowsInLife
from features.demo.timebase import days_to_ns as _ms
from features.tables import Tables

__all__ = ["DAY", "EVENT_NAMES", "GENERIC_EVENTS", "HOUR", "DemoData", "generate_demo_data"]
SNAPSHOT_DAYS = (1, 3, 7, 14)
#: Non-converters keep a trickle of (read-only) activity this long after trial end.
POST_TRIAL_DAYS = 21
#: Paying accounts use the product at exp(-this) of their trial intensity per user:
#: evaluation is intense, routine use is calmer (keeps 100k accounts near 25M events).
PAID_DAMPING = 1.3

GENERIC_EVENTS: tuple[str, ...] = (
    "Login", "Page Viewed", "Dashboard Viewed", "Query Run", "Docs Viewed",
    "Pipeline Edited", "Settings Changed", "Report Shared", "Export Downloaded",
    "Search Performed", "Notification Clicked", "Comment Added", "Alert Configured",
    "Billing Page Viewed", "API Key Created", "Integration Browsed", "Template Used",
    "Connector Requested", "Profile Updated", "Help Center Opened", "Webhook Added",
    "SSO Configured", "Data Preview Opened", "Tutorial Completed",
)  # fmt: skip
MILESTONE_EVENTS: tuple[str, ...] = (
    "Workspace Created", "Source Connected", "Pipeline Created", "Pipeline Run Succeeded",
    "Pipeline Run Failed", "Dashboard Created", "Schedule Created", "User Invited",
    "Teammate Joined",
)  # fmt: skip
EVENT_NAMES: tuple[str, ...] = GENERIC_EVENTS + MILESTONE_EVENTS
_EV = {name: i for i, name in enumerate(EVENT_NAMES)}
_NEEDS_DASHBOARD = np.isin(
    np.arange(len(GENERIC_EVENTS)), [_EV["Dashboard Viewed"], _EV["Report Shared"]]
)
_WEEKDAY_VOLUME = np.array([1.0, 1.05, 1.05, 1.0, 0.9, 0.3, 0.25])  # Monday first
_WEEKDAY_ACTIVE = np.array([1.0, 1.0, 1.0, 1.0, 0.95, 0.4, 0.35])

_TIMING = dl.DemoConversionLags()


@dataclass(frozen=True)
class DemoData:
    """Generated demo tables plus the ground truth behind them.

    Attributes:
        tables: the contract tables as an export at ``export_time`` would show them.
        truth: one row per account: true type, probabilities and outcomes (also the
            ones the export does not know yet); ``truth.attrs`` holds the metadata.
    """

    tables: Tables
    truth: pd.DataFrame


@dataclass(frozen=True)
class DemoQuotes:
    """How the CRM's sales quotes (a deal value known before the outcome) are drawn.

    Attributes:
        share: share of accounts whose CRM holds a quote (``quote`` column).
        error_sd: log-sd of the quote around the eventual deal value.
        bias: median quote / eventual value (sales quotes run optimistic).
    """

    share: float = 0.8
    error_sd: float = 0.3
    bias: float = 1.1

    def __post_init__(self) -> None:
        if not 0.0 <= self.share <= 1.0 or self.error_sd < 0 or self.bias <= 0:
            raise ValueError("need 0 <= quotes.share <= 1, quotes.error_sd >= 0, quotes.bias > 0")


#: Stage timings of the generator (INFO on the ``trialcast.demo`` logger).
demo_log = logging.getLogger("trialcast.demo")


class _Log:
    """Stage timings, with the seconds since the generator started, to ``demo_log``."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()

    def __call__(self, msg: str) -> None:
        demo_log.info("[demo-data %6.1fs] %s", time.perf_counter() - self.t0, msg)


def _segments(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Owner index, position within owner and owner start offsets of ragged rows."""
    counts = np.asarray(counts, dtype=np.int64)
    starts = np.cumsum(counts) - counts
    owner = np.repeat(np.arange(len(counts), dtype=np.int32), counts)
    pos = np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(starts, counts)
    return owner, pos, starts


def _tod(rng: np.random.Generator, n: int) -> np.ndarray:
    """Fraction of a UTC day: a working-hours hump around 14:00 plus a flat 15%."""
    x = rng.normal(14 / 24, 3.5 / 24, n)
    flat = rng.random(n) < 0.15
    x[flat] = rng.random(int(flat.sum()))
    return np.mod(x, 1.0)


def _feature_rank(breadth: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Rank of a generic event: Zipf over the vocabulary, steeper for narrow users.

    ``breadth`` (1.4 broad .. 5 narrow) picks one of a few Zipf exponents; ranks come
    from one ``searchsorted`` into the stacked CDFs (bucket b's CDF lives in [b, b+1)).
    """
    k = len(GENERIC_EVENTS)
    exponents = np.linspace(0.7, 1.7, 11)
    cdf = np.cumsum(1.0 / np.arange(1, k + 1)[None, :] ** exponents[:, None], axis=1)
    cdf = cdf / cdf[:, -1:] + np.arange(len(exponents))[:, None]
    cdf[:, -1] = np.arange(1, len(exponents) + 1) + 1e-9  # guard the top of each bucket
    bucket = np.rint((breadth - 1.4) / 3.6 * (len(exponents) - 1)).astype(np.int64)
    flat = np.searchsorted(cdf.ravel(), bucket + u, side="right")
    return (flat - bucket * k).astype(np.int8)


def _in_day(day_start: np.ndarray, lower: np.ndarray, frac: np.ndarray) -> np.ndarray:
    """A time in ``[max(day_start, lower), day_start + 1 day)`` at fraction ``frac``."""
    lb = np.maximum(day_start, lower)
    span = (day_start + DAY - lb).astype(np.float64)
    return lb + (frac * span).astype(np.int64) // MS * MS


def generate_demo_data(
    n_accounts: int = 10_000,
    *,
    seed: int = 0,
    trial_days: tuple[int, ...] = (14, 30),
    start: str = "2025-09-01",
    export_time: str = "2026-11-01",
    conversion_window_days: int = 30,
    conversion_lags: dl.DemoConversionLags | None = None,
    quotes: DemoQuotes = DemoQuotes(),
) -> DemoData:
    """Generate demo tables and their ground truth; deterministic by ``seed``.

    Args:
        n_accounts: number of trial sign-ups.
        seed: random seed; the same seed gives identical frames.
        trial_days: possible trial lengths; the first is used by 80% of accounts.
        start: first trial start (ISO date, UTC).
        export_time: the export moment; no row at or after it appears in the tables.
        conversion_window_days: converters convert before trial end plus this.
        conversion_lags: when converters convert (in-trial share, spread of the
            post-trial lag); default ``DemoConversionLags()``.
        quotes: how the CRM's quotes are drawn (share, error, optimism).

    Returns:
        The tables an export at ``export_time`` would hold, and the truth.
        ``accounts.deal_value`` is known only for deals won before the export;
        open trials carry a ``quote`` with realistic error (or none).
    """
    if n_accounts < 1 or not trial_days or min(trial_days) < 1 or conversion_window_days < 0:
        raise ValueError("need n_accounts >= 1, positive trial_days and a window >= 0")
    timing = conversion_lags if conversion_lags is not None else _TIMING
    log = _Log()
    rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(6)]
    start_ns = pd.Timestamp(start).as_unit("ns").value
    export_ns = pd.Timestamp(export_time).as_unit("ns").value
    if export_ns - 2 * DAY <= start_ns:
        raise ValueError("export_time must be at least two days after start")
    n, window = n_accounts, float(conversion_window_days)

    # Accounts, latent traits, outcomes.
    rng = rngs[0]
    trial_start = (
        np.sort(rng.integers(start_ns // 10**9, (export_ns - 2 * DAY) // 10**9, n)) * 10**9
    )
    share = np.full(len(trial_days), 0.2 / max(len(trial_days) - 1, 1))
    share[0] = 1.0 if len(trial_days) == 1 else 0.8
    length = np.asarray(trial_days, dtype=np.float64)[rng.choice(len(trial_days), n, p=share)]
    trial_end = trial_start + (length * DAY).astype(np.int64)
    tr = dl.draw_traits(rngs[1], n)
    # Set-up and aha moments come first: reaching the aha moment raises the chance.
    moments = da.draw_trial_moments(rngs[3], tr, trial_start, trial_end)
    tr = dataclasses.replace(tr, p_convert=da.with_aha_effect(tr, moments.reached_aha))
    rng = rngs[2]
    converted = rng.random(n) < tr.p_convert
    conv_days = timing.sample(rng, length, window)
    conv_true = np.where(converted, trial_start + _ms(conv_days), NEVER)
    months = rng.geometric(tr.churn_hazard)
    churn_true = np.where(
        converted, conv_true + (months * dl.DAYS_PER_MONTH * DAY).astype(np.int64), NEVER
    )
    paid_from = np.where(converted, np.maximum(trial_end, conv_true), NEVER)
    life_end = np.where(converted, churn_true, trial_end + POST_TRIAL_DAYS * DAY)
    end = np.minimum(life_end, export_ns)
    log(f"{n} accounts, {int(converted.sum())} converters")
    # A separate stream keeps every other draw identical to the quote-free generator.
    qrng = np.random.default_rng(np.random.SeedSequence([seed, 7]))
    quoted = qrng.random(n) < quotes.share
    noise = np.exp(quotes.error_sd * qrng.standard_normal(n))
    quote = np.where(quoted, np.round(tr.deal_value * quotes.bias * noise, 2), np.nan)

    events = _events(rngs[3], tr, moments, trial_start, trial_end, paid_from, churn_true, end, log)
    lives = AccountLives(
        trial_start, trial_end, length, conv_true, churn_true, paid_from,
        np.minimum(churn_true, export_ns),
    )  # fmt: skip
    comms = generate_communications(rngs[4], tr, lives)
    log(f"{len(events[0])} events, {len(comms[0])} communications")

    width = max(6, len(str(n)))
    account_ids = pd.Index([f"acc_{i:0{width}d}" for i in range(1, n + 1)], dtype="str")
    user_ids = pd.Index([f"usr_{i:07d}" for i in range(1, int(tr.team.sum()) + 1)], dtype="str")
    tables = Tables(
        events=_events_frame(events, account_ids, user_ids),
        accounts=_accounts_frame(
            tr, account_ids, trial_start, trial_end, conv_true, churn_true, export_ns, quote
        ),
        communications=communications_frame(comms, account_ids, user_ids),
    )
    truth = _truth_frame(tr, account_ids, length, window, converted, conv_true, churn_true, timing)
    truth["aha_at_true"] = _nat(moments.aha, NEVER)
    truth["deal_value_expected"], truth["deal_value_log_sd"] = dl.expected_deal_value(
        tr.deal_log_mean, quote, quotes.error_sd, quotes.bias
    )
    truth.attrs.update(
        {
            "seed": seed,
            "n_accounts": n,
            "start": str(pd.Timestamp(start)),
            "export_time": str(pd.Timestamp(export_time)),
            "trial_days": list(trial_days),
            "trial_days_share": share.round(4).tolist(),
            "conversion_window_days": conversion_window_days,
            "type_mix": dict(dl.TYPE_MIX),
            "stated_chance": dict(dl.STATED_CHANCE),
            "conversion_timing": timing.params(),
            "quote": {"share": quotes.share, "error_sd": quotes.error_sd, "bias": quotes.bias},
            "convert_weights": dict(dl.CONVERT_WEIGHTS),
            "aha_moment": da.params(),
        }
    )
    log("frames built")
    return DemoData(tables=tables, truth=truth)


def _joins(
    rng: np.random.Generator, tr: dl.Traits, trial_start: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Teammates joining over time: (account, slot, invite time, join time)."""
    acc, pos, _ = _segments(tr.team - 1)
    gap_days = 4.0 * np.exp(-(tr.eng - 1.0)) * (1.3 - tr.act)
    gaps = rng.exponential(1.0, len(acc)) * gap_days[acc]
    cum = np.cumsum(gaps)
    rel = cum - (cum - gaps)[pos == 0][np.cumsum(pos == 0) - 1] + 0.1
    join = trial_start[acc] + _ms(rel)
    delay = np.minimum(_ms(rng.exponential(0.3, len(acc))), (join - trial_start[acc]) * 9 // 10)
    return acc, (pos + 1).astype(np.int32), join - delay, join


def _events(
    rng: np.random.Generator,
    tr: dl.Traits,
    moments: da.TrialMoments,
    trial_start: np.ndarray,
    trial_end: np.ndarray,
    paid_from: np.ndarray,
    churn_true: np.ndarray,
    end: np.ndarray,
    log: _Log,
) -> list[np.ndarray]:
    """Product events as arrays (account, time, user code or -1, event code)."""
    n = len(trial_start)
    user0 = (np.cumsum(tr.team) - tr.team).astype(np.int32)
    rows = RowsInLife(trial_start, end)
    rows.add(np.arange(n, dtype=np.int32), trial_start, user0, _EV["Workspace Created"])

    # Set-up moment (drawn with the outcome, see features.demo.aha): in the trial only.
    src, pipe = moments.source, moments.pipeline
    trial_pipe = np.flatnonzero(pipe < NEVER)
    # Converters that never got there in the trial set up once they pay.
    late = (pipe == NEVER) & (paid_from < NEVER)
    late_src = paid_from + _ms(rng.exponential(1.0, n))
    src = np.where(late & (src == NEVER), late_src, src)
    pipe = np.where(late, late_src + _ms(rng.exponential(0.5, n)), pipe)
    has_src, has_pipe = np.flatnonzero(src < NEVER), np.flatnonzero(pipe < NEVER)
    rows.add(has_src.astype(np.int32), src[has_src], user0[has_src], _EV["Source Connected"])
    rows.add(has_pipe.astype(np.int32), pipe[has_pipe], user0[has_pipe], _EV["Pipeline Created"])
    # Extra pipelines in the trial: accounts whose runs fail keep trying new ones.
    has_pipe = trial_pipe
    extra = rng.poisson(0.5 + 2.5 * (1.0 - tr.fit[has_pipe]))
    e_acc = np.repeat(has_pipe, extra).astype(np.int32)
    e_t = pipe[e_acc] + _ms(rng.random(len(e_acc)) * (trial_end - pipe)[e_acc] / DAY)
    rows.add(e_acc, e_t, user0[e_acc], _EV["Pipeline Created"])

    # Team: invites by the first user, teammates joining later.
    j_acc, j_slot, j_inv, j_join = _joins(rng, tr, trial_start)
    rows.add(j_acc, j_inv, user0[j_acc], _EV["User Invited"])
    rows.add(j_acc, j_join, user0[j_acc] + j_slot, _EV["Teammate Joined"])
    declined = rng.poisson(0.2 * (tr.team - 1) + 0.05)
    d_acc = np.repeat(np.arange(n, dtype=np.int32), declined)
    d_t = trial_start[d_acc] + _ms(rng.random(len(d_acc)) * (trial_end - trial_start)[d_acc] / DAY)
    rows.add(d_acc, d_t, user0[d_acc], _EV["User Invited"])

    # Account-days from trial start's calendar day to the end of the account's life.
    date0 = trial_start // DAY * DAY
    ndays = (end - 1 - date0) // DAY + 1
    acc, k, starts = _segments(ndays)
    day = date0[acc] + k * DAY
    jd = (j_join - date0[j_acc]) // DAY + 1  # a teammate counts from the next day on
    ok = jd < ndays[j_acc]
    joined = np.cumsum(np.bincount(starts[j_acc[ok]] + jd[ok], minlength=len(acc)))
    users = (1 + joined - joined[starts][acc]).astype(np.int32)
    del joined
    log(f"{len(acc)} account-days")

    mid = day + DAY // 2
    t_rel = (mid - trial_start[acc]) / DAY
    weekday = (day // DAY + 3) % 7
    in_trial = mid < trial_end[acc]
    paid = mid >= paid_from[acc]
    growth = np.minimum(np.exp(-tr.fade[acc] * t_rel), 1.6)
    since_end = np.maximum(t_rel - (trial_end[acc] - trial_start[acc]) / DAY, 0.0)
    decline = np.clip((churn_true[acc] - mid) / (28 * DAY), 0.1, 1.0)
    team_boost = users**0.8 * _WEEKDAY_VOLUME[weekday]
    level = np.where(
        in_trial,
        np.exp(tr.eng[acc]) * growth * team_boost,
        np.where(paid, np.exp(tr.eng_paid[acc] - PAID_DAMPING) * decline * team_boost,
                 np.exp(tr.eng[acc]) * 0.3 * np.exp(-since_end / 4)),
    )  # fmt: skip
    p_active = np.where(
        in_trial,
        tr.act[acc] * growth**0.7,
        np.where(
            paid, tr.act_paid[acc] * decline**0.5, tr.act[acc] * 0.35 * np.exp(-since_end / 5)
        ),
    )
    active = rng.random(len(acc)) < np.minimum(p_active * _WEEKDAY_ACTIVE[weekday], 0.97)
    usable = in_trial | paid  # after trial end and before paying, the workspace is read-only
    del t_rel, since_end, p_active

    # Manual pipeline runs (after the first pipeline exists); success chance = fit.
    run_level = np.where(
        paid, np.exp(tr.eng_paid[acc] - tr.eng[acc] - PAID_DAMPING) * decline, growth
    )
    can_run = active & usable & (day + DAY > pipe[acc])
    run_lam = tr.run_rate[acc] * run_level * users**0.4 * _WEEKDAY_VOLUME[weekday] * can_run
    n_run = rng.poisson(run_lam)
    r_acc = np.repeat(acc, n_run)
    r_t = _in_day(np.repeat(day, n_run), pipe[r_acc], _tod(rng, len(r_acc)))
    r_user = user0[r_acc] + (np.repeat(users, n_run) * rng.random(len(r_acc)) ** 1.6).astype(
        np.int32
    )
    r_ok = rng.random(len(r_acc)) < tr.fit[r_acc]
    # The aha moment: a burst of successful runs once a pipeline works on real data.
    b_acc, b_t = da.aha_burst(rng, moments)
    r_acc, r_t = np.r_[r_acc, b_acc], np.r_[r_t, b_t]
    r_user = np.r_[r_user, user0[b_acc]]
    r_ok = np.r_[r_ok, np.ones(len(b_acc), dtype=bool)]
    rows.add(
        r_acc,
        r_t,
        r_user,
        np.where(r_ok, _EV["Pipeline Run Succeeded"], _EV["Pipeline Run Failed"]),
    )
    del run_lam, n_run, r_user
    live = r_ok & (r_t < end[r_acc])
    first_ok = np.full(n, NEVER, dtype=np.int64)
    np.minimum.at(first_ok, r_acc[live], r_t[live])
    del r_acc, r_t, r_ok, live

    # Activation follow-ups after the first successful run: a dashboard, a schedule.
    def after_first_ok(p: np.ndarray, mean_days: np.ndarray | float) -> np.ndarray:
        when = first_ok + _ms(rng.exponential(1.0, n) * mean_days)
        when = np.where((first_ok < NEVER) & (rng.random(n) < p), when, NEVER)
        late = (when >= trial_end) & (when < NEVER)  # read-only after trial: wait to pay
        return np.where(
            late & (paid_from < NEVER), np.maximum(when, paid_from), np.where(late, NEVER, when)
        )

    dash = after_first_ok(np.clip(0.35 + 0.55 * tr.act, 0, 0.95), 1.5 * np.exp(1.2 - tr.eng))
    sched = after_first_ok(0.9 * tr.fit, 2.0)
    for when, name in ((dash, "Dashboard Created"), (sched, "Schedule Created")):
        a = np.flatnonzero(when < NEVER).astype(np.int32)
        rows.add(a, when[a], user0[a], _EV[name])

    # Scheduled runs: automatic (no user), a few a day while the workspace is usable.
    sched_rate = 0.2 + 0.6 * tr.fit
    n_s = rng.poisson(sched_rate[acc] * (usable & (day + DAY > sched[acc])))
    s_acc = np.repeat(acc, n_s)
    slot = rng.integers(0, 4, len(s_acc)) * 0.25 + rng.normal(0, 0.003, len(s_acc))
    s_t = np.repeat(day, n_s) + _ms(np.mod(slot + (s_acc % 24) / 24, 1.0))
    s_ok = rng.random(len(s_acc)) < tr.fit[s_acc]
    s_t = np.where(s_t > sched[s_acc], s_t, 0)  # scheduled before the schedule existed: drop
    rows.add(
        s_acc, s_t, -1, np.where(s_ok, _EV["Pipeline Run Succeeded"], _EV["Pipeline Run Failed"])
    )
    del n_s, s_acc, s_t, s_ok
    log("runs and milestones done")

    # Everyday product use: long-tailed feature ranks, broader for engaged accounts.
    n_gen = rng.poisson(level * active)
    del level, active, usable, growth, decline, paid, in_trial
    g_acc = np.repeat(acc, n_gen)
    g_t = _in_day(np.repeat(day, n_gen), trial_start[g_acc], _tod(rng, len(g_acc)))
    u = rng.random(len(g_acc))
    rank = _feature_rank(tr.breadth[g_acc], u)
    rank[_NEEDS_DASHBOARD[rank] & (g_t < dash[g_acc])] = _EV["Page Viewed"]
    rng.random(out=u)
    g_user = user0[g_acc] + (np.repeat(users, n_gen) * u**1.6).astype(np.int32)
    rows.add(g_acc, g_t, g_user, rank)
    del g_acc, g_t, u, rank, g_user
    log("everyday events done")
    out = rows.concat()
    return [out[0], out[1], out[2].astype(np.int32), out[3].astype(np.int8)]


def _events_frame(
    arrays: list[np.ndarray], account_ids: pd.Index, user_ids: pd.Index
) -> pd.DataFrame:
    acc, t, user, ev = arrays
    return pd.DataFrame(
        {
            "account_id": pd.Categorical.from_codes(acc, categories=account_ids),
            "user_id": pd.Categorical.from_codes(user, categories=user_ids),
            "event": pd.Categorical.from_codes(ev, categories=pd.Index(EVENT_NAMES, dtype="str")),
            "timestamp": t.view("datetime64[ns]"),
        }
    )


def _nat(ns: np.ndarray, before: int) -> np.ndarray:
    """int64 ns times as datetime64[ns], NaT where unknown at ``before`` (or never)."""
    return np.where(ns < before, ns, np.iinfo(np.int64).min).view("datetime64[ns]")


def _accounts_frame(
    tr: dl.Traits,
    account_ids: pd.Index,
    trial_start: np.ndarray,
    trial_end: np.ndarray,
    conv_true: np.ndarray,
    churn_true: np.ndarray,
    export_ns: int,
    quote: np.ndarray,
) -> pd.DataFrame:
    known_conv = conv_true < export_ns
    return pd.DataFrame(
        {
            "account_id": account_ids,
            "trial_start": trial_start.view("datetime64[ns]"),
            "trial_end": trial_end.view("datetime64[ns]"),
            "converted_at": _nat(conv_true, export_ns),
            # The value of a deal is known once it is won; open trials have a quote.
            "deal_value": np.where(known_conv, tr.deal_value.astype(np.float64), np.nan),
            "quote": quote,
            "mrr": np.where(known_conv, (tr.deal_value / 12.0).round(2), np.nan),
            "churned_at": _nat(churn_true, export_ns),
            "company_size": tr.company_size.astype(np.int64),
            "industry": pd.Index(dl.INDUSTRIES, dtype="str").take(tr.industry.astype(np.int64)),
            "country": pd.Index(dl.COUNTRIES, dtype="str").take(tr.country.astype(np.int64)),
            "plan": pd.Index(dl.PLANS, dtype="str").take(tr.plan.astype(np.int64)),
        }
    )


def _truth_frame(
    tr: dl.Traits,
    account_ids: pd.Index,
    length: np.ndarray,
    window: float,
    converted: np.ndarray,
    conv_true: np.ndarray,
    churn_true: np.ndarray,
    timing: dl.DemoConversionLags,
) -> pd.DataFrame:
    p = tr.p_convert
    truth = pd.DataFrame(
        {
            "account_id": account_ids,
            "persona": pd.Index(dl.PERSONAS, dtype="str").take(tr.persona.astype(np.int64)),
            "p_convert": p,
            "converted": converted,
            "converted_at_true": _nat(conv_true, NEVER),
            "churn_hazard_monthly": tr.churn_hazard,
            "p_churn_90d": dl.p_churn_within(tr.churn_hazard, 90.0),
            "churned_at_true": _nat(churn_true, NEVER),
        }
    )
    for d in SNAPSHOT_DAYS:
        truth[f"p_convert_open_d{d}"] = dl.open_probability(
            p, timing.survival(float(d), length, window)
        )
    truth["p_convert_open_end"] = dl.open_probability(p, timing.survival(length, length, window))
    truth["deal_value_true"] = tr.deal_value.astype(np.float64)
    truth["trial_days"] = length.astype(np.int64)
    for name in ("setup", "fit", "eng", "act", "fade", "team", "comm", "resp", "tone"):
        truth[f"latent_{name}"] = getattr(tr, name)
    return truth


def write_demo_data(demo: DemoData, out_dir: str | Path) -> dict[str, Path]:
    """Write the demo tables, truth and ``demo_meta.json`` into ``out_dir``.

    String columns are dictionary-encoded and files zstd-compressed, so 20M events
    stay small and load fast.

    Returns:
        Paths by name: events, accounts, communications, truth, meta.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    frames: dict[str, pd.DataFrame | None] = {
        "events": demo.tables.events,
        "accounts": demo.tables.accounts,
        "communications": demo.tables.communications,
        "truth": demo.truth,
    }
    paths: dict[str, Path] = {}
    for name, frame in frames.items():
        if frame is None:
            continue
        table = pa.Table.from_pandas(frame, preserve_index=False)
        paths[name] = out / f"{name}.parquet"
        pq.write_table(table, paths[name], compression="zstd", use_dictionary=True)
    paths["meta"] = out / "demo_meta.json"
    paths["meta"].write_text(json.dumps(demo.truth.attrs, indent=2, sort_keys=True, default=str))
    return paths
