"""The statistics a feature spec is fitted from, additive across partitions of accounts.

A spec (``features.spec``) needs: events per type, the categorical levels seen,
and the leak scan (``features.leaks``: outcome events, post-purchase account
columns, ``mrr`` rewritten at churn). Every one of those is a count over
accounts, so it adds up: one machine computes ``SpecStats`` once on its
(point-in-time cut) tables; the Dask feature job computes them per partition
(accounts never span partitions), merges them with ``merge_spec_stats`` and
both call ``spec_from_stats``. Same statistics, same judgement, same spec.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from features.config import CompanyConfig
from features.leak_stats import EventLeakStats, event_leak_stats, labelled_accounts
from features.leak_stats import merge_stats as merge_event_stats
from features.leaks import (
    MIN_MRR_ACCOUNTS,
    AttributeLeak,
    LeakScan,
    judge_events,
)
from features.tables import Tables
from features.weekdays import activity_profile

if TYPE_CHECKING:
    from features.spec import FeatureSpec


@dataclass(frozen=True)
class AttributeStats:
    """Counts behind the account-column leak checks, over one set of accounts.

    Attributes:
        filled_converters / filled_others: per firmographic column present, labelled
            converters / non-converters with a value.
        converters, others: labelled accounts of each kind.
        mrr: ``(churned, staying, usable churned, usable staying)`` among accounts
            that paid before the export, or None without ``mrr`` / ``churned_at``.
    """

    filled_converters: dict[str, int] = field(default_factory=dict)
    filled_others: dict[str, int] = field(default_factory=dict)
    converters: int = 0
    others: int = 0
    mrr: tuple[int, int, int, int] | None = None


def attribute_stats(
    tables: Tables, config: CompanyConfig, export_time: pd.Timestamp
) -> AttributeStats:
    """``AttributeStats`` of one machine's tables or one partition's."""
    acc = tables.accounts
    lab = labelled_accounts(acc, config, export_time)
    closed, y = lab.closed, lab.converted[lab.closed]
    firmo = config.firmographics
    filled1: dict[str, int] = {}
    filled0: dict[str, int] = {}
    for col in [*firmo.numeric, *firmo.categorical]:
        if col in acc.columns:
            filled = acc[col].notna().to_numpy()[closed]
            filled1[col] = int(filled[y].sum())
            filled0[col] = int(filled[~y].sum())
    mrr = None
    if {"mrr", "converted_at", "churned_at"} <= set(acc.columns):
        now = pd.Timestamp(export_time)
        paid = (acc["converted_at"].notna() & (acc["converted_at"] < now)).to_numpy()
        churned = (acc["churned_at"].notna() & (acc["churned_at"] < now)).to_numpy()[paid]
        usable = (pd.to_numeric(acc["mrr"], errors="coerce") > 0).to_numpy()[paid]
        mrr = (
            int(churned.sum()),
            int((~churned).sum()),
            int(usable[churned].sum()),
            int(usable[~churned].sum()),
        )
    return AttributeStats(filled1, filled0, int(y.sum()), int((~y).sum()), mrr)


def _merge_attribute_stats(parts: list[AttributeStats]) -> AttributeStats:
    filled1: dict[str, int] = {}
    filled0: dict[str, int] = {}
    for p in parts:
        for col, n in p.filled_converters.items():
            filled1[col] = filled1.get(col, 0) + n
        for col, n in p.filled_others.items():
            filled0[col] = filled0.get(col, 0) + n
    mrrs = [p.mrr for p in parts if p.mrr is not None]
    mrr = tuple(int(sum(m[i] for m in mrrs)) for i in range(4)) if mrrs else None
    return AttributeStats(
        filled1,
        filled0,
        sum(p.converters for p in parts),
        sum(p.others for p in parts),
        mrr,  # type: ignore[arg-type]
    )


def missingness_auc_counts(filled_pos: int, pos: int, filled_neg: int, neg: int) -> float:
    """``max(auc, 1 - auc)`` of "the column is filled" as the only predictor, from counts."""
    if pos == 0 or neg == 0:
        return 0.5
    auc = 0.5 * (1 + filled_pos / pos - filled_neg / neg)
    return float(max(auc, 1 - auc))


def judge_attributes(stats: AttributeStats, config: CompanyConfig) -> list[AttributeLeak]:
    """Account columns that may not feed the models, from counts (one machine's or
    merged from partitions).

    Declared ``known_at = "current"`` in ``[firmographics]``; or, for columns declared
    ``"signup"`` or undeclared, whose missingness alone separates the conversion label
    with ROC AUC at least ``[leakage].missingness_auc`` (a field filled after
    purchase; declaring ``"signup"`` keeps it even then); and ``mrr`` when, among
    accounts that paid, "set and above zero" separates those that churned from those
    still paying as well (the export rewrote it at churn).
    """
    firmo = config.firmographics
    out: list[AttributeLeak] = []
    n1, n0 = stats.converters, stats.others
    for col in [*firmo.numeric, *firmo.categorical]:
        declared = firmo.known_at.get(col)
        if declared == "current":
            out.append(
                AttributeLeak(col, 'declared known_at = "current" (known only after purchase)')
            )
            continue
        if col not in stats.filled_converters or declared == "signup" or n1 + n0 == 0:
            continue
        f1, f0 = stats.filled_converters[col], stats.filled_others[col]
        auc = missingness_auc_counts(f1, n1, f0, n0)
        if auc >= config.leakage.missingness_auc:
            out.append(
                AttributeLeak(
                    col,
                    f"filled for {f1 / n1:.0%} of converters and {f0 / n0:.0%} "
                    f"of the others (missingness alone has ROC AUC {auc:.2f}); declare "
                    f'known_at.{col} = "signup" if it is truly known at signup',
                    auc,
                )
            )
    if stats.mrr is not None:
        churned, staying, use1, use0 = stats.mrr
        if churned >= MIN_MRR_ACCOUNTS and staying >= MIN_MRR_ACCOUNTS:
            auc = missingness_auc_counts(use1, churned, use0, staying)
            if auc >= config.leakage.missingness_auc:
                out.append(
                    AttributeLeak(
                        "mrr",
                        f"missing or zero for {1 - use1 / churned:.0%} of the accounts that "
                        f"churned and {1 - use0 / staying:.0%} of those still paying (ROC AUC "
                        f"{auc:.2f}): the export rewrote it at churn, so customer_mrr would "
                        "tell the churn model the answer; export the MRR each account paid "
                        "while paying to use it",
                        auc,
                    )
                )
    return out


@dataclass(frozen=True)
class SpecStats:
    """Everything ``spec_from_stats`` needs, over one set of accounts (or many, merged)."""

    event_counts: pd.Series
    levels: dict[str, list[str]]
    events: EventLeakStats
    attributes: AttributeStats


def spec_stats(
    tables: Tables,
    config: CompanyConfig,
    export_time: pd.Timestamp,
    *,
    events: EventLeakStats | None = None,
) -> SpecStats:
    """``SpecStats`` of one machine's tables or one partition's (already cut in time);
    ``events``: the events' leak statistics if already computed (from the index)."""
    acc = tables.accounts
    levels = {
        col: pd.unique(acc[col].dropna().astype(str)).tolist()
        for col in config.firmographics.categorical
        if col in acc.columns
    }
    if events is None:
        events = event_leak_stats(tables, config, export_time=export_time)
    auto = config.leakage.auto_exclude
    return SpecStats(
        # events per type from the statistics (no text conversion of every event)
        event_counts=pd.Series(events.events, index=pd.Index(events.names, dtype=object)),
        levels=levels,
        events=events,
        attributes=attribute_stats(tables, config, export_time) if auto else AttributeStats(),
    )


