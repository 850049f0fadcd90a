"""Milestone discovery: which early actions add to conversion beyond being active.

The activation checklist should hold the steps that separate converters from the
rest ("a successful pipeline, not setting one up"), not the ones a product team
assumes, and not the ones that merely measure how busy a trial was.
``discover_milestones`` scores every candidate

    event type x minimum count (1, 3, 10) x reached by day N (1, 3, 7, trial end)

on the closed trials (label window over at the data's "now"):

- **Adjusted lift** (the ranking): the conversion rate ratio, reached vs not,
  *within strata of overall activity* (quantile bins of a prognostic score, the
  out-of-fold chance of converting from the trial's activity profile alone, and of
  volume: every other event per day before trial end or conversion), pooled with
  Mantel-Haenszel, with a Greenland-Robins 95% interval (``training.milestone_stats``). Generic navigation events whose counts
  just grow with activity get about 1x; a true success event keeps its lift.
- **Raw lift** (conversion if reached / if not, Katz interval), for reference.
- **Model importance**: mean |SHAP| of the matching count feature in a quick
  LightGBM fitted on all the count features together.
- **Status**: ``near-universal`` (reached by almost every trial: the few without
  it are dead accounts, so its lift is meaningless), ``near-absent`` (too few
  trials), ``outcome-like`` (almost only converters reach it: part of paying,
  a leak), ``activity-measure`` (a higher count of an event almost every trial
  does: it measures how busy the trial is), ``activity-bound`` (reached only by the busiest trials, so its own
  effect cannot be separated from activity) or ``ranked``. Only ranked candidates are ranked and proposed.

Only events before the account converted count, and only before trial end; leak
exclusions (``exclude_events``, from the call and the config) are never scored.
Everything is vectorised over the ``EventIndex`` arrays.

``training.milestone_checklist`` turns the ranking into an ordered checklist
(setup -> activation -> aha) with the typical day, conversion with / without and
a reason in words for each step, says why tempting events were left out, and
says so when nothing qualifies.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

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
from features.spec import FeatureSpec
from features.tables import Tables
from training.milestone_checklist import (
    checklist_toml,
    milestone_from_row,
    milestone_name,
    nothing_qualifies,
    propose_checklist,
    reasons_left_out,
)
from training.milestone_stats import (
    activity_strata,
    candidate_status,
    katz_interval,
    mantel_haenszel_ratio,
    prognostic_score,
    shap_importance,
)

__all__ = [
    "MilestoneDiscovery",
    "checklist_toml",
    "closed_trial_positions",
    "config_exclusions",
    "discover_milestones",
    "milestone_from_row",
    "milestone_name",
]

MIN_COUNTS: tuple[int, ...] = (1, 3, 10)
#: Deadlines in days from trial start; ``None`` = by trial end.
DEADLINES: tuple[float | None, ...] = (1.0, 3.0, 7.0, None)
#: Strata of overall activity the adjusted lift is pooled over: bins of a prognostic
#: score (the out-of-fold log-odds of converting from the trial's activity profile
#: alone: events per day and share of active days in each quarter of the observed
#: trial, whatever the event type) x bins of volume (every other event per day).
#: Why a prognostic score: quantile bins of a few raw activity measures (8 x 4 x 3
#: strata before) left enough activity inside each bin that pure activity events
#: (the demo's Login 3+ in week 1, Page Viewed 3+) kept 1.3-1.4x and were proposed
#: as aha moments on two of three demo seeds; a score learned from the whole
#: activity profile takes them to about 1.1x (Hansen 2008, "The prognostic analogue
#: of the propensity score").
PROGNOSTIC_BINS = 20
VOLUME_BINS = 4
N_STRATA = PROGNOSTIC_BINS * VOLUME_BINS

CANDIDATE_COLUMNS = (
    "rank",
    "event",
    "min_count",
    "deadline_days",
    "status",
    "reached",
    "reached_share",
    "not_reached",
    "rate_reached",
    "rate_not_reached",
    "adj_lift",
    "adj_lift_low",
    "adj_lift_high",
    "adj_lift_low_corrected",
    "informative_share",
    "lift",
    "lift_low",
    "lift_high",
    "median_day",
    "importance",
    "importance_rank",
)


@dataclass
class MilestoneDiscovery:
    """Ranked milestone candidates and a proposed checklist.

    Attributes:
        candidates: one row per candidate (columns ``CANDIDATE_COLUMNS``); ranked
            candidates first, by the lower end of the adjusted lift interval.
            ``deadline_days`` is NaN for "by trial end".
        checklist: the proposed milestones, in checklist order (setup ->
            activation -> aha); empty when nothing qualifies.
        checklist_rows: the candidate rows behind ``checklist`` plus ``stage`` and
            ``why`` (the reason in words), same order.
        left_out: why tempting event types were not proposed, in words.
        verdict: one sentence: what was found, or why nothing qualifies.
        n_trials, positives: closed trials used and how many converted.
        data_as_of: the data's "now" (trials whose window closed before it are used).
        excluded: event types never scored (leak exclusions).
        seconds: wall time.
    """

    candidates: pd.DataFrame
    checklist: list[Milestone]
    checklist_rows: pd.DataFrame
    left_out: list[str]
    verdict: str
    n_trials: int
    positives: int
    data_as_of: pd.Timestamp
    excluded: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def base_rate(self) -> float:
        return self.positives / self.n_trials if self.n_trials else float("nan")

    def top(self, n: int = 15) -> pd.DataFrame:
        """The ``n`` best ranked candidates."""
        return self.candidates[self.candidates["status"] == "ranked"].head(n)

    def toml(self, company: str = "") -> str:
        """The checklist as ``[[activation.milestones]]`` TOML (comments give the evidence)."""
        header = (
            f"Proposed activation checklist{f' for {company}' if company else ''}: "
            f"{self.n_trials:,} closed trials, {self.base_rate:.1%} converted "
            f"(data as of {self.data_as_of:%Y-%m-%d}). Edit names and stages freely."
        )
        if not self.checklist:
            header += "\n" + self.verdict
        return checklist_toml(self.checklist, self.checklist_rows, header=header)


def closed_trial_positions(builder: FeatureBuilder, data_as_of: pd.Timestamp) -> np.ndarray:
    """Positions of trials whose conversion window ended by ``data_as_of``."""
    idx = builder.index
    now = timestamp_seconds(data_as_of)
    window = builder.config.trial.conversion_window_days * SECONDS_PER_DAY
    return np.flatnonzero(idx.trial_end + window <= now)


def leak_reason(spec: FeatureSpec, event: str) -> str:
    """Why the leak scan (``features.leaks.judge_events``) flagged ``event``, with its
    statistics, from the spec's notes; "listed in the config" for configured ones."""
    prefix = f"LEAK? event {event!r}: "
    for note in spec.leak_notes:
        if note.startswith(prefix):
            return note[len(prefix) :].rsplit("; ", 1)[0]
    return "listed in [leakage].exclude_events"


