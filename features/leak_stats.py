"""Per-event-type statistics behind the leak judgement, additive across partitions.

The leak scan asks, for every event type, how many labelled converters and
non-converters have it at certain moments (during the trial, before their
outcome, right at ``converted_at``). Those are counts over accounts, so they add
up: a Dask job computes ``EventLeakStats`` on each partition (accounts never
span partitions) and merges them with ``+`` or ``merge_stats``; one machine
computes them once. ``features.leaks.judge_events`` turns merged statistics into
flagged events, so both paths judge identically.

Everything runs on integer arrays (account positions, event-type codes, seconds)
with ``numpy.bincount``: no group-by over every event.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from features.config import CompanyConfig
from features.event_index import (
    NAT_SECONDS,
    SECONDS_PER_DAY,
    EventIndex,
    codes_and_labels,
    to_seconds,
)
from features.tables import Tables
from features.weekdays import HOURS_PER_WEEK, hour_of_week_counts

#: Largest (account x event type) table held as a dense array; beyond it, np.unique.
DENSE_PAIRS = 50_000_000

#: The per-event-type count arrays of ``EventLeakStats`` (aligned with ``names``).
COUNT_FIELDS = (
    "events",
    "trial_converters",
    "trial_others",
    "reach_converters",
    "reach_others",
    "cluster_converters",
    "clustered_converters",
)


@dataclass(frozen=True)
class EventLeakStats:
    """Counts per event type over the accounts of one partition (or many, merged).

    Attributes:
        names: event-type names; every array below is aligned with them.
        events: events of that type (every account, labelled or not).
        trial_converters / trial_others: labelled converters / non-converters
            with the event during the trial, before trial end and before converting.
        reach_converters / reach_others: converters with it before ``converted_at``
            (whenever that falls) / non-converters with it before their label
            window closed: the accounts that reached it before their outcome.
        cluster_converters: converters with the event at any time.
        clustered_converters: of those, the ones with at least ``cluster_share``
            of their events of that type within ``cluster_days`` of ``converted_at``.
        labelled: accounts whose label window had closed at the export.
        converters: labelled accounts that converted within the window.
        hour_of_week: events per hour of the week (168 bins, UTC; every event, any
            account): the company's usual week (``features.weekdays.activity_profile``).
    """

    names: tuple[str, ...]
    events: np.ndarray
    trial_converters: np.ndarray
    trial_others: np.ndarray
    reach_converters: np.ndarray
    reach_others: np.ndarray
    cluster_converters: np.ndarray
    clustered_converters: np.ndarray
    labelled: int
    converters: int
    hour_of_week: np.ndarray = field(default_factory=lambda: np.zeros(HOURS_PER_WEEK, np.int64))

    @property
    def others(self) -> int:
        """Labelled accounts that did not convert within the window."""
        return self.labelled - self.converters

    def __add__(self, other: EventLeakStats) -> EventLeakStats:
        return merge_stats([self, other])

    def frame(self) -> pd.DataFrame:
        """The counts as a table indexed by event name (for reading and tests)."""
        data = {name: getattr(self, name) for name in COUNT_FIELDS}
        return pd.DataFrame(data, index=pd.Index(self.names, name="event"))


def empty_stats() -> EventLeakStats:
    """Statistics of no accounts (the identity of ``merge_stats``)."""
    zero = np.zeros(0, dtype=np.int64)
    return EventLeakStats((), **{f: zero for f in COUNT_FIELDS}, labelled=0, converters=0)


def merge_stats(parts: Iterable[EventLeakStats]) -> EventLeakStats:
    """Sum statistics of disjoint sets of accounts (names aligned, in first-seen order)."""
    parts = list(parts)
    if not parts:
        return empty_stats()
    names = list(dict.fromkeys(n for p in parts for n in p.names))
    where = pd.Index(names)
    totals = {f: np.zeros(len(names), dtype=np.int64) for f in COUNT_FIELDS}
    for part in parts:
        pos = where.get_indexer(pd.Index(part.names))
        for f in COUNT_FIELDS:
            np.add.at(totals[f], pos, getattr(part, f))
    return EventLeakStats(
        tuple(names),
        **totals,
        labelled=sum(p.labelled for p in parts),
        converters=sum(p.converters for p in parts),
        hour_of_week=np.sum([p.hour_of_week for p in parts], axis=0).astype(np.int64),
    )


#: Events handled per pass: bounds the temporary arrays (a few hundred MB at 20M events).
CHUNK_EVENTS = 2_000_000
#: Largest (account x type) table of counts held densely (int64; 40 MB).
DENSE_COUNTS = 5_000_000


class _PairSet:
    """The distinct (account x type) keys seen over several chunks."""

    def __init__(self, span: int) -> None:
        self.seen = np.zeros(span, dtype=bool) if span <= DENSE_PAIRS else None
        self.parts: list[np.ndarray] = []

    def add(self, key: np.ndarray) -> None:
        if self.seen is not None:
            self.seen[key] = True
        else:
            self.parts.append(np.unique(key))

    def keys(self) -> np.ndarray:
        """The distinct keys, sorted."""
        if self.seen is not None:
            return np.flatnonzero(self.seen)
        return np.unique(np.concatenate(self.parts)) if self.parts else np.zeros(0, np.int64)


class _PairCounts:
    """Occurrences of each (account x type) key over several chunks."""

    def __init__(self, span: int) -> None:
        self.span = span
        self.dense = np.zeros(span, dtype=np.int64) if span <= DENSE_COUNTS else None
        self.parts: list[tuple[np.ndarray, np.ndarray]] = []

    def add(self, key: np.ndarray) -> None:
        if self.dense is not None:
            self.dense += np.bincount(key, minlength=self.span)
        else:
            self.parts.append(np.unique(key, return_counts=True))

    def at(self, keys: np.ndarray) -> np.ndarray:
        """The count of each of ``keys`` (sorted, distinct)."""
        if self.dense is not None:
            return self.dense[keys]
        out = np.zeros(len(keys), dtype=np.int64)
        for part, n in self.parts:
            pos = np.searchsorted(keys, part)
            found = pos < len(keys)
            found[found] = keys[pos[found]] == part[found]
            np.add.at(out, pos[found], n[found])
        return out


def _per_type(pairs: np.ndarray, of_account: np.ndarray, n_vocab: int) -> np.ndarray:
    """How many accounts with ``of_account`` true have each type among ``pairs``."""
    hit = of_account[pairs // n_vocab]
    return np.bincount(pairs[hit] % n_vocab, minlength=n_vocab).astype(np.int64)


@dataclass(frozen=True)
class LabelledAccounts:
    """Each account's label window at the export, in seconds (accounts-table order).

    Attributes:
        closed: the label window had closed at the export (the account is judged).
        converted: converted within the window (the label).
        trial_end, converted_at: seconds (``NAT_SECONDS`` when not converted).
        decided: the end of each account's outcome: ``converted_at`` for
            converters, the window's close for the others.
    """

    closed: np.ndarray
    converted: np.ndarray
    trial_end: np.ndarray
    converted_at: np.ndarray
    decided: np.ndarray


def labelled_accounts(
    accounts: pd.DataFrame, config: CompanyConfig, export_time: pd.Timestamp
) -> LabelledAccounts:
    """The one label rule of the leak scan (converted within the window, window closed)."""
    end = to_seconds(accounts["trial_end"])
    conv = (
        to_seconds(accounts["converted_at"])
        if "converted_at" in accounts.columns
        else np.full(len(accounts), NAT_SECONDS, dtype=np.int64)
    )
    window = round(config.trial.conversion_window_days * SECONDS_PER_DAY)
    now = pd.Timestamp(export_time).value // 1_000_000_000
    closed = (end != NAT_SECONDS) & (end + window <= now)
    converted = (conv != NAT_SECONDS) & (conv <= end + window)
    decided = np.where(converted, conv, end + window)
    return LabelledAccounts(closed, converted, end, conv, decided)


def event_leak_stats(
    tables: Tables, config: CompanyConfig, *, export_time: pd.Timestamp | None = None
) -> EventLeakStats:
    """Statistics of one machine's tables, or of one partition of accounts and their events.

    ``export_time`` must be the same for every partition (the label rule uses it).
    """
    now = pd.Timestamp(export_time) if export_time is not None else tables.export_time()
    events = tables.events
    account_ids = pd.Index(tables.accounts["account_id"].astype(str))
    acc_codes, acc_labels = codes_and_labels(events["account_id"])
    acc = np.where(acc_codes >= 0, account_ids.get_indexer(acc_labels)[acc_codes], -1)
    codes, vocabulary = codes_and_labels(events["event"])
    ts = to_seconds(events["timestamp"])
    return stats_from_arrays(
        labelled_accounts(tables.accounts, config, now),
        acc=acc,
        event=codes,
        ts=ts,
        vocabulary=vocabulary,
        config=config,
    )


def event_leak_stats_from_index(
    index: EventIndex, tables: Tables, config: CompanyConfig, export_time: pd.Timestamp
) -> EventLeakStats:
    """``event_leak_stats`` on an ``EventIndex`` of ``tables`` (no second copy of the
    events: the index's integer arrays are read as they are)."""
    return stats_from_arrays(
        labelled_accounts(tables.accounts, config, export_time),
        acc=index.acc,
        event=index.event,
        ts=index.ts,
        vocabulary=index.vocabulary,
        config=config,
    )


def stats_from_arrays(
    lab: LabelledAccounts,
    *,
    acc: np.ndarray,
    event: np.ndarray,
    ts: np.ndarray,
    vocabulary: pd.Index,
    config: CompanyConfig,
) -> EventLeakStats:
    """The statistics from integer event arrays (account position, type code, seconds).

    Events with ``acc < 0`` (unknown account) only name their type; so do events
    of accounts whose label window is still open. Each moment is a per-account
    cutoff (``NAT_SECONDS`` where it does not apply), so every rule is one
    comparison per event and one scatter into an (account x type) table.
    """
    rules = config.leakage
    n_vocab = len(vocabulary)
    valid = event >= 0
    counts = np.bincount(event[valid], minlength=n_vocab).astype(np.int64)
    present = np.flatnonzero(counts > 0)

    # One extra account slot (the last) for unknown accounts: every cutoff NaT there.
    n_acc = len(lab.closed) + 1
    judged = np.append(lab.closed, False)
    convert = np.append(lab.closed & lab.converted, False)
    other = judged & ~convert
    never = np.int64(NAT_SECONDS)
    conv_at = np.append(lab.converted_at, never)
    trial_cut = np.where(
        conv_at == never,
        np.append(lab.trial_end, never),
        np.minimum(np.append(lab.trial_end, never), conv_at),
    )
    trial_cut = np.where(judged, trial_cut, never)
    decided = np.where(judged, np.append(lab.decided, never), never)

    span = n_acc * n_vocab
    trial, reach, clustered_pairs = _PairSet(span), _PairSet(span), _PairSet(span)
    total, close = _PairCounts(span), _PairCounts(span)
    window = rules.cluster_days * SECONDS_PER_DAY
    # An index's arrays are clean (known accounts, types and times): no masking then.
    clean = bool(valid.all()) and (len(acc) == 0 or (acc.min() >= 0 and ts.min() != never))
    for lo in range(0, len(event), CHUNK_EVENTS):
        part = slice(lo, lo + CHUNK_EVENTS)
        t = ts[part]
        if clean:
            a = acc[part].astype(np.int64)
            key = a * n_vocab + event[part]
        else:
            ok = valid[part]
            a = np.where(ok & (acc[part] >= 0) & (t != never), acc[part], n_acc - 1)
            key = a.astype(np.int64) * n_vocab + np.where(ok, event[part], 0)
        trial.add(key[t < trial_cut[a]])
        reach.add(key[t < decided[a]])
        # Clustered at conversion: per (converter, type), the share of its events near it.
        mine = convert[a]
        mine_key = key[mine]
        total.add(mine_key)
        clustered_pairs.add(mine_key)
        close.add(mine_key[np.abs(t[mine] - conv_at[a[mine]]) <= window])
    pairs = clustered_pairs.keys()
    types = pairs % n_vocab
    cluster_have = np.bincount(types, minlength=n_vocab).astype(np.int64)
    hit = close.at(pairs) / np.maximum(total.at(pairs), 1) >= rules.cluster_share
    clustered = np.bincount(types[hit], minlength=n_vocab).astype(np.int64)
    trial_keys, reach_keys = trial.keys(), reach.keys()
    trial_conv = _per_type(trial_keys, convert, n_vocab)
    trial_other = _per_type(trial_keys, other, n_vocab)
    reach_conv = _per_type(reach_keys, convert, n_vocab)
    reach_other = _per_type(reach_keys, other, n_vocab)

    n_lab = int(lab.closed.sum())
    n_conv = int((lab.closed & lab.converted).sum())
    return EventLeakStats(
        tuple(str(v) for v in vocabulary[present]),
        events=counts[present],
        trial_converters=trial_conv[present],
        trial_others=trial_other[present],
        reach_converters=reach_conv[present],
        reach_others=reach_other[present],
        cluster_converters=cluster_have[present],
        clustered_converters=clustered[present],
        labelled=n_lab,
        converters=n_conv,
        hour_of_week=hour_of_week_counts(ts),
    )