def merge_spec_stats(parts: Iterable[SpecStats]) -> SpecStats:
    """Statistics of disjoint sets of accounts, summed."""
    items = list(parts)
    counts = [p.event_counts for p in items if len(p.event_counts)]
    merged = (
        pd.concat(counts).groupby(level=0, sort=False).sum() if counts else pd.Series(dtype="int64")
    )
    levels: dict[str, list[str]] = {}
    for p in items:
        for col, values in p.levels.items():
            levels.setdefault(col, []).extend(values)
    return SpecStats(
        event_counts=merged,
        levels=levels,
        events=merge_event_stats([p.events for p in items]),
        attributes=_merge_attribute_stats([p.attributes for p in items]),
    )


def leak_scan_from_stats(stats: SpecStats, config: CompanyConfig) -> LeakScan:
    """The leak scan (``features.leaks.scan_leaks``) from statistics."""
    rules = config.leakage
    configured = list(rules.exclude_events)
    events = judge_events(stats.events, config) if rules.auto_exclude else []
    allowed = set(rules.allow_events)
    excluded = list(
        dict.fromkeys([*configured, *(e.event for e in events if e.event not in allowed)])
    )
    attributes = (
        judge_attributes(stats.attributes, config)
        if rules.auto_exclude
        else [
            AttributeLeak(c, 'declared known_at = "current"')
            for c, k in config.firmographics.known_at.items()
            if k == "current"
        ]
    )
    return LeakScan(
        events=events,
        attributes=attributes,
        configured=configured,
        excluded_events=excluded,
        labelled_accounts=stats.events.labelled if rules.auto_exclude else 0,
        converters=stats.events.converters if rules.auto_exclude else 0,
    )


