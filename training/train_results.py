"""What a training job returns: the training sets, each fitted model and its fate.

Plain records, no behaviour beyond reading them: ``training.train`` fills them,
the CLI summaries, the retrain job and the tests read them (``summary_table``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from features.spec import FeatureSpec
from models.kinds import model_kind
from training.gate import GateResult
from training.guards import BaseRateCheck, LeakageReport
from training.metrics import METRICS
from training.model import TrialcastModel
from training.registry import PromotionResult
from training.split import Split
from training.tune import TuneResult


@dataclass
class TrainingSets:
    """Labelled training frames (either may be missing) and the spec they were built with;
    ``path`` names the path that built them (``train``, ``retrain``) for the recipe."""

    conversion: pd.DataFrame | None
    churn: pd.DataFrame | None
    spec: FeatureSpec | None = None
    refused: dict[str, str] = field(default_factory=dict)
    path: str = "train"

    def frame(self, kind: str) -> pd.DataFrame | None:
        frame: pd.DataFrame | None = getattr(self, model_kind(kind).name)
        return frame


@dataclass
class FittedKind:
    """One model fitted and judged on its test part (nothing logged yet): the report of
    ``training.recipe.fit_kind``. ``train`` and ``valid`` are pandas or Dask parts
    (``engine`` says which); ``test`` is always pandas, with ``p_model``."""

    kind: str
    model: TrialcastModel
    split: Split
    fingerprint_frame: pd.DataFrame
    train: pd.DataFrame
    test: pd.DataFrame
    prob_cols: dict[str, str]
    metrics: pd.DataFrame
    leakage: LeakageReport
    base_rate: BaseRateCheck
    valid_log_loss: float
    tuning: TuneResult | None
    seconds: float
    gate: GateResult | None = None
    engine: str = "local"
    small_data: bool = False
    valid: Any = None


@dataclass
class ModelOutcome:
    """What happened to one model kind in a training job.

    Attributes:
        kind: ``"conversion"`` or ``"churn"``.
        model: the fitted, calibrated model.
        metrics: tidy test metrics of the model and baselines (``model``, ``segment``...).
        leakage: flagged / excluded features.
        base_rate: the base-rate check (``beats`` False means never promoted).
        split_sizes: rows per train / valid / test.
        run_id: the MLflow run.
        registered_name, version: the registry entry (alias ``challenger``).
        beats_champion: vs the champion on the same holdout (None: no champion).
        gate: the verdict (``promoted``, ``no lift found``, ``too little data``,
            ``probable leak``) and its evidence.
        predictions_path: the held-out predictions Parquet (``account_id,
            snapshot, as_of, p, label``), also logged to the MLflow run.
        promotion: the automatic promotion attempt (None when a champion existed).
        seconds: wall time of fit + evaluation (without logging).
    """

    kind: str
    model: TrialcastModel
    metrics: pd.DataFrame
    leakage: LeakageReport
    base_rate: BaseRateCheck
    split_sizes: dict[str, int]
    run_id: str
    registered_name: str
    version: str
    beats_champion: bool | None
    promotion: PromotionResult | None
    seconds: float
    tuning: TuneResult | None = None
    gate: GateResult | None = None
    predictions_path: Path | None = None


@dataclass
class TrainResult:
    """Outcome of ``train_models``.

    Attributes:
        tracking_uri: where runs were logged.
        experiment_id: the MLflow experiment.
        models: kind -> outcome, for the kinds that trained.
        refused: kind -> message, for the kinds refused (too little data).
        seconds: wall time per step (``features``, ``conversion``, ``churn``, ``total``).
        persona_rates: each lead type's observed conversion in the training window
            beside its stated chance (``training.persona_rates``); None without
            a conversion training set.
    """

    tracking_uri: str
    experiment_id: str
    models: dict[str, ModelOutcome]
    refused: dict[str, str]
    seconds: dict[str, float]
    persona_rates: pd.DataFrame | None = None


def summary_table(result: TrainResult, segments: tuple[str, ...] = ("all",)) -> pd.DataFrame:
    """Key test metrics of every model kind and baseline (for printing)."""
    parts = []
    for kind, outcome in result.models.items():
        table = outcome.metrics[outcome.metrics["segment"].isin(segments)].copy()
        table.insert(0, "kind", kind)
        parts.append(table)
    if not parts:
        return pd.DataFrame()
    cols = [
        "kind",
        "model",
        "segment",
        "n",
        "rate",
        *METRICS,
    ]
    return pd.concat(parts, ignore_index=True)[cols]