def config_exclusions(config: CompanyConfig) -> list[str]:
    """Leak exclusions declared in the config (``exclude_events`` of any section that has one)."""
    out: list[str] = []
    for section in (config.activation, config.engagement):
        out.extend(str(e) for e in getattr(section, "exclude_events", []) or [])
    return out


@dataclass(frozen=True)
class MilestoneRules:
    """What milestone discovery tries and what a candidate must show.

    Attributes:
        min_counts: the minimum event counts tried.
        deadlines: days from trial start by which the count must be reached
            (``None``: by trial end).
        max_event_types: only the event types done by most closed trials are tried.
        min_support: a candidate needs at least this many trials on each side ...
        min_share: ... and at least this share of trials reaching it (else
            near-absent) ...
        max_share: ... and at most this share (else near-universal: the few
            trials without it are mostly dead accounts).
        min_informative: at least this share of trials must sit in activity
            strata holding both trials that reached it and trials that did not;
            below it the candidate is ``activity-bound`` (reaching it is the same
            as being among the busiest trials, so its own effect cannot be told).
        max_steps: checklist length at most.
        min_adjusted_lift: a checklist step must multiply the chance of converting
            by at least this much among equally active trials (and its interval
            must lie above 1).
        confidence: level of the intervals.
    """

    min_counts: tuple[int, ...] = MIN_COUNTS
    deadlines: tuple[float | None, ...] = DEADLINES
    max_event_types: int = 60
    min_support: int = 30
    min_share: float = 0.02
    max_share: float = 0.95
    min_informative: float = 0.6
    max_steps: int = 7
    min_adjusted_lift: float = 1.25
    confidence: float = 0.95


