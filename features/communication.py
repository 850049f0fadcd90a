"""Communication features: responsiveness, proactive outreach and tone during the trial.

Built from the optional ``communications`` table. Without it every column is
present and empty (0 counts, NaN rates), so models and persona rules still run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.config import CommunicationConfig
from features.event_index import (
    SECONDS_PER_DAY,
    account_cutoffs,
    codes_and_labels,
    rows_of_accounts,
    to_seconds,
)

NEGATIVE_TONE = -0.2


@dataclass(frozen=True)
class CommIndex:
    """Communications as integer arrays, one entry per message, by account position."""

    n_accounts: int
    acc: np.ndarray
    ts: np.ndarray
    inbound: np.ndarray
    channel: np.ndarray  # channel names, object array
    sentiment: np.ndarray


def build_comm_index(communications: pd.DataFrame | None, account_ids: pd.Index) -> CommIndex:
    """Index ``communications`` against ``account_ids`` (unknown accounts left out)."""
    if communications is None or len(communications) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return CommIndex(
            len(account_ids),
            empty,
            empty,
            empty.astype(bool),
            empty.astype(object),
            empty.astype(float),
        )
    codes, labels = codes_and_labels(communications["account_id"])
    acc = np.where(codes >= 0, account_ids.get_indexer(labels)[codes], -1)
    ts = to_seconds(communications["timestamp"])
    keep = (acc >= 0) & (ts != np.iinfo(np.int64).min)
    sentiment = (
        pd.to_numeric(communications["sentiment"], errors="coerce").to_numpy(dtype=float)
        if "sentiment" in communications.columns
        else np.full(len(communications), np.nan)
    )
    return CommIndex(
        n_accounts=len(account_ids),
        acc=acc[keep].astype(np.int64),
        ts=ts[keep],
        inbound=(communications["direction"].astype(str).to_numpy() == "inbound")[keep],
        channel=communications["channel"].astype(str).to_numpy(dtype=object)[keep],
        sentiment=sentiment[keep],
    )


def compute_communication_features(
    comms: CommIndex,
    rows_acc: np.ndarray,
    as_of: np.ndarray,
    config: CommunicationConfig,
    *,
    recent_days: int = 7,
) -> dict[str, np.ndarray]:
    """Communication columns for accounts ``rows_acc`` using messages before ``as_of``.

    Columns (units):
        comm_inbound_all / _{recent}d, comm_outbound_all: messages (count).
        comm_tickets_all: inbound tickets; comm_meetings_all: meetings and calls.
        comm_reply_rate_all: share of outbound touches answered by an inbound
            message within ``reply_window_hours`` (NaN with no outreach).
        comm_reply_latency_median_hours: median hours to that reply (NaN if none).
        comm_sentiment_mean_all, comm_sentiment_min_all: tone of inbound messages
            (-1..1, NaN if none); comm_negative_share_all: share below -0.2.
    """
    n = len(rows_acc)
    row_of_acc = rows_of_accounts(comms.n_accounts, rows_acc)
    keep = comms.ts < account_cutoffs(comms.n_accounts, rows_acc, as_of)[comms.acc]
    row, ts, inbound = row_of_acc[comms.acc[keep]], comms.ts[keep], comms.inbound[keep]
    channel, sentiment = comms.channel[keep], comms.sentiment[keep]

    def count(mask: np.ndarray) -> np.ndarray:
        return np.bincount(row[mask], minlength=n).astype(np.float64)

    recent = (as_of[row] - ts) < recent_days * SECONDS_PER_DAY
    outbound = ~inbound

    # Replies: for each outbound touch, the first inbound message after it (same row).
    in_key = row[inbound] * (1 << 40) + ts[inbound]
    in_order = np.argsort(in_key, kind="stable")
    in_key_sorted = in_key[in_order]
    out_rows, out_ts = row[outbound], ts[outbound]
    nxt = np.searchsorted(in_key_sorted, out_rows * (1 << 40) + out_ts, side="right")
    has_next = nxt < len(in_key_sorted)
    nxt_key = (
        in_key_sorted[np.minimum(nxt, max(len(in_key_sorted) - 1, 0))]
        if len(in_key_sorted)
        else nxt
    )
    nxt_row = np.where(has_next, nxt_key >> 40, -1)
    latency_h = np.where(has_next, (nxt_key - (nxt_row << 40) - out_ts) / 3600.0, np.inf)
    replied = (nxt_row == out_rows) & (latency_h <= config.reply_window_hours)

    outreach = np.bincount(out_rows, minlength=n).astype(np.float64)
    replies = np.bincount(out_rows[replied], minlength=n).astype(np.float64)
    latency = (
        pd.Series(latency_h[replied]).groupby(out_rows[replied]).median()
        if replied.any()
        else pd.Series(dtype=float)
    )
    latency_median = np.full(n, np.nan)
    latency_median[latency.index.to_numpy(dtype=np.int64)] = latency.to_numpy()

    has_tone = inbound & ~np.isnan(sentiment)
    tone_n = count(has_tone)
    tone_sum = np.bincount(row[has_tone], weights=sentiment[has_tone], minlength=n)
    tone_min = np.full(n, np.inf)
    np.minimum.at(tone_min, row[has_tone], sentiment[has_tone])
    negative = count(has_tone & (sentiment < NEGATIVE_TONE))
    with np.errstate(divide="ignore", invalid="ignore"):
        return {
            "comm_inbound_all": count(inbound),
            f"comm_inbound_{recent_days}d": count(inbound & recent),
            "comm_outbound_all": outreach,
            "comm_tickets_all": count(inbound & (channel == "ticket")),
            "comm_meetings_all": count((channel == "meeting") | (channel == "call")),
            "comm_reply_rate_all": np.where(outreach > 0, replies / outreach, np.nan),
            "comm_reply_latency_median_hours": latency_median,
            "comm_sentiment_mean_all": np.where(tone_n > 0, tone_sum / tone_n, np.nan),
            "comm_sentiment_min_all": np.where(np.isfinite(tone_min), tone_min, np.nan),
            "comm_negative_share_all": np.where(tone_n > 0, negative / tone_n, np.nan),
        }
