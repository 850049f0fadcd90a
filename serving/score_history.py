"""Daily score snapshots, so the account page can show how a trial's score moved.

``trialcast score`` writes the latest scores and, beside them, one small file per
scoring day (``history/scores_<YYYY-MM-DD>.parquet``: account, moment,
probability); a later run on the same day replaces that day's file. The service
reads one account's points across the files for its trend chart.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

HISTORY_DIR = "history"
HISTORY_COLUMNS = ["account_id", "as_of", "p_convert"]


def history_dir(scores_path: str | Path) -> Path:
    """The folder of daily snapshots beside the latest scores file."""
    return Path(scores_path).parent / HISTORY_DIR


def write_daily_snapshot(frame: pd.DataFrame, scores_path: str | Path) -> Path:
    """Keep ``frame``'s probabilities as the snapshot of its scoring day (atomic write)."""
    folder = history_dir(scores_path)
    folder.mkdir(parents=True, exist_ok=True)
    day = pd.Timestamp(frame["as_of"].iloc[0]) if len(frame) else pd.Timestamp.now()
    target = folder / f"scores_{day:%Y-%m-%d}.parquet"
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    frame[HISTORY_COLUMNS].to_parquet(tmp, index=False)
    os.replace(tmp, target)
    return target


def read_score_trend(scores_path: str | Path, account_id: str) -> pd.DataFrame:
    """One account's ``(as_of, p_convert)`` points over the stored days, oldest first."""
    files = sorted(history_dir(scores_path).glob("scores_*.parquet"))
    parts = [
        pd.read_parquet(f, columns=HISTORY_COLUMNS, filters=[("account_id", "==", account_id)])
        for f in files
    ]
    parts = [p for p in parts if len(p)]
    if not parts:
        return pd.DataFrame(columns=["as_of", "p_convert"])
    out = pd.concat(parts, ignore_index=True)[["as_of", "p_convert"]]
    return out.sort_values("as_of").reset_index(drop=True)
