"""One partition of the Dask feature job: validate it, summarise it, build its rows.

Each partition holds whole accounts (``features.distributed`` co-partitions the
tables by account), so the pandas validator and feature builders run on it
unchanged; only small statistics cross partitions: first the latest timestamp
and each account's trial start and end (for the export time and the spec's
point-in-time cut), then ``features.spec_stats.SpecStats`` of the partition cut
at that moment (events per type, categorical values, the leak scan's counts),
merged into the one global ``FeatureSpec`` exactly as one machine fits it.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from features.build import FeatureBuilder
from features.config import CompanyConfig
from features.conversion_flag import apply_conversion_flag
from features.loaders import CATEGORY_COLUMNS
from features.pipeline import build_account_view, build_trial_view
from features.quarantine import InputError
from features.snapshots import (
    NoLabelledRowsError,
    build_churn_training_set,
    build_trial_training_set,
)
from features.spec import FeatureSpec
from features.spec_stats import (
    SpecStats,
    cut_tables,
    merge_spec_stats,
    spec_cutoff_from_trials,
    spec_from_stats,
    spec_stats,
)
from features.tables import Tables
from features.validation import validate_raw_tables

#: Helper columns added for the shuffle; never seen by the feature code.
PART_COLUMN = "_tc_part"
SEQ_COLUMN = "_tc_seq"
TABLES = ("events", "accounts", "communications")
#: Output datasets written by the job (folders of Parquet parts).
OUTPUT_NAMES = ("account_features", "trial_training", "churn_training")


def _restore(frame: pd.DataFrame | None, table: str) -> pd.DataFrame | None:
    """A shuffled partition back in source order, without helper columns, typed like the loader."""
    if frame is None:
        return None
    out = frame.sort_values(SEQ_COLUMN, kind="stable").reset_index(drop=True)
    out = out.drop(columns=[c for c in (PART_COLUMN, SEQ_COLUMN) if c in out.columns])
    for col in CATEGORY_COLUMNS[table]:
        if col not in out.columns or isinstance(out[col].dtype, pd.CategoricalDtype):
            continue
        if pd.api.types.is_string_dtype(out[col].dtype) or out[col].dtype == object:
            out[col] = out[col].astype("category")
    return out


@dataclass
class PartitionTables:
    """One partition's validated tables and the quarantine counts of its validation."""

    tables: Tables
    rows_in: dict[str, int]
    rows_kept: dict[str, int]


def validate_partition(
    events: pd.DataFrame,
    accounts: pd.DataFrame | None,
    communications: pd.DataFrame | None,
    config: CompanyConfig,
) -> PartitionTables:
    """Validate one partition's raw rows with the pandas validator.

    Every check is per row or per account, so on whole accounts it decides as on
    all the data, with one global input: the export time, "the latest valid
    event, capped at now". A partition sees only its own latest event ``L <= G``
    (the global latest), and events are quarantined only after ``export +
    max_days_after_export`` (``>= 0``): with ``L <= now`` no valid event of the
    partition is later than ``L`` (nothing quarantined, as globally, since
    ``G``'s cap is at least ``L``); with ``L > now`` both caps are ``now``. A
    configured ``validation.export_time`` is the same everywhere anyway.
    """
    ev = _restore(events, "events")
    acc = _restore(accounts, "accounts")
    com = _restore(communications, "communications")
    assert ev is not None
    if config.trial.conversion_flag is not None and acc is not None:
        acc, _ = apply_conversion_flag(acc, config)  # per row: same as on all the data
    formats = {
        name: getattr(config.sources, name).timestamp_format
        for name in TABLES
        if getattr(config.sources, name) is not None
    }
    tables, report = validate_raw_tables(
        ev,
        acc,
        com,
        config.validation,
        formats,
        config.trial.default_trial_days,
        flagged_conversions=config.trial.conversion_flag is not None,
    )
    return PartitionTables(tables=tables, rows_in=report.rows_in, rows_kept=report.rows_kept)


@dataclass
class PartitionStats:
    """What the export time and the spec's cut need from one partition."""

    trials: pd.DataFrame
    latest: pd.Timestamp | None
    n_accounts: int
    n_events: int
    rows_in: dict[str, int]
    rows_kept: dict[str, int]


