"""Milestone discovery: which early actions really predict conversion, found from data.

The activation checklist should hold the steps that separate converters from the
rest ("a successful pipeline, not setting one up"), not the ones a product team
assumes. ``discover_milestones`` scores every candidate

    event type x minimum count (1, 3, 10) x reached by day N (1, 3, 7, trial end)

on the closed trials (label window over at the data's "now"):

- **Conversion lift**: conversion rate of the trials that reached the candidate
  divided by the rate of those that did not, with both counts and a 95% confidence
  interval (log rate-ratio, Katz method; 0.5 added to every cell when one is empty).
- **Model importance**: mean |SHAP| of the matching count feature ("events of this
  type in the first N days") in a quick LightGBM fitted on all the count features
  together, so an event that only looks good because it travels with a better one
  gets little credit. Exact TreeSHAP from LightGBM (``pred_contrib``).

Only events before the account converted count (a paying account's activity says
nothing about why it started paying), and only before trial end. Everything is
vectorised over the ``EventIndex`` arrays: one sort of the events, then bincounts
and matrix products; no per-account Python loop.

``proposed_checklist`` then picks a checklist greedily: candidates with enough
support and a lift whose interval lies above 1, best lift first, at most one per
event type, ordered by the median day they are reached; ``MilestoneDiscovery.toml``
prints it ready to paste under ``[[activation.milestones]]``.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
import pandas as pd
from scipy.stats import norm

from features.build import FeatureBuilder
from features.config import CompanyConfig, Milestone
from features.event_index import (
    NAT_SECONDS,
    SECONDS_PER_DAY,
    cut_events,
    timestamp_seconds,
)
from features.tables import Tables

MIN_COUNTS: tuple[int, ...] = (1, 3, 10)
#: Deadlines in days from trial start; ``None`` = by trial end.
DEADLINES: tuple[float | None, ...] = (1.0, 3.0, 7.0, None)

CANDIDATE_COLUMNS = (
    "event",
    "min_count",
    "deadline_days",
    "reached",
    "reached_share",
    "not_reached",
    "rate_reached",
    "rate_not_reached",
    "lift",
    "lift_low",
    "lift_high",
    "rate_difference",
    "median_day",
    "importance",
    "importance_rank",
    "supported",
    "lift_rank",
)


@dataclass
class MilestoneDiscovery:
    """Ranked milestone candidates and a proposed checklist.

    Attributes:
        candidates: one row per candidate (columns ``CANDIDATE_COLUMNS``), ranked by
            lift (supported candidates first). ``deadline_days`` is NaN for "by
            trial end"; ``importance`` is the mean |SHAP| (log-odds) of the count
            feature (event, deadline), shared by the candidate's three min counts.
        checklist: the proposed milestones, in checklist order.
        checklist_rows: the candidate rows behind ``checklist``, same order.
        n_trials, positives: closed trials used and how many converted.
        data_as_of: the data's "now" (trials whose window closed before it are used).
        seconds: wall time.
    """

    candidates: pd.DataFrame
    checklist: list[Milestone]
    checklist_rows: pd.DataFrame
    n_trials: int
    positives: int
    data_as_of: pd.Timestamp
    seconds: float

    @property
    def base_rate(self) -> float:
        return self.positives / self.n_trials if self.n_trials else float("nan")

    def top(self, n: int = 15) -> pd.DataFrame:
        """The ``n`` best supported candidates by lift."""
        return self.candidates[self.candidates["supported"]].head(n)

    def toml(self, company: str = "") -> str:
        """The checklist as ``[[activation.milestones]]`` TOML (comments give the evidence)."""
        return checklist_toml(
            self.checklist,
            self.checklist_rows,
            header=(
                f"Proposed activation checklist{f' for {company}' if company else ''}: "
                f"{self.n_trials:,} closed trials, {self.base_rate:.1%} converted "
                f"(data as of {self.data_as_of:%Y-%m-%d}). Edit names and stages freely."
            ),
        )


def closed_trial_positions(builder: FeatureBuilder, data_as_of: pd.Timestamp) -> np.ndarray:
    """Positions of trials whose conversion window ended by ``data_as_of``."""
    idx = builder.index
    now = timestamp_seconds(data_as_of)
    window = builder.config.trial.conversion_window_days * SECONDS_PER_DAY
    return np.flatnonzero(idx.trial_end + window <= now)


def _katz_interval(
    x1: np.ndarray, n1: np.ndarray, x0: np.ndarray, n0: np.ndarray, confidence: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rate ratio (x1/n1)/(x0/n0) and its log-normal confidence interval."""
    z = float(norm.ppf(0.5 + confidence / 2))
    zero = (x1 == 0) | (x0 == 0) | (x1 == n1) | (x0 == n0)
    a = np.where(zero, x1 + 0.5, x1).astype(np.float64)
    b = np.where(zero, x0 + 0.5, x0).astype(np.float64)
    m1 = np.where(zero, n1 + 1.0, n1).astype(np.float64)
    m0 = np.where(zero, n0 + 1.0, n0).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_rr = np.log(a / m1) - np.log(b / m0)
        se = np.sqrt(1 / a - 1 / m1 + 1 / b - 1 / m0)
        lift = (x1 / n1) / (x0 / n0)
    return lift, np.exp(log_rr - z * se), np.exp(log_rr + z * se)


