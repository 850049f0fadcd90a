"""The feature pipeline on Dask: the same feature code, one partition of whole accounts at a time.

Every feature trialcast builds is a function of one account's own rows (its
events, its account record, its messages) plus two things fixed for the whole
run: the ``FeatureSpec`` and the export time. So the job is:

1. Read events, accounts and communications as ``dask.dataframe`` frames.
2. Co-partition them by account: each row gets partition ``hash(account_id) %
   N`` and the three frames are range-shuffled on that number with the same
   divisions, so partition ``i`` of each table holds exactly the same accounts.
   Each row also carries its global position, so a partition restores the
   source order (duplicate handling keeps the first row; float sums add in
   source order) and its results are bit-for-bit the one-machine results.
3. Validate each partition with the pandas validator (every check is per row or
   per account; the export-time cap agrees with the global one, see
   ``validate_partition``) and keep the validated partitions in worker memory.
4. Gather small global statistics: the latest timestamp and each account's trial
   start and end give the export time and the spec's point-in-time cut (the
   time split's first validation cohort); then each partition, cut there, gives
   ``features.spec_stats.SpecStats`` (events per type, categorical values, the
   leak scan's counts), merged and turned into the ``FeatureSpec`` by the same
   ``spec_from_stats`` the one-machine path uses: same leak scan, same
   exclusions (``[leakage]``, ``known_at = "current"``), same spec.
5. Run ``FeatureBuilder`` / ``build_account_view`` / the training-set builders
   unchanged on each partition, with the global spec and export time, and write
   each partition's rows as one Parquet part into a temporary folder, renamed
   into place only when every part is written.

A task re-run after a worker dies recomputes its inputs from the graph and
rewrites the same part file (each file itself written to a temporary name and
renamed), so a lost worker never leaves a half-written output behind.
"""

from __future__ import annotations

import math
import os
import shutil
import time
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features.config import CompanyConfig, SourceConfig
from features.distributed_partition import (
    OUTPUT_NAMES,
    PART_COLUMN,
    SEQ_COLUMN,
    TABLES,
    build_partition,
    fit_merged_spec,
    merge_stats,
    partition_finished_trials,
    partition_spec_stats,
    partition_stats,
    validate_partition,
)
from features.personas import fit_persona_levels
from features.quarantine import InputError
from features.spec import FeatureSpec

#: Events per partition aimed for when the partition count is not given.
EVENTS_PER_PARTITION = 2_000_000


def partition_of(account_ids: pd.Series, n_partitions: int) -> np.ndarray:
    """Partition number of each account id: a stable hash of its text, modulo ``n_partitions``.

    ``pandas.util.hash_array`` uses a fixed key, so every worker process (and
    every table, whatever its id dtype) maps an account to the same partition.
    """
    text = account_ids.astype(str).to_numpy(dtype=object)
    hashed = pd.util.hash_array(text, categorize=True)
    return (hashed % np.uint64(n_partitions)).astype(np.int64)


def read_table_dask(source: SourceConfig, table: str, *, base_dir: Path) -> Any:
    """One contract table as a ``dask.dataframe`` with contract column names.

    Parquet sources only (one file, a folder of files or a glob); a file with
    many row groups is split into several partitions. Values stay raw, exactly
    as ``features.loaders.load_table`` would hand them to validation.

    Raises:
        InputError: a source that is not Parquet, or a bad column mapping.
    """
    import dask.dataframe as dd

    fmt = source.resolved_format()
    if fmt != "parquet":
        raise InputError(
            f"{table}: the Dask feature job reads Parquet sources only, not {fmt} "
            f"(sources.{table}); export the table to Parquet (one file, a folder or a glob)"
        )
    raw = str(source.path)
    path = raw if Path(raw).is_absolute() else str(Path(base_dir) / raw)
    frame = dd.read_parquet(path, split_row_groups="adaptive", blocksize="128MiB")
    renames = {src: contract for contract, src in source.columns.items()}
    missing = [src for src in renames if src not in frame.columns]
    if missing:
        raise InputError(
            f"{table}: config maps columns to {missing} (sources.{table}.columns) but the "
            f"source has no such column. Columns found: {', '.join(map(str, frame.columns))}"
        )
    return frame.rename(columns=renames) if renames else frame