def discover_milestones(
    config: CompanyConfig,
    data: Tables | FeatureBuilder,
    *,
    now: pd.Timestamp | str | None = None,
    exclude_events: tuple[str, ...] | list[str] = (),
    rules: MilestoneRules | None = None,
    seed: int = 0,
) -> MilestoneDiscovery:
    """Rank milestone candidates on closed trials and propose a checklist.

    Args:
        config: the company config (trial and conversion windows, leak exclusions).
        data: the tables, or an indexed ``FeatureBuilder``.
        now: the data's "now" (default: the latest timestamp in the data).
        exclude_events: event types never to score, on top of the config's leak
            exclusions (outcome events such as "Invoice Paid").
        rules: what is tried and what a candidate must show (``MilestoneRules``).
        seed: LightGBM seed.

    Raises:
        ValueError: no closed trial, or no converter among them.
    """
    rules = rules or MilestoneRules()
    min_counts, deadlines, max_event_types = (
        rules.min_counts,
        rules.deadlines,
        rules.max_event_types,
    )
    min_support, min_share, max_share = rules.min_support, rules.min_share, rules.max_share
    min_informative, max_steps = rules.min_informative, rules.max_steps
    min_adjusted_lift, confidence = rules.min_adjusted_lift, rules.confidence
    started = time.perf_counter()
    builder = data if isinstance(data, FeatureBuilder) else FeatureBuilder.from_tables(data, config)
    idx = builder.index
    data_as_of = pd.Timestamp(now) if now is not None else builder.tables.export_time()
    positions = closed_trial_positions(builder, data_as_of)
    if len(positions) == 0:
        raise ValueError(
            f"no trial's conversion window ({config.trial.conversion_window_days} days after "
            f"trial end) had closed by {data_as_of}: nothing to learn from yet"
        )
    conv = idx.converted_at[positions]
    end = idx.trial_end[positions]
    window = config.trial.conversion_window_days * SECONDS_PER_DAY
    converted = conv != NAT_SECONDS
    y = (converted & (conv <= end + window)).astype(np.float64)  # one label rule (inclusive)
    if y.sum() == 0:
        raise ValueError(f"none of the {len(positions)} closed trials converted")
    # the leak scan's outcome events are already gone from the index (features.leaks)
    flagged = [e for e in builder.spec.excluded_events if e not in set(exclude_events)]
    excluded = sorted(set(config_exclusions(config)) | set(exclude_events) | set(flagged))
    # Events before conversion and before trial end only; leak exclusions dropped.
    cut = cut_events(idx, positions, np.where(converted & (conv < end), conv, end))
    n = cut.n_rows
    n_vocab = len(idx.vocabulary)
    allowed = np.ones(n_vocab, dtype=bool)
    allowed[idx.event_codes(excluded)] = False
    kept = allowed[cut.event]
    all_row = cut.row[kept]
    all_days = (cut.ts[kept] - cut.trial_start[all_row]) / SECONDS_PER_DAY

    # The event types most trials do (one entry per (trial, type) pair).
    pair = np.unique(all_row * n_vocab + cut.event[kept])
    doers = np.bincount(pair % n_vocab, minlength=n_vocab)
    vocab = [str(v) for v in idx.vocabulary]
    order = sorted(np.flatnonzero(doers).tolist(), key=lambda c: (-int(doers[c]), vocab[c]))
    chosen = np.asarray(order[:max_event_types], dtype=np.int64)
    n_types = len(chosen)
    local = np.full(n_vocab, -1, dtype=np.int64)
    local[chosen] = np.arange(n_types)
    names = [vocab[c] for c in chosen]

    ev = local[cut.event[kept]]
    keep = ev >= 0
    row, ev, days = all_row[keep], ev[keep], all_days[keep]
    key = row * n_types + ev
    sort = np.lexsort((days, key))
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

    # Count features (events of each type in the first N days), and overall activity:
    # every other allowed event per observed day over the whole trial (up to trial
    # end or conversion). The whole trial, not only the first N days: a few early
    # days measure how busy a trial is too noisily to adjust for it.
    limits = [np.inf if d is None else float(d) for d in deadlines]
    count_blocks = [
        np.bincount(key[days < lim], minlength=n * n_types).reshape(n, n_types) for lim in limits
    ]
    counts = np.hstack(count_blocks).astype(np.float64)
    whole = np.bincount(key, minlength=n * n_types).reshape(n, n_types)
    observed_days = np.maximum((cut.as_of - cut.trial_start) / SECONDS_PER_DAY, 1.0)
    total = np.bincount(all_row, minlength=n)
    volume = activity_strata((total[:, None] - whole) / observed_days[:, None], VOLUME_BINS)
    prognosis = prognostic_score(all_row, all_days, observed_days, y, seed=seed)
    strata = activity_strata(prognosis[:, None], PROGNOSTIC_BINS) * VOLUME_BINS + volume
    importance = shap_importance(counts, y, seed=seed).reshape(len(limits), n_types)

    positives = float(y.sum())
    frames = []
    for k in min_counts:
        for j, (deadline, lim) in enumerate(zip(deadlines, limits, strict=True)):
            reached = kth_day[k] < lim
            n1 = reached.sum(axis=0).astype(np.float64)
            x1 = y @ reached
            n0, x0 = n - n1, positives - x1
            lift, low, high = katz_interval(x1, n1, x0, n0, confidence)
            adj, adj_low, adj_high, informative = mantel_haenszel_ratio(
                reached, y, strata, N_STRATA, confidence=confidence
            )
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
                        "adj_lift": adj,
                        "adj_lift_low": adj_low,
                        "adj_lift_high": adj_high,
                        "informative_share": informative,
                        "lift": lift,
                        "lift_low": low,
                        "lift_high": high,
                        "median_day": median,
                        "importance": importance[j],
                    }
                )
            )
    table = pd.concat(frames, ignore_index=True)
    table["status"] = candidate_status(
        table,
        negatives=n - positives,
        min_support=min_support,
        min_share=min_share,
        max_share=max_share,
        min_informative=min_informative,
    )
    # Hundreds of candidates are tried: a checklist step must clear 1 with a lower
    # bound corrected for that (Bonferroni over the ranked candidates), so a
    # no-signal company gets no checklist rather than its luckiest noise event.
    tried = max(int((table["status"] == "ranked").sum()), 1)
    z, z_corrected = norm.ppf(0.5 + confidence / 2), norm.ppf(1 - (1 - confidence) / 2 / tried)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_adj = np.log(table["adj_lift"].to_numpy())
        se = (log_adj - np.log(table["adj_lift_low"].to_numpy())) / z
        table["adj_lift_low_corrected"] = np.nan_to_num(np.exp(log_adj - z_corrected * se))
    table["importance_rank"] = (
        table["importance"].rank(ascending=False, method="min").astype(np.int64)
    )
    table = table.assign(_ranked=table["status"] == "ranked").sort_values(
        ["_ranked", "adj_lift_low", "adj_lift", "event"],
        ascending=[False, False, False, True],
        kind="mergesort",
    )
    table = table.drop(columns="_ranked").reset_index(drop=True)
    table["rank"] = np.arange(1, len(table) + 1)
    table = table[list(CANDIDATE_COLUMNS)]
    rows = propose_checklist(table, max_steps=max_steps, min_adjusted_lift=min_adjusted_lift)
    chosen_events = set(rows["event"].astype(str))
    if len(rows):
        aha = rows.iloc[-1]
        verdict = (
            f"Aha moment: {milestone_name(str(aha['event']), int(aha['min_count']), aha['deadline_days'])}"
            f" ({aha['adj_lift']:.2f}x among equally active trials); {len(rows)} step(s) proposed."
        )
    else:
        verdict = nothing_qualifies(table, min_adjusted_lift=min_adjusted_lift)
    return MilestoneDiscovery(
        candidates=table,
        checklist=[milestone_from_row(r) for r in rows.to_dict("records")],
        checklist_rows=rows,
        left_out=[
            *(
                f"{e}: looks like part of paying (the leak scan: {leak_reason(builder.spec, e)}); "
                "excluded from every feature, never a milestone"
                for e in flagged
            ),
            *reasons_left_out(table, chosen_events, min_adjusted_lift=min_adjusted_lift),
        ],
        verdict=verdict,
        n_trials=n,
        positives=int(positives),
        data_as_of=data_as_of,
        excluded=excluded,
        seconds=time.perf_counter() - started,
    )
