"""The latest batch scores, as the service reads them (reloaded when the file changes)."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from serving.batch import read_scores, resolve_scores_path


@dataclass
class ScoreStore:
    """The batch-scored snapshot written by the ``score`` job, indexed by ``account_id``.

    ``refresh`` re-reads the Parquet file when its modification time changes, so
    a new score run shows up without restarting the service.
    """

    path: Path
    frame: pd.DataFrame | None = None
    mtime: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def open(cls, path: str | Path | None = None) -> ScoreStore:
        """The store at ``path`` (default: ``serving.batch.resolve_scores_path``), loaded."""
        store = cls(resolve_scores_path(path))
        store.refresh()
        return store

    def refresh(self) -> None:
        """Reload the file if it changed (or appeared, or went away)."""
        try:
            mtime: float | None = self.path.stat().st_mtime
        except OSError:
            mtime = None
        if mtime == self.mtime:
            return
        with self._lock:
            frame = read_scores(self.path) if mtime is not None else None
            if frame is not None:
                frame = frame.set_index(frame["account_id"].astype(str), drop=False)
            self.frame, self.mtime = frame, mtime

    @property
    def as_of(self) -> pd.Timestamp | None:
        """When the snapshot was scored (``None`` without one)."""
        if self.frame is None or not len(self.frame):
            return None
        return pd.Timestamp(self.frame["as_of"].iloc[0])

    def __len__(self) -> int:
        return 0 if self.frame is None else len(self.frame)

    def ranked(
        self,
        *,
        persona: str | None = None,
        pql: bool | None = None,
        limit: int | None = 200,
        search: str | None = None,
    ) -> pd.DataFrame:
        """Accounts by expected value (highest first), filtered by persona, PQL flag and a
        case-insensitive search in the account id (``limit=None``: all of them)."""
        self.refresh()
        frame = self.frame
        if frame is None:
            return pd.DataFrame()
        mask = np.ones(len(frame), dtype=bool)
        if persona:
            mask &= (frame["persona"] == persona).to_numpy()
        if pql is not None:
            mask &= (frame["pql"] == pql).to_numpy()
        if search and search.strip():
            ids = frame["account_id"].astype(str).str.lower()
            mask &= ids.str.contains(search.strip().lower(), regex=False).to_numpy()
        out = frame[mask]
        return out if limit is None else out.head(limit)

    def account(self, account_id: str) -> dict[str, Any] | None:
        """One account's row as an ``AccountScore``-shaped dict, or ``None``."""
        self.refresh()
        frame = self.frame
        if frame is None or account_id not in frame.index:
            return None
        return snapshot_row_to_score(frame.loc[account_id].to_dict())


def _float(value: Any) -> float | None:
    if value is None:
        return None
    out = float(value)
    return None if np.isnan(out) else out


def snapshot_row_to_score(row: Mapping[Any, Any]) -> dict[str, Any]:
    """A row of the batch-scored table in the shape of the API's ``AccountScore``."""
    p = float(row["p_convert"])
    explanation = {
        "model": "conversion",
        "model_name": str(row["model_name"]),
        "model_version": str(row["model_version"]),
        "base_value": float(row["base_value"]),
        "logit": float(row["logit"]),
        "probability": p,
        "positive": json.loads(row["positive"]),
        "negative": json.loads(row["negative"]),
        "other": float(row["other"]),
        "all": None,
    }
    return {
        "account_id": str(row["account_id"]),
        "as_of": pd.Timestamp(row["as_of"]).to_pydatetime(),
        "lifecycle": str(row["lifecycle"]),
        "p_convert": p,
        "p_churn": None,
        "deal_value": _float(row.get("deal_value")),
        "expected_value": _float(row.get("expected_value")),
        "persona": str(row["persona"]),
        "playbook": str(row["playbook"]),
        "pql": bool(row["pql"]),
        "explanations": [explanation],
        "warnings": [],
        "trial_days_left": _float(row.get("trial_days_left")),
        "trial_start": _moment(row.get("trial_start")),
        "trial_end": _moment(row.get("trial_end")),
        "checklist": _checklist(row.get("checklist")),
    }


def _checklist(value: Any) -> list[dict[str, Any]] | None:
    """The activation checklist with dates (JSON written by the score job), when present."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = json.loads(value)
    except ValueError:
        return None
    return parsed if isinstance(parsed, list) else None


def _moment(value: Any) -> pd.Timestamp | None:
    return None if value is None or pd.isna(value) else pd.Timestamp(value)