def _tag_rows(frame: pd.DataFrame, n_partitions: int) -> pd.DataFrame:
    out = frame.reset_index(drop=True)
    out[PART_COLUMN] = partition_of(out["account_id"], n_partitions)
    out[SEQ_COLUMN] = np.ones(len(out), dtype=np.int64)
    return out


def co_partition(frame: Any, n_partitions: int, *, shuffle_method: str | None = None) -> Any:
    """``frame`` range-shuffled so partition ``i`` holds the accounts with ``partition_of == i``.

    Rows also get ``SEQ_COLUMN``, their position in the source (a cumulative
    sum across partitions), so each partition can restore the source order.
    Every table shuffled with the same ``n_partitions`` gets the same
    divisions: their partitions line up account for account.
    """
    meta = _tag_rows(frame._meta, n_partitions)
    tagged = frame.map_partitions(_tag_rows, n_partitions, meta=meta)
    tagged[SEQ_COLUMN] = tagged[SEQ_COLUMN].cumsum()
    divisions = [*range(n_partitions), n_partitions - 1]
    return tagged.set_index(PART_COLUMN, divisions=divisions, shuffle_method=shuffle_method)


@dataclass
class DistributedFeatureResult:
    """What the Dask feature job produced and where it wrote it.

    Attributes:
        outputs: output name -> path (Parquet folders, ``feature_spec.json``).
        rows: rows written per output.
        spec: the spec fitted once on the global counts.
        as_of: the account view's cutoff; export_time: the data's latest moment.
        n_partitions: account partitions used.
        n_events: valid events; rows_in / rows_kept: per table, before and after validation.
        seconds: wall time per stage.
    """

    outputs: dict[str, Path]
    rows: dict[str, int]
    spec: FeatureSpec
    as_of: pd.Timestamp
    export_time: pd.Timestamp
    n_partitions: int
    n_events: int
    rows_in: dict[str, int] = field(default_factory=dict)
    rows_kept: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def replace_dir(src: Path, dst: Path) -> None:
    """Move ``src`` to ``dst``, replacing what was there (old copy removed after the move)."""
    old = None
    if dst.exists() or dst.is_symlink():
        old = dst.with_name(f".{dst.name}.old-{uuid.uuid4().hex}")
        os.replace(dst, old)
    os.replace(src, dst)
    if old is not None:
        if old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink(missing_ok=True)


def default_partitions(n_rows: int, n_workers: int) -> int:
    """About ``EVENTS_PER_PARTITION`` events per partition, at least two per worker."""
    return max(2 * max(n_workers, 1), math.ceil(n_rows / EVENTS_PER_PARTITION))


def require_event_sources(config: CompanyConfig) -> None:
    """Refuse a config the Dask feature job cannot honour, before any cluster starts.

    The job builds from the event log; a feature table (``[sources.features]``) would
    be silently left out of the features and so of every model trained on them.

    Raises:
        InputError: no events source, or a feature table is configured.
    """
    sources = config.sources
    if sources.features is not None:
        raise InputError(
            "features: the Dask jobs read event logs only, and this config has a feature "
            "table ([sources.features]) they would leave out; run the one-machine jobs "
            "(`trialcast features` / `trialcast train`), which join it, or remove "
            "[sources.features] to build from the events alone"
        )
    if sources.events is None:
        raise InputError("events: no events source configured; add [sources.events]")


