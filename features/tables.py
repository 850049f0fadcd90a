"""The contract tables in memory, in their canonical form.

Canonical means: contract column names; timestamps as timezone-naive UTC
``datetime64[ns]``; id and name columns as strings (``category`` dtype is fine for
large event tables); money as float. Loaders and the demo generator produce this
form; every feature builder consumes it.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

TIMESTAMP_COLUMNS: dict[str, tuple[str, ...]] = {
    "events": ("timestamp",),
    "accounts": ("trial_start", "trial_end", "converted_at", "churned_at"),
    "communications": ("timestamp",),
}


@dataclass(frozen=True)
class Tables:
    """A company's input tables, validated and canonical.

    Attributes:
        events: one row per product event.
        accounts: one row per account that started a trial (``account_id`` unique).
        communications: one row per message or touch, or ``None`` if not supplied.
        features: the validated feature table (``features.feature_table``): one
            row per account, or per account and ``as_of``; ``None`` if not supplied.
        export_at: the export moment, the one "now" for labels, censoring,
            lifecycle, scoring, milestones and the forecast (validation sets it
            from ``[validation].export_time`` or the data); ``None``: derived.
    """

    events: pd.DataFrame
    accounts: pd.DataFrame
    communications: pd.DataFrame | None = None
    features: pd.DataFrame | None = None
    export_at: pd.Timestamp | None = None

    def export_time(self) -> pd.Timestamp:
        """The one "now": ``export_at`` (set by validation from ``[validation].export_time``
        or the data), else the latest event or account date. Messages never move it."""
        if self.export_at is not None:
            return pd.Timestamp(self.export_at)
        candidates = [self.events["timestamp"].max()]
        for col in ("trial_start", "converted_at", "churned_at"):
            if col in self.accounts.columns and len(self.accounts):
                candidates.append(self.accounts[col].max())
        if self.features is not None and "as_of" in self.features.columns:
            candidates.append(self.features["as_of"].max())
        return pd.Timestamp(max(c for c in candidates if pd.notna(c)))