def spec_from_stats(
    stats: SpecStats, config: CompanyConfig, *, before: pd.Timestamp | None = None
) -> FeatureSpec:
    """The feature spec from (merged) statistics: the leak scan's exclusions, then the
    top-K event types and levels of what is left (``feature_spec_from_counts``)."""
    from features.spec import feature_spec_from_counts

    scan = leak_scan_from_stats(stats, config)
    counts = stats.event_counts
    if scan.excluded_events:
        counts = counts[~counts.index.astype(str).isin(scan.excluded_events)]
    levels = {c: v for c, v in stats.levels.items() if c not in scan.excluded_attributes}
    spec = feature_spec_from_counts(counts, levels, config)
    notes = [line for line in scan.message().splitlines() if line]
    return replace(
        spec,
        excluded_events=scan.excluded_events,
        excluded_attributes=scan.excluded_attributes,
        leak_notes=notes,
        fitted_before=None if before is None else str(pd.Timestamp(before)),
        activity_profile=activity_profile(stats.events.hour_of_week),
    )


def cut_tables(tables: Tables, before: pd.Timestamp, export_time: pd.Timestamp) -> Tables:
    """The accounts whose trial started before ``before`` and their events before it
    (and their feature-table rows known before it): what a point-in-time spec sees."""
    cut = pd.Timestamp(before)
    acc = tables.accounts[tables.accounts["trial_start"] < cut]
    ids = acc["account_id"].astype(str)
    ev = tables.events
    ids_of = ev["account_id"]  # a categorical column (20M events) is matched on its categories
    ids_of = ids_of if isinstance(ids_of.dtype, pd.CategoricalDtype) else ids_of.astype(str)
    ev = ev[(ev["timestamp"] < cut).to_numpy() & ids_of.isin(ids).to_numpy()]
    table = tables.features
    if table is not None:  # the feature table's rows of those accounts, before the cut
        keep = table["account_id"].astype(str).isin(ids).to_numpy()
        if "as_of" in table.columns:
            keep = keep & (table["as_of"] < cut).to_numpy()
        table = table[keep]
    return Tables(
        events=ev,
        accounts=acc.reset_index(drop=True),
        communications=None,
        features=table,
        export_at=export_time,
    )


#: Fewer labelled trials than this: the spec is fitted on everything (no cut).
MIN_CUT_TRIALS = 10


def spec_cutoff_from_trials(
    trials: pd.DataFrame, config: CompanyConfig, now: pd.Timestamp
) -> pd.Timestamp | None:
    """Trial start of the first validation cohort of the conversion split (approximately):
    the oldest ``1 - valid_fraction - test_fraction`` of trials with a closed label window.

    ``trials`` needs ``trial_start`` and ``trial_end`` (one row per account; the Dask
    job gathers just these two columns). ``None`` when fewer than ``MIN_CUT_TRIALS``
    trials are labelled (then the spec is fitted on everything).
    """
    window = pd.Timedelta(days=config.trial.conversion_window_days)
    closed = trials.loc[(trials["trial_end"] + window) < pd.Timestamp(now), "trial_start"]
    if len(closed) < MIN_CUT_TRIALS:
        return None
    share = 1 - config.model.valid_fraction - config.model.test_fraction
    return pd.Timestamp(
        np.quantile(closed.to_numpy().astype("int64"), share).astype("datetime64[ns]")
    )


def point_in_time_spec(
    tables: Tables, config: CompanyConfig, export_time: pd.Timestamp | None = None
) -> FeatureSpec:
    """The spec fitted only on trials that started before the validation cut
    (``spec_cutoff_from_trials``): what every training path builds with."""
    from features.spec import fit_feature_spec

    now = pd.Timestamp(export_time) if export_time is not None else tables.export_time()
    cut = spec_cutoff_from_trials(tables.accounts, config, now)
    return fit_feature_spec(tables, config, before=cut, export_time=export_time)
