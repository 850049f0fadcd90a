"""Every forecast run kept by its ``as_of``, and forecast vs actual once outcomes land.

``archive_run`` keeps a run's breakdown and account rows under
``<forecast dir>/runs/<as_of>/`` (re-running the same ``as_of`` replaces it:
idempotent). ``forecast_vs_actual`` reads every kept run and, from the current
accounts table, adds what really happened to the trials that were open then:
deals won after ``as_of`` and before their window closed. A run is ``complete``
once every one of its trials' windows has closed by the export; before that its
``actual`` is what has landed so far. This is the "how good were we" view:
``forecast_history.csv`` and ``forecast_history.png`` beside the latest forecast.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from serving.forecast.exports import write_csv, write_parquet

RUNS_DIR = "runs"
HISTORY_COLUMNS = [
    "as_of",
    "model_version",
    "n_open",
    "expected_count",
    "actual_count",
    "forecast",
    "p10",
    "p50",
    "p90",
    "actual",
    "error_pct",
    "inside",
    "complete",
]


def run_folder(out_dir: str | Path, as_of: pd.Timestamp) -> Path:
    """The folder a run of ``as_of`` is kept in."""
    return Path(out_dir) / RUNS_DIR / pd.Timestamp(as_of).strftime("%Y-%m-%dT%H%M%S")


def archive_run(
    out_dir: str | Path, breakdown: pd.DataFrame, accounts: pd.DataFrame, as_of: pd.Timestamp
) -> Path:
    """Keep this run's breakdown and account rows by ``as_of`` (atomic writes)."""
    folder = run_folder(out_dir, as_of)
    write_csv(breakdown, folder / "forecast_breakdown.csv")
    write_parquet(accounts, folder / "forecast_accounts.parquet")
    return folder


def forecast_vs_actual(
    out_dir: str | Path,
    accounts_table: pd.DataFrame,
    *,
    window_days: float,
    export_time: pd.Timestamp,
) -> pd.DataFrame:
    """One row per kept run: the forecast of the then-open trials against what happened.

    Args:
        out_dir: the forecast folder holding ``runs/``.
        accounts_table: the current accounts (``account_id``, ``trial_end``,
            ``converted_at``, ``deal_value`` of won deals).
        window_days: the conversion window after trial end.
        export_time: "now" of the accounts table (decides ``complete``).
    """
    root = Path(out_dir) / RUNS_DIR
    acc = accounts_table.assign(account_id=accounts_table["account_id"].astype(str))
    acc = acc.drop_duplicates("account_id").set_index("account_id")
    window = pd.Timedelta(days=window_days)
    rows = []
    for folder in sorted(root.glob("*/")) if root.exists() else []:
        try:
            runs = pd.read_parquet(folder / "forecast_accounts.parquet")
            breakdown = pd.read_csv(folder / "forecast_breakdown.csv")
        except (FileNotFoundError, OSError):
            continue  # a run being written, or removed by hand
        total = breakdown[breakdown["dimension"] == "total"].iloc[0]
        as_of = pd.Timestamp(
            runs["as_of"].iloc[0]
            if len(runs)
            else pd.to_datetime(folder.name, format="%Y-%m-%dT%H%M%S")
        )
        ids = runs["account_id"].astype(str)
        rows_now = acc.reindex(pd.Index(ids[ids.isin(acc.index)]))
        conv = pd.to_datetime(rows_now["converted_at"])
        closes = pd.to_datetime(rows_now["trial_end"]) + window
        won = (conv >= as_of) & (conv < closes)
        value = pd.to_numeric(rows_now["deal_value"], errors="coerce")
        actual = float(value[won].fillna(0).sum())
        forecast = float(total["expected"])
        rows.append(
            {
                "as_of": as_of,
                "model_version": str(runs["model_version"].iloc[0]) if len(runs) else "",
                "n_open": len(runs),
                "expected_count": float(total.get("expected_count", np.nan)),
                "actual_count": int(won.sum()),
                "forecast": forecast,
                "p10": float(total["p10"]),
                "p50": float(total["p50"]),
                "p90": float(total["p90"]),
                "actual": actual,
                "error_pct": 100.0 * (forecast - actual) / actual if actual else np.nan,
                "inside": bool(total["p10"] <= actual <= total["p90"]),
                "complete": bool(len(closes) == 0 or closes.max() <= export_time),
            }
        )
    return pd.DataFrame(rows, columns=HISTORY_COLUMNS)
