"""Compact integer view of the events, built once and reused for every snapshot.

Feature building is the hot path (tens of millions of events). Strings and
timestamps are turned once into integer arrays: the account's row in the accounts
table, the event type's code, a per-(account, user) code and seconds since the
epoch. Every feature family then works with ``numpy.bincount``-style passes over
these arrays, with no per-account Python loop. ``EventIndex.cut`` applies the
point-in-time rule: only events strictly before each account's ``as_of``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.tables import Tables

SECONDS_PER_DAY = 86_400


def to_seconds(values: pd.Series | pd.DatetimeIndex | np.ndarray) -> np.ndarray:
    """Timestamps as int64 seconds since the epoch; NaT becomes ``INT64_MIN``."""
    arr = np.asarray(values, dtype="datetime64[s]")
    return arr.view(np.int64)


NAT_SECONDS = np.iinfo(np.int64).min


def timestamp_seconds(moment: pd.Timestamp | str) -> int:
    """One moment as int64 seconds since the epoch (zone-aware moments count in UTC)."""
    return int(pd.Timestamp(moment).value // 1_000_000_000)


def codes_and_labels(col: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """Integer codes (-1 for missing) and their labels, cheaply for categoricals."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        cat = col.array
        return np.asarray(cat.codes, dtype=np.int64), pd.Index(cat.categories.astype(str))
    codes, uniques = pd.factorize(col, use_na_sentinel=True)
    return codes.astype(np.int64), pd.Index(pd.Index(uniques).astype(str))


@dataclass(frozen=True)
class EventIndex:
    """The events of ``accounts`` as integer arrays (one entry per event).

    Attributes:
        account_ids: account ids, in accounts-table order.
        trial_start: trial start per account, seconds.
        trial_end: trial end per account, seconds.
        converted_at: first paid day per account, seconds (``NAT_SECONDS`` if none).
        churned_at: cancellation date per account, seconds (``NAT_SECONDS`` if none).
        acc: the event's account position (events of unknown accounts are dropped).
        event: the event type code, into ``vocabulary``.
        user: the event's (account, user) code; events without a user share one
            account-level code per account.
        user_acc: account position of each user code.
        ts: event time, seconds since the epoch.
        vocabulary: event type names.
    """

    account_ids: pd.Index
    trial_start: np.ndarray
    trial_end: np.ndarray
    converted_at: np.ndarray
    churned_at: np.ndarray
    acc: np.ndarray
    event: np.ndarray
    user: np.ndarray
    user_acc: np.ndarray
    ts: np.ndarray
    vocabulary: pd.Index

    @property
    def n_accounts(self) -> int:
        return len(self.account_ids)

    @property
    def n_events(self) -> int:
        return len(self.acc)

    def event_codes(self, names: list[str]) -> np.ndarray:
        """Codes of the given event names that occur in the data (unknown names skipped)."""
        pos = self.vocabulary.get_indexer(pd.Index(names))
        return np.unique(pos[pos >= 0])

    def event_lookup(self, names: list[str]) -> np.ndarray:
        """A boolean table over event codes: True for the given names."""
        lut = np.zeros(len(self.vocabulary), dtype=bool)
        lut[self.event_codes(names)] = True
        return lut


def _optional_seconds(frame: pd.DataFrame, column: str) -> np.ndarray:
    if column not in frame.columns:
        return np.full(len(frame), NAT_SECONDS, dtype=np.int64)
    return to_seconds(frame[column])


