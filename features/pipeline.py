"""The feature job: load and check the tables, build features and training sets, write them.

Reading and writing happen here, at the edge; every step it calls is a pure
function of its inputs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from features.build import FeatureBuilder
from features.config import CompanyConfig
from features.loaders import load_tables
from features.personas import assign_personas, compute_pql, persona_playbook
from features.snapshots import build_churn_training_set, build_trial_training_set
from features.validation import ValidationReport


@dataclass
class FeatureRunResult:
    """What the feature job produced and where it wrote it."""

    report: ValidationReport
    accounts: pd.DataFrame
    trial_training: pd.DataFrame | None
    churn_training: pd.DataFrame | None
    outputs: dict[str, Path] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    as_of: pd.Timestamp | None = None
    n_events: int = 0


def build_account_view(builder: FeatureBuilder, as_of: pd.Timestamp) -> pd.DataFrame:
    """Every account's features at ``as_of`` with its persona, playbook line and PQL flag."""
    seconds = int(pd.Timestamp(as_of).value // 1_000_000_000)
    positions = np.flatnonzero(builder.index.trial_start < seconds)
    frame = builder.build(positions, np.full(len(positions), seconds, dtype=np.int64))
    frame.insert(1, "persona", assign_personas(frame))
    frame.insert(2, "playbook", persona_playbook(frame["persona"]))
    frame.insert(3, "pql", compute_pql(frame, builder.config))
    return frame


def run_feature_pipeline(
    config: CompanyConfig,
    out_dir: str | Path,
    *,
    as_of: pd.Timestamp | None = None,
    training_sets: bool = True,
    show_progress: bool = False,
) -> FeatureRunResult:
    """Load, validate, build account features at ``as_of`` and the training sets.

    Writes ``account_features.parquet``, ``trial_training.parquet``,
    ``churn_training.parquet``, ``feature_spec.json`` and the quarantine files to
    ``out_dir``. ``as_of`` defaults to the export time (latest event).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    loaded = load_tables(config, show_progress=show_progress)
    seconds["load_and_validate"] = time.perf_counter() - t0
    tables = loaded.tables

    t0 = time.perf_counter()
    builder = FeatureBuilder.from_tables(tables, config)
    moment = pd.Timestamp(as_of) if as_of is not None else tables.export_time()
    accounts = build_account_view(builder, moment)
    seconds["account_features"] = time.perf_counter() - t0

    outputs: dict[str, Path] = {}
    outputs["account_features"] = out / "account_features.parquet"
    accounts.to_parquet(outputs["account_features"])
    outputs["feature_spec"] = out / "feature_spec.json"
    outputs["feature_spec"].write_text(builder.spec.to_json())
    quarantine = loaded.report.write_quarantine(out / "quarantine")
    for path in quarantine:
        outputs[f"quarantine_{path.stem}"] = path

    trial = churn = None
    if training_sets:
        t0 = time.perf_counter()
        try:
            trial = build_trial_training_set(builder, export_time=tables.export_time())
            outputs["trial_training"] = out / "trial_training.parquet"
            trial.to_parquet(outputs["trial_training"])
        except ValueError:
            trial = None
        try:
            churn = build_churn_training_set(builder, export_time=tables.export_time())
            outputs["churn_training"] = out / "churn_training.parquet"
            churn.to_parquet(outputs["churn_training"])
        except ValueError:
            churn = None
        seconds["training_sets"] = time.perf_counter() - t0
    return FeatureRunResult(
        report=loaded.report,
        accounts=accounts,
        trial_training=trial,
        churn_training=churn,
        outputs=outputs,
        seconds=seconds,
        as_of=moment,
        n_events=builder.index.n_events,
    )