def _importance(counts: np.ndarray, y: np.ndarray, *, seed: int, sample: int = 2_000) -> np.ndarray:
    """Mean |SHAP| per column of ``counts`` from a quick LightGBM (log-odds units)."""
    if len(np.unique(y)) < 2 or counts.shape[1] == 0:
        return np.zeros(counts.shape[1])
    params = {
        "objective": "binary",
        "learning_rate": 0.1,
        "num_leaves": 15,
        "min_data_in_leaf": 20,
        "feature_fraction": 0.8,
        "bagging_fraction": 0.8,
        "bagging_freq": 1,
        "lambda_l2": 1.0,
        "verbose": -1,
        "seed": seed,
        "num_threads": 1,
    }
    booster = lgb.train(params, lgb.Dataset(counts, label=y), num_boost_round=100)
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(y), size=min(sample, len(y)), replace=False)
    contrib = np.asarray(booster.predict(counts[rows], pred_contrib=True, num_threads=1))
    return np.abs(contrib[:, :-1]).mean(axis=0)


def discover_milestones(
    config: CompanyConfig,
    data: Tables | FeatureBuilder,
    *,
    now: pd.Timestamp | str | None = None,
    min_counts: tuple[int, ...] = MIN_COUNTS,
    deadlines: tuple[float | None, ...] = DEADLINES,
    max_event_types: int = 60,
    exclude_events: tuple[str, ...] | list[str] = (),
    min_support: int = 30,
    min_share: float = 0.02,
    max_steps: int = 7,
    confidence: float = 0.95,
    seed: int = 0,
) -> MilestoneDiscovery:
    """Rank milestone candidates on closed trials and propose a checklist.

    Args:
        config: the company config (trial and conversion windows).
        data: the tables, or an indexed ``FeatureBuilder``.
        now: the data's "now" (default: the latest timestamp in the data).
        min_counts: the minimum event counts tried.
        deadlines: days from trial start by which the count must be reached
            (``None``: by trial end).
        max_event_types: only the event types done by most closed trials are tried.
        exclude_events: event types never to propose (background events such as
            logins or page views, which mostly measure how busy a trial was).
        min_support: a candidate needs at least this many trials on each side.
        min_share: ... and between ``min_share`` and ``1 - min_share`` of trials reaching it.
        max_steps: checklist length at most.
        confidence: level of the lift intervals.
        seed: LightGBM seed.

    Raises:
        ValueError: no closed trial, or no converter among them.
    """
    started = time.perf_counter()
    builder = data if isinstance(data, FeatureBuilder) else FeatureBuilder.from_tables(data, config)
    idx = builder.index
    data_as_of = pd.Timestamp(now) if now is not None else builder.tables.export_time()
    positions = closed_trial_positions(builder, data_as_of)
    if len(positions) == 0:
        raise ValueError(
            "no trial has a closed conversion window at the data's end: nothing to learn from"
        )
    conv = idx.converted_at[positions]
    end = idx.trial_end[positions]
    window = config.trial.conversion_window_days * SECONDS_PER_DAY
    converted = conv != NAT_SECONDS
    y = (converted & (conv <= end + window)).astype(np.float64)  # one label rule (inclusive)
    if y.sum() == 0:
        raise ValueError(f"none of the {len(positions)} closed trials converted")
    # Events before conversion and before trial end only.
    cut = cut_events(idx, positions, np.where(converted & (conv < end), conv, end))
    n = cut.n_rows

    # The event types most trials do (one entry per (trial, type) pair).
    n_vocab = len(idx.vocabulary)
    pair = np.unique(cut.row * n_vocab + cut.event)
    doers = np.bincount(pair % n_vocab, minlength=n_vocab)
    doers[idx.event_codes(list(exclude_events))] = 0
    vocab = [str(v) for v in idx.vocabulary]
    order = sorted(np.flatnonzero(doers).tolist(), key=lambda c: (-int(doers[c]), vocab[c]))
    chosen = np.asarray(order[:max_event_types], dtype=np.int64)
    n_types = len(chosen)
    local = np.full(n_vocab, -1, dtype=np.int64)
    local[chosen] = np.arange(n_types)
    names = [vocab[c] for c in chosen]

    ev = local[cut.event]
    keep = ev >= 0
    row, ev, ts = cut.row[keep], ev[keep], cut.ts[keep]
    days = (ts - cut.trial_start[row]) / SECONDS_PER_DAY
    key = row * n_types + ev
    sort = np.lexsort((ts, key))
    key, days = key[sort], days[sort]
    group_start = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    sizes = np.diff(np.r_[group_start, len(key)])
    rank = np.arange(len(key)) - np.repeat(group_start, sizes)

    # Day the k-th event of each type came, per trial (inf: never, before conversion / end).
    kth_day = {}
    for k in min_counts:
        at = np.full(n * n_types, np.inf)
        hit = rank == k - 1
        at[key[hit]] = days[hit]
        kth_day[k] = at.reshape(n, n_types)

    # Count features (events of each type in the first N days) for the importance model.
    limits = [math.inf if d is None else float(d) for d in deadlines]
    counts = np.hstack(
        [np.bincount(key[days < lim], minlength=n * n_types).reshape(n, n_types) for lim in limits]
    ).astype(np.float64)
    importance = _importance(counts, y, seed=seed).reshape(len(limits), n_types)

    positives = float(y.sum())
    frames = []
    for k in min_counts:
        for j, (deadline, lim) in enumerate(zip(deadlines, limits, strict=True)):
            reached = kth_day[k] < lim
            n1 = reached.sum(axis=0).astype(np.float64)
            x1 = y @ reached
            n0, x0 = n - n1, positives - x1
            lift, low, high = _katz_interval(x1, n1, x0, n0, confidence)
            with np.errstate(invalid="ignore", divide="ignore"):
                rate1, rate0 = x1 / n1, x0 / n0
            with warnings.catch_warnings():  # never-reached candidates: all-NaN columns
                warnings.simplefilter("ignore", RuntimeWarning)
                median = np.nanmedian(np.where(reached, kth_day[k], np.nan), axis=0)
            frames.append(
                pd.DataFrame(
                    {
                        "event": names,
                        "min_count": k,
                        "deadline_days": np.nan if deadline is None else float(deadline),
                        "reached": n1.astype(np.int64),
                        "reached_share": n1 / n,
                        "not_reached": n0.astype(np.int64),
                        "rate_reached": rate1,
                        "rate_not_reached": rate0,
                        "lift": lift,
                        "lift_low": low,
                        "lift_high": high,
                        "rate_difference": rate1 - rate0,
                        "median_day": median,
                        "importance": importance[j],
                    }
                )
            )
    table = pd.concat(frames, ignore_index=True)
    table["supported"] = (
        (table["reached"] >= min_support)
        & (table["not_reached"] >= min_support)
        & table["reached_share"].between(min_share, 1 - min_share)
    )
    table["importance_rank"] = (
        table["importance"].rank(ascending=False, method="min").astype(np.int64)
    )
    table = table.sort_values(
        ["supported", "lift", "lift_low", "event"],
        ascending=[False, False, False, True],
        kind="mergesort",
    ).reset_index(drop=True)
    table["lift_rank"] = np.arange(1, len(table) + 1)
    table = table[list(CANDIDATE_COLUMNS)]
    rows = proposed_checklist(table, max_steps=max_steps)
    return MilestoneDiscovery(
        candidates=table,
        checklist=[milestone_from_row(r) for r in rows.to_dict("records")],
        checklist_rows=rows,
        n_trials=n,
        positives=int(positives),
        data_as_of=data_as_of,
        seconds=time.perf_counter() - started,
    )


