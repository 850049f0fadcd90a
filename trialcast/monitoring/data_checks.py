"""Is the data itself broken? Pipelines that stopped, dropped, or exported late.

Each check compares the last days before ``as_of`` with the usual level over
the ``REFERENCE_DAYS`` before them, and names the broken pipeline with its
date. The levels are chosen so that ordinary noise cannot trip them: an event
type counts as stopped only when at least ``MIN_MISSED`` events were expected
in its silence (the chance of that under the usual rate is below e^-20).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from trialcast.monitoring.alerts import Alert, AlertKind

REFERENCE_DAYS = 49
RECENT_DAYS = 7
#: Events expected during a silence before the event type counts as stopped.
MIN_MISSED = 20.0
#: A silence shorter than this (days) is never called a stop: exports often
#: miss their newest day or two (the demo's last two days have no signups).
MIN_SILENT_DAYS = 2.5
#: An event type whose recent share of all events fell below this fraction of
#: its usual share (with enough expected) has dropped.
DROP_RATIO = 0.3
#: All events together below this fraction of the usual daily volume: broken.
VOLUME_RATIO = 0.3
#: Newest event older than this before ``as_of``: the export is late.
LATE_DAYS = 2.0
#: Quarantined share of input rows above this: broken input.
QUARANTINE_RATE = 0.05
DAY = pd.Timedelta(days=1)


def _day(moment: pd.Timestamp) -> str:
    return pd.Timestamp(moment).date().isoformat()


def _same_hours_last_weeks(times: pd.Series, start: pd.Timestamp, end: pd.Timestamp) -> float:
    """Mean count in ``[start, end)`` moved back 1..``REFERENCE_DAYS // 7`` weeks.

    The same weekdays and hours, so quiet nights and weekends expect little.
    """
    weeks = REFERENCE_DAYS // 7
    t = times.to_numpy(dtype="datetime64[ns]")
    total = 0
    for k in range(1, weeks + 1):
        shift = np.timedelta64(7 * k, "D")
        lo, hi = np.datetime64(start) - shift, np.datetime64(end) - shift
        total += int(((t > lo) & (t < hi)).sum())
    return total / weeks


def check_event_types(events: pd.DataFrame, as_of: pd.Timestamp) -> tuple[list[Alert], list[str]]:
    """Event types that stopped or dropped (alerts) and that appeared (notes)."""
    recent_from = as_of - RECENT_DAYS * DAY
    ref_from = recent_from - REFERENCE_DAYS * DAY
    names = events["event"].astype(str)
    times = events["timestamp"]
    in_ref = (times >= ref_from) & (times < recent_from)
    in_recent = (times >= recent_from) & (times < as_of)
    ref_counts = names[in_ref].value_counts()
    recent_counts = names[in_recent].value_counts()
    last_seen = times.groupby(names).max().to_dict()
    ref_total, recent_total = float(in_ref.sum()), float(in_recent.sum())
    alerts: list[Alert] = []
    notes: list[str] = []
    for name, n_ref in ref_counts.items():
        seen = pd.Timestamp(last_seen[name])
        silent_days = (as_of - seen) / DAY
        expected = _same_hours_last_weeks(times[names == name], seen, as_of)
        if silent_days >= MIN_SILENT_DAYS and expected >= MIN_MISSED:
            since = seen.ceil("D") if seen.ceil("D") < as_of else seen
            alerts.append(
                Alert(
                    AlertKind.DATA,
                    f"event {name!r}",
                    _day(since),
                    f"{name!r} stopped arriving on {_day(since)}: none for {silent_days:.1f} days "
                    f"where about {expected:.0f} arrived in the same hours of the weeks before "
                    f"(last seen {seen:%Y-%m-%d %H:%M})",
                )
            )
            continue
        usual_share = n_ref / ref_total if ref_total else 0.0
        expected = usual_share * recent_total
        now_share = recent_counts.get(name, 0) / recent_total if recent_total else 0.0
        if expected >= 5 * MIN_MISSED and now_share < DROP_RATIO * usual_share:
            alerts.append(
                Alert(
                    AlertKind.DATA,
                    f"event {name!r}",
                    _day(recent_from),
                    f"{name!r} dropped to {100 * now_share / usual_share:.0f}% of its usual share "
                    f"of events in the last {RECENT_DAYS} days ({recent_counts.get(name, 0):,} "
                    f"vs about {expected:,.0f} expected)",
                )
            )
    first_seen = times.groupby(names).min().to_dict()
    for name, n in recent_counts.items():
        if name not in ref_counts.index and n >= 10:
            notes.append(
                f"{name!r} appeared on {_day(pd.Timestamp(first_seen[name]))} "
                f"({int(n):,} in the last {RECENT_DAYS} days)"
            )
    if ref_total and recent_total < VOLUME_RATIO * ref_total * RECENT_DAYS / REFERENCE_DAYS:
        alerts.append(
            Alert(
                AlertKind.DATA,
                "events table",
                _day(recent_from),
                f"event volume fell to {recent_total / RECENT_DAYS:,.0f} a day from "
                f"{ref_total / REFERENCE_DAYS:,.0f} a day",
            )
        )
    return alerts, notes


def check_accounts(
    accounts: pd.DataFrame, events: pd.DataFrame, as_of: pd.Timestamp
) -> list[Alert]:
    """Signups that stopped, and new trials with no events in their first day."""
    alerts: list[Alert] = []
    start = pd.to_datetime(accounts["trial_start"])
    recent_from = as_of - RECENT_DAYS * DAY
    ref_from = recent_from - REFERENCE_DAYS * DAY
    rate = float(((start >= ref_from) & (start < recent_from)).sum()) / REFERENCE_DAYS
    newest = start[start < as_of].max()
    silent = (as_of - newest) / DAY if pd.notna(newest) else 0.0
    if silent >= MIN_SILENT_DAYS and rate * silent >= MIN_MISSED:
        alerts.append(
            Alert(
                AlertKind.DATA,
                "accounts table",
                _day(newest),
                f"no trial started since {newest:%Y-%m-%d %H:%M} where about {rate:.1f} a day "
                "started before",
            )
        )
    ids = accounts["account_id"].astype(str)
    first = events.groupby(events["account_id"].astype(str))["timestamp"].min()
    first_event = ids.map(first)
    quiet = (first_event.isna() | (first_event >= start + DAY)).to_numpy()
    aged = (start + DAY <= as_of).to_numpy()
    ref = aged & ((start >= ref_from) & (start < recent_from)).to_numpy()
    rec = aged & (start >= recent_from).to_numpy()
    if rec.sum() >= 30 and ref.sum() >= 30:
        usual, now = float(quiet[ref].mean()), float(quiet[rec].mean())
        if now >= usual + 0.25 and now >= 2 * usual:
            alerts.append(
                Alert(
                    AlertKind.DATA,
                    "events table",
                    _day(recent_from),
                    f"{100 * now:.0f}% of the trials started in the last {RECENT_DAYS} days have "
                    f"no event in their first day (usually {100 * usual:.0f}%)",
                )
            )
    return alerts


def check_export(
    events: pd.DataFrame,
    as_of: pd.Timestamp,
    *,
    rows_in: dict[str, int] | None = None,
    rows_quarantined: dict[str, int] | None = None,
) -> list[Alert]:
    """A late export (newest event long before ``as_of``) and a high quarantine rate."""
    alerts: list[Alert] = []
    newest = events["timestamp"][events["timestamp"] < as_of].max()
    if pd.notna(newest) and (as_of - newest) / DAY > LATE_DAYS:
        alerts.append(
            Alert(
                AlertKind.DATA,
                "export",
                _day(newest),
                f"the newest event is from {newest:%Y-%m-%d %H:%M}, "
                f"{(as_of - newest) / DAY:.1f} days before {as_of:%Y-%m-%d}: late or stopped export",
            )
        )
    for table, n_in in (rows_in or {}).items():
        n_q = (rows_quarantined or {}).get(table, 0)
        if n_in and n_q / n_in > QUARANTINE_RATE:
            alerts.append(
                Alert(
                    AlertKind.DATA,
                    f"{table} table",
                    None,
                    f"{n_q:,} of {n_in:,} {table} rows ({100 * n_q / n_in:.1f}%) were quarantined "
                    "(see the quarantine files)",
                )
            )
    return alerts


def run_data_checks(
    accounts: pd.DataFrame,
    events: pd.DataFrame,
    as_of: pd.Timestamp,
    *,
    rows_in: dict[str, int] | None = None,
    rows_quarantined: dict[str, int] | None = None,
) -> tuple[list[Alert], list[str]]:
    """Every data check on the tables known at ``as_of``: alerts and notes."""
    alerts, notes = check_event_types(events, as_of)
    alerts += check_accounts(accounts, events, as_of)
    alerts += check_export(events, as_of, rows_in=rows_in, rows_quarantined=rows_quarantined)
    return alerts, notes