def partition_stats(part: PartitionTables, config: CompanyConfig) -> PartitionStats:
    """Trial starts and ends and the latest timestamp of one partition."""
    tables = part.tables
    candidates = [tables.events["timestamp"].max()]
    if tables.communications is not None and len(tables.communications):
        candidates.append(tables.communications["timestamp"].max())
    valid = [c for c in candidates if pd.notna(c)]
    return PartitionStats(
        trials=tables.accounts[["trial_start", "trial_end"]].reset_index(drop=True),
        latest=pd.Timestamp(max(valid)) if valid else None,
        n_accounts=len(tables.accounts),
        n_events=len(tables.events),
        rows_in=part.rows_in,
        rows_kept=part.rows_kept,
    )


def merge_stats(
    stats: list[PartitionStats], config: CompanyConfig
) -> tuple[pd.Timestamp, pd.Timestamp | None]:
    """The export time and the spec's point-in-time cut from every partition's statistics.

    Raises:
        InputError: no valid event in any partition.
    """
    latest = [s.latest for s in stats if s.latest is not None]
    if not latest:
        raise InputError("events: no valid event left after validation; nothing to build")
    export_time = max(latest)
    trials = pd.concat([s.trials for s in stats], ignore_index=True)
    return export_time, spec_cutoff_from_trials(trials, config, export_time)


def partition_spec_stats(
    part: PartitionTables,
    config: CompanyConfig,
    cut: pd.Timestamp | None,
    export_time: pd.Timestamp,
) -> SpecStats:
    """``SpecStats`` of one partition's accounts and events before ``cut``."""
    tables = part.tables if cut is None else cut_tables(part.tables, cut, export_time)
    return spec_stats(tables, config, export_time)


def fit_merged_spec(
    parts: list[SpecStats], config: CompanyConfig, cut: pd.Timestamp | None
) -> FeatureSpec:
    """The global spec from every partition's ``SpecStats`` (``spec_from_stats``)."""
    return spec_from_stats(merge_spec_stats(parts), config, before=cut)


def _write_part(frame: pd.DataFrame, folder: Path, number: int) -> None:
    """Write one Parquet part atomically (temporary name, then rename)."""
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"part.{number:05d}.parquet"
    tmp = folder / f".part.{number:05d}.{uuid.uuid4().hex}.tmp"
    frame.to_parquet(tmp)
    os.replace(tmp, final)


def partition_finished_trials(
    part: PartitionTables, config: CompanyConfig, spec: FeatureSpec, as_of: pd.Timestamp
) -> pd.DataFrame:
    """One partition's finished trials as ``build_account_view`` sees them (for the
    global lead-type levels)."""
    if len(part.tables.accounts) == 0:
        return pd.DataFrame()
    frame = build_trial_view(FeatureBuilder.from_tables(part.tables, config, spec), as_of)
    return frame[frame["lifecycle"] != "trial"]


def build_partition(
    part: PartitionTables,
    number: int,
    config: CompanyConfig,
    spec: FeatureSpec,
    as_of: pd.Timestamp,
    export_time: pd.Timestamp,
    staging: str,
    training_sets: bool,
) -> dict[str, int]:
    """Build one partition's outputs with the unchanged pandas code and write them as parts.

    A partition with no labelled row of a kind writes no part of that training set
    (only that error is passed over; any other goes up and fails the job).

    Returns:
        Rows written per output name (0 where the partition had none).
    """
    tables = part.tables
    written = dict.fromkeys(OUTPUT_NAMES, 0)
    if len(tables.accounts) == 0:
        return written
    builder = FeatureBuilder.from_tables(tables, config, spec)
    frames: dict[str, pd.DataFrame] = {}
    view = build_account_view(builder, as_of)
    if len(view):
        frames["account_features"] = view
    if training_sets:
        for name, fn in (
            ("trial_training", build_trial_training_set),
            ("churn_training", build_churn_training_set),
        ):
            try:
                frames[name] = fn(builder, export_time=export_time)
            except NoLabelledRowsError:  # this partition's accounts have no labelled row
                continue
    for name, frame in frames.items():
        _write_part(frame, Path(staging) / name, number)
        written[name] = len(frame)
    return written