def proposed_checklist(candidates: pd.DataFrame, *, max_steps: int = 7) -> pd.DataFrame:
    """Greedy checklist: supported candidates whose lift interval is above 1, best lift
    first, one per event type, at most ``max_steps``; ordered by median day reached.

    Adds a ``stage`` column: the step with the highest lift is the ``aha`` moment,
    the first third of the rest ``setup``, the others ``activation`` (a starting
    point to edit).
    """
    pool = candidates[candidates["supported"] & (candidates["lift_low"] > 1.0)]
    pool = pool.sort_values(["lift", "lift_low"], ascending=False, kind="mergesort")
    picked = pool.drop_duplicates("event").head(max_steps)
    picked = picked.sort_values(["median_day", "lift"], ascending=[True, True], kind="mergesort")
    picked = picked.reset_index(drop=True)
    n = len(picked)
    stages = ["setup" if i < n // 3 else "activation" for i in range(n)]
    if n:
        stages[int(np.argmax(picked["lift"].to_numpy()))] = "aha"
    return picked.assign(stage=stages)


def milestone_name(event: str, min_count: int, deadline_days: float | None) -> str:
    """A checklist name sales can read: "Pipeline Run Succeeded 3+ times in the first 7 days"."""
    times = "" if min_count == 1 else f" {min_count}+ times"
    if deadline_days is None or (isinstance(deadline_days, float) and math.isnan(deadline_days)):
        when = "during the trial"
    elif float(deadline_days) == 1:
        when = "on the first day"
    else:
        when = f"in the first {float(deadline_days):g} days"
    return f"{event}{times} {when}"


def milestone_from_row(row: dict) -> Milestone:
    """The ``Milestone`` of a candidate row (with a ``stage``)."""
    deadline = row["deadline_days"]
    deadline = None if deadline is None or math.isnan(float(deadline)) else float(deadline)
    return Milestone(
        name=milestone_name(str(row["event"]), int(row["min_count"]), deadline),
        events=[str(row["event"])],
        min_count=int(row["min_count"]),
        deadline_days=deadline,
        stage=row.get("stage", "activation"),
    )


def _toml_string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def checklist_toml(
    milestones: list[Milestone], rows: pd.DataFrame | None = None, *, header: str = ""
) -> str:
    """``[[activation.milestones]]`` tables for ``milestones`` (evidence from ``rows`` as comments)."""
    lines = [f"# {header}"] if header else []
    evidence = rows.to_dict("records") if rows is not None else [None] * len(milestones)
    for milestone, ev in zip(milestones, evidence, strict=True):
        if ev is not None:
            lines.append(
                f"# lift {ev['lift']:.2f}x (95% CI {ev['lift_low']:.2f}-{ev['lift_high']:.2f}): "
                f"{ev['rate_reached']:.1%} vs {ev['rate_not_reached']:.1%} convert; reached by "
                f"{ev['reached_share']:.0%} of trials, median day {ev['median_day']:.1f}"
            )
        lines.append("[[activation.milestones]]")
        lines.append(f"name = {_toml_string(milestone.name)}")
        lines.append(f"events = [{', '.join(_toml_string(e) for e in milestone.events)}]")
        if milestone.min_count != 1:
            lines.append(f"min_count = {milestone.min_count}")
        if milestone.deadline_days is not None:
            lines.append(f"deadline_days = {milestone.deadline_days:g}")
        lines.append(f"stage = {_toml_string(milestone.stage)}")
        lines.append("")
    return "\n".join(lines)