def _small_codes(col: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """``codes_and_labels`` keeping a categorical's own (8-32 bit) code width: at 20M
    events every int64 copy is 160 MB of the index's peak memory."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        cat = col.array
        return np.asarray(cat.codes), pd.Index(cat.categories.astype(str))
    return codes_and_labels(col)


def _users(acc: np.ndarray, user_codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each event's user number and each user's account position.

    A user is an (account, user_id) pair: the same id in two accounts is two people,
    and events without a user id count as one unnamed user of their account. When
    every id belongs to one account (the usual export) the id's own code is the
    user: a scatter and a check over the events instead of hashing 20M pairs.
    """
    n_labels = int(user_codes.max()) + 1 if len(user_codes) else 0
    owner = np.full(n_labels + 1, -1, dtype=np.int64)  # the last slot takes code -1
    owner[user_codes] = acc
    same = owner[user_codes] == acc
    named = user_codes >= 0
    if bool(named.all()) and bool(same.all()):
        return user_codes, owner[:n_labels]
    if bool(np.all(same | ~named)):  # unnamed events: one user per account, after the named
        user = user_codes.astype(np.int64)
        user[~named] = n_labels + acc[~named]
        return user, np.concatenate([owner[:n_labels], np.arange(int(acc.max()) + 1)])
    pair_key = acc.astype(np.int64)
    pair_key *= n_labels + 1
    pair_key += user_codes
    pair_key += 1
    user, uniques = pd.factorize(pair_key)
    return user, (np.asarray(uniques) // (n_labels + 1)).astype(np.int64)


def build_event_index(tables: Tables) -> EventIndex:
    """Index the events of ``tables`` against its accounts table.

    Events of accounts missing from the accounts table are left out here (the
    loader's validation already set them aside with a reason). The per-event
    arrays are built in their final widths (int32 codes, int64 seconds) with one
    64-bit temporary at a time, so indexing 20M events costs about the index itself.
    """
    accounts = tables.accounts
    events = tables.events
    account_ids = pd.Index(accounts["account_id"].astype(str))
    acc_codes, acc_labels = _small_codes(events["account_id"])
    # the label's account position, and -1 for a missing code (it indexes the last slot)
    lookup = np.append(account_ids.get_indexer(acc_labels), -1).astype(np.int32)
    acc = lookup[acc_codes]
    del acc_codes

    ev_codes, vocabulary = _small_codes(events["event"])
    if "user_id" in events.columns:
        user_codes, _ = _small_codes(events["user_id"])
    else:
        user_codes = np.full(len(events), -1, dtype=np.int32)
    ts = to_seconds(events["timestamp"])

    keep = (acc >= 0) & (ev_codes >= 0) & (ts != NAT_SECONDS)
    if not keep.all():
        acc, ev_codes, user_codes, ts = acc[keep], ev_codes[keep], user_codes[keep], ts[keep]
    del keep

    user, user_acc = _users(acc, user_codes)
    del user_codes

    return EventIndex(
        account_ids=account_ids,
        trial_start=to_seconds(accounts["trial_start"]),
        trial_end=to_seconds(accounts["trial_end"]),
        converted_at=_optional_seconds(accounts, "converted_at"),
        churned_at=_optional_seconds(accounts, "churned_at"),
        acc=acc.astype(np.int32, copy=False),
        event=ev_codes.astype(np.int32),
        user=user.astype(np.int32, copy=False),
        user_acc=user_acc,
        ts=ts,
        vocabulary=vocabulary,
    )


@dataclass(frozen=True)
class EventCut:
    """The events strictly before each selected account's ``as_of``.

    Rows are the selected accounts, in the order given. Per-event arrays hold only
    the events that pass the cut.

    Attributes:
        rows_acc: account position of each row.
        as_of: cutoff per row, seconds.
        trial_start: trial start per row, seconds.
        trial_end: trial end per row, seconds.
        row: the event's row.
        event: the event's type code.
        user: the event's user code (into ``index.user_acc``).
        ts: event time, seconds.
        age: seconds from the event to its row's ``as_of`` (always > 0).
        user_row: the row of each user code's account (-1 if not selected).
    """

    index: EventIndex
    rows_acc: np.ndarray
    as_of: np.ndarray
    trial_start: np.ndarray
    trial_end: np.ndarray
    row: np.ndarray
    event: np.ndarray
    user: np.ndarray
    ts: np.ndarray
    age: np.ndarray
    user_row: np.ndarray

    @property
    def n_rows(self) -> int:
        return len(self.rows_acc)

    def count(
        self, mask: np.ndarray | None = None, weights: np.ndarray | None = None
    ) -> np.ndarray:
        """Per-row count (or weighted sum) of the events where ``mask`` holds."""
        r = self.row if mask is None else self.row[mask]
        if weights is not None and mask is not None:
            weights = weights[mask]
        out = np.bincount(r, weights=weights, minlength=self.n_rows)
        return out.astype(np.float64)


def account_cutoffs(n_accounts: int, rows_acc: np.ndarray, as_of: np.ndarray) -> np.ndarray:
    """Per account, the cutoff of its row; accounts without a row get -inf (nothing kept).

    Looking an event's cutoff up by its account is one gather over the events; going
    through its row (select, then a masked scatter) was three passes and most of the
    time of cutting 20M events.
    """
    cutoff = np.full(n_accounts, np.iinfo(np.int64).min, dtype=np.int64)
    cutoff[rows_acc] = as_of
    return cutoff


def rows_of_accounts(n_accounts: int, rows_acc: np.ndarray) -> np.ndarray:
    """Per account, its row among ``rows_acc`` (-1: no row); each account at most once."""
    if len(np.unique(rows_acc)) != len(rows_acc):
        raise ValueError("each account may appear only once per feature build")
    row_of_acc = np.full(n_accounts, -1, dtype=np.int64)
    row_of_acc[rows_acc] = np.arange(len(rows_acc))
    return row_of_acc


def cut_events(index: EventIndex, rows_acc: np.ndarray, as_of: np.ndarray) -> EventCut:
    """Select accounts (one row each) and keep only their events before ``as_of``.

    Args:
        index: the indexed events.
        rows_acc: account positions to build rows for; each at most once.
        as_of: cutoff per row, int64 seconds; events at or after it are ignored.
    """
    rows_acc = np.asarray(rows_acc, dtype=np.int64)
    as_of = np.asarray(as_of, dtype=np.int64)
    row_of_acc = rows_of_accounts(index.n_accounts, rows_acc)
    keep = index.ts < account_cutoffs(index.n_accounts, rows_acc, as_of)[index.acc]
    acc = index.acc[keep]
    row = row_of_acc[acc]
    del acc
    ts = index.ts[keep]
    return EventCut(
        index=index,
        rows_acc=rows_acc,
        as_of=as_of,
        trial_start=index.trial_start[rows_acc],
        trial_end=index.trial_end[rows_acc],
        row=row,
        event=index.event[keep],
        user=index.user[keep],
        ts=ts,
        age=as_of[row] - ts,
        user_row=np.where(index.user_acc >= 0, row_of_acc[index.user_acc], -1),
    )


def count_distinct(row: np.ndarray, key: np.ndarray, n_rows: int, n_keys: int) -> np.ndarray:
    """Per-row number of distinct ``key`` values (keys in ``[0, n_keys)``)."""
    if len(row) == 0:
        return np.zeros(n_rows, dtype=np.float64)
    if n_rows * n_keys <= 400_000_000:
        seen = np.zeros(n_rows * n_keys, dtype=bool)
        seen[row * n_keys + key] = True
        return seen.reshape(n_rows, n_keys).sum(axis=1).astype(np.float64)
    pairs = np.unique(row * n_keys + key)
    return np.bincount(pairs // n_keys, minlength=n_rows).astype(np.float64)
