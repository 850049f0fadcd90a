"""The feature job: load and check the tables, build features and training sets, write them.

Reading and writing happen here, at the edge; every step it calls is a pure
function of its inputs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from features.build import FeatureBuilder
from features.config import CompanyConfig, ConfigError
from features.config_check import check_against_data, pql_rule_note
from features.event_index import NAT_SECONDS, SECONDS_PER_DAY, timestamp_seconds
from features.loaders import load_tables
from features.personas import (
    PersonaLevels,
    assign_personas,
    compute_pql,
    fit_persona_levels,
    persona_playbook,
)
from features.snapshots import build_churn_training_set, build_trial_training_set
from features.validation import ValidationReport

LIFECYCLE = ["trial", "deciding", "customer", "churned", "lost"]


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
    skipped_training_sets: dict[str, str] = field(default_factory=dict)
    leak_notes: list[str] = field(default_factory=list)
    pql_note: str = ""


def lifecycle_stage(builder: FeatureBuilder, positions: np.ndarray, moment: int) -> pd.Series:
    """Each account's lifecycle state at ``moment`` (seconds): ``trial`` (trial running),
    ``deciding`` (trial over, still inside the conversion window, inclusive at its
    end like the label: ``features.snapshots.converted_in_window``), ``customer``,
    ``churned`` or ``lost`` (window closed without converting)."""
    idx = builder.index
    window = builder.config.trial.conversion_window_days * SECONDS_PER_DAY
    conv = idx.converted_at[positions]
    churned = idx.churned_at[positions]
    converted = (conv != NAT_SECONDS) & (conv < moment)
    stage = np.select(
        [
            converted & (churned != NAT_SECONDS) & (churned < moment),
            converted,
            idx.trial_end[positions] > moment,
            idx.trial_end[positions] + window >= moment,  # inclusive, as the label
        ],
        ["churned", "customer", "trial", "deciding"],
        default="lost",
    )
    return pd.Series(pd.Categorical(stage, categories=LIFECYCLE), name="lifecycle")


def build_trial_view(builder: FeatureBuilder, as_of: pd.Timestamp) -> pd.DataFrame:
    """Every account that had started a trial by ``as_of``: features at ``as_of`` for
    running trials and at trial end for the rest, with the lifecycle state at ``as_of``
    (``build_account_view`` without the lead types)."""
    moment = timestamp_seconds(as_of)
    positions = np.flatnonzero(builder.index.trial_start < moment)
    cutoffs = np.minimum(builder.index.trial_end[positions], moment)
    frame = builder.build(positions, cutoffs)
    frame.insert(1, "lifecycle", lifecycle_stage(builder, positions, moment).to_numpy())
    return frame


def build_account_view(
    builder: FeatureBuilder, as_of: pd.Timestamp, *, levels: PersonaLevels | None = None
) -> pd.DataFrame:
    """Every account that had started a trial by ``as_of``, as its trial looked.

    Features are taken at ``as_of`` for trials still running and at trial end
    for the rest (the persona describes the trial), with the lifecycle state at
    ``as_of``, persona, playbook line and PQL flag. Lead-type levels are
    ``levels`` if given, else the builder's spec's (a model's), else fitted on the
    finished trials (the company's own quantiles, config pins winning); they are
    in ``frame.attrs["persona_levels"]``.
    """
    frame = build_trial_view(builder, as_of)
    if levels is None and builder.spec.persona_levels:  # a model's spec carries its levels
        levels = PersonaLevels.from_dict(builder.spec.persona_levels)
    if levels is None:
        finished = frame[frame["lifecycle"] != "trial"]
        levels = fit_persona_levels(finished, builder.config.personas.levels)
    frame.attrs["persona_levels"] = levels.to_dict()
    frame.insert(2, "persona", assign_personas(frame, levels))
    frame.insert(3, "playbook", persona_playbook(frame["persona"]))
    frame.insert(4, "pql", compute_pql(frame, builder.config))
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

    Raises:
        ConfigError: an event name or PQL feature of the config is not in the data.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    loaded = load_tables(config, show_progress=show_progress, quarantine_dir=out / "quarantine")
    seconds["load_and_validate"] = time.perf_counter() - t0
    tables = loaded.tables

    t0 = time.perf_counter()
    builder = FeatureBuilder.from_tables(tables, config)
    problems = check_against_data(config, builder)
    if problems:  # before any long work: a misspelled name would silently give zeros
        raise ConfigError(
            f"{len(problems)} config problem(s) against the data:\n"
            + "\n".join(f"  {p}" for p in problems)
        )
    moment = pd.Timestamp(as_of) if as_of is not None else tables.export_time()
    accounts = build_account_view(builder, moment)
    seconds["account_features"] = time.perf_counter() - t0

    outputs: dict[str, Path] = {}
    outputs["account_features"] = out / "account_features.parquet"
    accounts.to_parquet(outputs["account_features"])
    outputs["feature_spec"] = out / "feature_spec.json"
    spec = replace(builder.spec, persona_levels=accounts.attrs["persona_levels"])
    outputs["feature_spec"].write_text(spec.to_json())
    quarantine = loaded.report.write_quarantine(out / "quarantine")
    for path in quarantine:
        outputs[f"quarantine_{path.stem}"] = path

    sets: dict[str, pd.DataFrame] = {}
    skipped: dict[str, str] = {}
    if training_sets:
        t0 = time.perf_counter()
        builders = {"trial": build_trial_training_set, "churn": build_churn_training_set}
        for name, build_set in builders.items():
            try:
                sets[name] = build_set(builder, export_time=tables.export_time())
            except ValueError as exc:  # nothing labelled yet: say why, keep going
                skipped[name] = str(exc)
                continue
            outputs[f"{name}_training"] = out / f"{name}_training.parquet"
            sets[name].to_parquet(outputs[f"{name}_training"])
        seconds["training_sets"] = time.perf_counter() - t0
    return FeatureRunResult(
        report=loaded.report,
        accounts=accounts,
        trial_training=sets.get("trial"),
        churn_training=sets.get("churn"),
        skipped_training_sets=skipped,
        outputs=outputs,
        seconds=seconds,
        as_of=moment,
        n_events=builder.index.n_events,
        leak_notes=list(builder.spec.leak_notes),
        pql_note=pql_rule_note(config),
    )
