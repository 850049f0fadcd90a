"""The job behind ``trialcast funnel``: per signup cohort, motion and segment, how many
trials reached each stage, how fast, what changed, and what the champion expects.

It reads only the tables and model it is given, uses data known at ``as_of`` only
(events, messages and conversions strictly before it), writes the long table,
its metadata and picture to the funnel folder the service reads (and to
``out_file`` when given: CSV or Parquet by extension, the picture beside it),
and returns what it computed; it prints nothing.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from features.build import FeatureBuilder
from features.config import CompanyConfig
from features.funnel_segments import trial_segments
from features.funnel_stages import FunnelStage, funnel_stages, trial_stage_days
from features.funnel_table import funnel_table
from features.spec import FeatureSpec
from features.tables import Tables
from models.loader import LoadedModel
from serving.forecast.exports import write_atomic, write_csv, write_parquet
from serving.forecast.plots import save_png
from serving.funnel_data import META_FILE, PICTURE_FILE, TABLE_FILE, resolve_funnel_dir
from trialcast.funnel_expected import add_expected_paid, open_trial_chances
from trialcast.funnel_plot import plot_funnel

#: File endings ``--out`` accepts.
OUT_FORMATS = (".csv", ".parquet")


@dataclass
class FunnelRunResult:
    """What ``run_funnel`` computed and wrote.

    Attributes:
        table: the long table (``features.funnel_table.FUNNEL_COLUMNS`` plus the
            expected paid share columns).
        stages: the funnel's stages in order.
        as_of, by: the moment and the cohort period.
        model_version: the champion behind the expected paid share (None: none).
        outputs: name -> path of every file written.
        seconds: wall time per step.
    """

    table: pd.DataFrame
    stages: list[FunnelStage]
    as_of: pd.Timestamp
    by: str
    model_version: str | None
    outputs: dict[str, Path] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def check_out_file(path: Path | None) -> None:
    """Refuse an ``--out`` whose ending is neither ``.csv`` nor ``.parquet``."""
    if path is not None and path.suffix.lower() not in OUT_FORMATS:
        raise ValueError(
            f"--out {path}: the file must end in {' or '.join(OUT_FORMATS)} (the format follows it)"
        )


def _write(table: pd.DataFrame, path: Path) -> Path:
    return (
        write_parquet(table, path) if path.suffix.lower() == ".parquet" else write_csv(table, path)
    )


def write_funnel(
    result: FunnelRunResult, config: CompanyConfig, folder: Path, out_file: Path | None
) -> dict[str, Path]:
    """The table, metadata and picture into ``folder`` (and ``out_file`` + its PNG)."""
    meta = {
        "as_of": result.as_of.isoformat(),
        "by": result.by,
        "company": config.company,
        "model_version": result.model_version,
        "stages": [{"name": s.name, "kind": s.kind} for s in result.stages],
        "false_discovery_rate": config.funnel.false_discovery_rate,
        "baseline_cohorts": config.funnel.baseline_cohorts,
    }
    outputs = {"table": write_csv(result.table, folder / TABLE_FILE)}

    def write_meta(tmp: Path) -> None:
        tmp.write_text(json.dumps(meta, indent=2))

    outputs["meta"] = write_atomic(folder / META_FILE, write_meta)
    title = f"{config.company}: trial funnel as of {result.as_of:%Y-%m-%d}"
    outputs["picture"] = save_png(plot_funnel(result.table, title=title), folder / PICTURE_FILE)
    if out_file is not None:
        outputs["out"] = _write(result.table, out_file)
        outputs["out_picture"] = out_file.with_suffix(".png")
        outputs["out_picture"].write_bytes(outputs["picture"].read_bytes())
    return outputs


def run_funnel(
    config: CompanyConfig,
    tables: Tables,
    *,
    as_of: pd.Timestamp,
    by: str = "week",
    model: LoadedModel | None = None,
    folder: Path | None = None,
    out_file: Path | None = None,
) -> FunnelRunResult:
    """Compute the funnel at ``as_of`` and write it (see the module docstring).

    With ``model`` (the champion) the paid rows of cohorts still deciding carry the
    expected paid share and its P10-P90; features are then built with the
    champion's feature spec (the one it scores with).

    Raises:
        ConfigError: a ``[funnel]`` column is not in the accounts table.
        ValueError: ``by`` is not week / month, or ``out_file`` has another ending.
    """
    check_out_file(out_file)
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    if as_of < tables.export_time():  # nothing from at or after as_of may count
        from trialcast.backtest import truncate_tables  # (a heavy import, only when needed)

        tables = truncate_tables(tables, as_of)
    spec = FeatureSpec.from_json(model.model.spec_json) if model and model.model.spec_json else None
    builder = FeatureBuilder.from_tables(tables, config, spec)
    seconds["index"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    stages = funnel_stages(config, with_milestones=builder.index.n_events > 0)
    days = trial_stage_days(builder, as_of, stages)
    segments = trial_segments(tables, days, config, as_of)
    table = funnel_table(days, segments, stages, as_of=as_of, by=by, settings=config.funnel)
    seconds["funnel"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    chances = (
        open_trial_chances(builder, model.model, as_of)
        if model is not None
        else pd.Series(dtype=float)
    )
    table = add_expected_paid(table, days, segments, chances, by=by)
    seconds["expected"] = time.perf_counter() - t0
    version = f"{model.name} v{model.version}" if model is not None else None
    result = FunnelRunResult(table=table, stages=stages, as_of=as_of, by=by, model_version=version)
    t0 = time.perf_counter()
    result.outputs = write_funnel(result, config, folder or resolve_funnel_dir(), out_file)
    seconds["write"] = time.perf_counter() - t0
    result.seconds = seconds
    return result