def run_distributed_features(
    config: CompanyConfig,
    out_dir: str | Path,
    client: Any,
    *,
    as_of: pd.Timestamp | None = None,
    n_partitions: int | None = None,
    training_sets: bool = True,
    shuffle_method: str | None = "p2p",
) -> DistributedFeatureResult:
    """Build the account view and training sets on a Dask cluster; write them atomically.

    Writes ``account_features.parquet``, ``trial_training.parquet`` and
    ``churn_training.parquet`` (folders of Parquet parts, one per account
    partition; read them with ``pandas.read_parquet`` or ``dask.dataframe``)
    and ``feature_spec.json`` into ``out_dir``. Everything is first written to a
    temporary folder inside ``out_dir``; outputs are renamed into place only
    once every partition succeeded, so a failed or interrupted run leaves the
    previous outputs untouched.

    Args:
        config: the company config (Parquet sources).
        out_dir: output folder.
        client: a ``distributed.Client``.
        as_of: cutoff of the account view (default: the export time).
        n_partitions: account partitions (default: ~2M events each, two per worker at least).
        training_sets: also build the labelled training sets.
        shuffle_method: Dask shuffle for co-partitioning (``"tasks"`` or ``"p2p"``).
    """
    import dask

    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    require_event_sources(config)
    sources = config.sources
    frames = {
        name: read_table_dask(getattr(sources, name), name, base_dir=config.base_dir)
        if getattr(sources, name) is not None
        else None
        for name in TABLES
    }
    events = frames["events"]
    assert events is not None
    if n_partitions is None:
        n_workers = len(client.scheduler_info().get("workers", {}))
        n_partitions = default_partitions(len(events), n_workers)
    shuffled = {
        name: co_partition(frame, n_partitions, shuffle_method=shuffle_method)
        if frame is not None
        else None
        for name, frame in frames.items()
    }
    pieces = {
        name: frame.to_delayed() if frame is not None else [None] * n_partitions
        for name, frame in shuffled.items()
    }
    validate = dask.delayed(validate_partition, pure=True)
    parts = [
        validate(
            pieces["events"][i],
            pieces["accounts"][i],
            pieces["communications"][i],
            config,
            dask_key_name=f"validate-partition-{i}",
        )
        for i in range(n_partitions)
    ]
    # Validated partitions stay in worker memory for both passes (a lost worker's
    # share is recomputed from the graph).
    parts = client.persist(parts)
    stats_fn = dask.delayed(partition_stats, pure=True)
    stats = client.gather(client.compute([stats_fn(p, config) for p in parts]))
    export_time, cut = merge_stats(stats, config)
    # The spec as one machine fits it for training: leak scan, exclusions, top-K types
    # and levels from the trials before the validation cut, statistics merged.
    spec_fn = dask.delayed(partition_spec_stats, pure=True)
    spec_parts = client.gather(
        client.compute([spec_fn(p, config, cut, export_time) for p in parts])
    )
    spec = fit_merged_spec(spec_parts, config, cut)
    seconds["read_shuffle_validate"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    staging = out / f".staging-{uuid.uuid4().hex}"
    staging.mkdir()
    moment = pd.Timestamp(as_of) if as_of is not None else export_time
    # Lead-type levels are the company's quantiles over ALL finished trials: fitted
    # once on the driver (as the pandas path does), then carried in the spec.
    finished_fn = dask.delayed(partition_finished_trials, pure=True)
    finished = client.gather(client.compute([finished_fn(p, config, spec, moment) for p in parts]))
    levels = fit_persona_levels(
        pd.concat([f for f in finished if len(f)], ignore_index=True)
        if any(len(f) for f in finished)
        else pd.DataFrame(),
        config.personas.levels,
    )
    spec = replace(spec, persona_levels=levels.to_dict())
    build = dask.delayed(build_partition, pure=True)
    try:
        jobs = [
            build(
                p,
                i,
                config,
                spec,
                moment,
                export_time,
                str(staging),
                training_sets,
                dask_key_name=f"build-features-{i}",
            )
            for i, p in enumerate(parts)
        ]
        counts = client.gather(client.compute(jobs))
        rows = {name: sum(c[name] for c in counts) for name in OUTPUT_NAMES}
        if rows["account_features"] == 0:
            raise InputError("accounts: no account had started a trial by as_of")
        (staging / "feature_spec.json").write_text(spec.to_json())
        outputs: dict[str, Path] = {}
        for name in (*OUTPUT_NAMES, "feature_spec"):
            src = staging / ("feature_spec.json" if name == "feature_spec" else name)
            if not src.exists():
                continue
            dst = out / ("feature_spec.json" if name == "feature_spec" else f"{name}.parquet")
            replace_dir(src, dst)
            outputs[name] = dst
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        client.cancel(parts)
    seconds["build_and_write"] = time.perf_counter() - t0
    rows_in: dict[str, int] = {}
    rows_kept: dict[str, int] = {}
    for s in stats:
        for k, v in s.rows_in.items():
            rows_in[k] = rows_in.get(k, 0) + v
        for k, v in s.rows_kept.items():
            rows_kept[k] = rows_kept.get(k, 0) + v
    return DistributedFeatureResult(
        outputs=outputs,
        rows=rows,
        spec=spec,
        as_of=moment,
        export_time=export_time,
        n_partitions=n_partitions,
        n_events=sum(s.n_events for s in stats),
        rows_in=rows_in,
        rows_kept=rows_kept,
        seconds=seconds,
    )
