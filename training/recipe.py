"""The one recipe: fit and judge one model kind, the same on every path.

``train``, ``retrain``, the backtest and the Dask training job all call
``fit_kind``; only *where* the work runs differs (an ``Engine``: pandas on one
machine, ``training.dask_recipe`` on a cluster). The steps, in order:

1. enough labelled data (``check_enough_data``) and the small-data call;
2. the kind's split (by account in time order; churn out of time with purged
   label windows), each part with both classes;
3. the single-feature guard on the training part (and the feature-table checks),
   flagged features excluded unless forced;
4. LightGBM parameters (small-data mode regularises), optional tuning, the fit;
5. calibration (``calibrate``, a step of its own: ``training.calibration``,
   Platt plus an offset per trial phase, on the validation margins);
6. scoring the test part, baselines, metrics and the promotion gate's verdict.

The feature spec (leak scan, exclusions, top-K types) is fitted before the
validation cut by the caller that builds the training frame (``train.
build_training_sets`` on one machine, ``features.distributed`` on Dask).
Recording (MLflow run, registry, files) is a separate step (``train.
record_kind``). ``RECIPE_CALLS`` counts calls per path, so a test can prove
that every path goes through here.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from features.build import feature_columns
from features.spec import FeatureSpec
from models.kinds import ModelKind, model_kind
from models.phases import offsets_of
from training.baselines import (
    build_ceiling,
    build_persona_baseline,
    fit_logistic_baseline,
)
from training.calibration import fit_calibration, phase_inputs
from training.gate import GateResult, judge, snapshot_base_rates
from training.guards import (
    LeakageReport,
    NotEnoughDataError,
    check_base_rate,
    check_enough_data,
    check_split_classes,
    single_feature_auc,
)
from training.metrics import evaluate_models, log_loss
from training.model import (
    FitContext,
    Rounds,
    TrialcastModel,
    categorical_levels,
    fit_booster,
    wrap_booster,
)
from training.small_data import data_size, small_data_params
from training.split import Split, split_for_config
from training.train_results import FittedKind
from training.tune import TuneOptions, TuneResult, tune_params

log = logging.getLogger("trialcast.training")

#: Columns of a training set that identify or time a row; never model inputs.
ID_COLUMNS = ("account_id", "trial_start", "as_of", "snapshot", "snapshot_day", "label")
#: Columns ``Engine.labels`` returns when present (``snapshot``: the timing-only model;
#: the entry times: the data fingerprint's date range).
LABEL_COLUMNS = ("account_id", "label", "snapshot", "trial_start", "as_of")
#: Columns of the test part every engine brings back (plus ``p_model``).
SCORED_COLUMNS = ("account_id", "trial_start", "as_of", "snapshot", "snapshot_day", "label")

Progress = Callable[[str], None]

#: Calls of ``fit_kind`` per path (``RecipeOptions.path``): train, retrain, backtest, dask.
RECIPE_CALLS: Counter[str] = Counter()


def model_features(frame: pd.DataFrame, kind: str | ModelKind) -> list[str]:
    """Model input columns of a training set: features only, no ids, times or label."""
    declared = model_kind(kind)
    cols = feature_columns(frame, customer=declared.customer_features)
    keep = []
    for col in cols:
        if col in ID_COLUMNS:
            continue
        dtype = frame[col].dtype
        if (
            pd.api.types.is_numeric_dtype(dtype)
            or pd.api.types.is_bool_dtype(dtype)
            or isinstance(dtype, pd.CategoricalDtype)
            or pd.api.types.is_string_dtype(dtype)
        ) and not pd.api.types.is_datetime64_any_dtype(dtype):
            keep.append(col)
    return keep


def calibrate(
    model: TrialcastModel, margin: np.ndarray, y: np.ndarray, phases: np.ndarray | None
) -> TrialcastModel:
    """Calibrate ``model`` on validation margins (``training.calibration``: Platt plus
    an offset per trial phase when the model sees its phase); returns it."""
    return fit_calibration(np.asarray(margin), np.asarray(y), phases).apply(model)


def calibrated_probability(
    model: TrialcastModel, margin: np.ndarray, phases: np.ndarray | None
) -> np.ndarray:
    """The calibrated probability of rows given their margins and phases."""
    z = model.a * np.asarray(margin, dtype=np.float64) + model.b
    if phases is not None and model.phase_offsets:
        z = z + offsets_of(model.phase_offsets, phases)
    return np.asarray(1.0 / (1.0 + np.exp(-z)), dtype=np.float64)


@dataclass(frozen=True)
class RecipeOptions:
    """How one call of the recipe runs (not what it decides).

    Attributes:
        path: which path called (``train``, ``retrain``, ``backtest``, ``dask``).
        tune: run the Optuna search before the final fit (one machine only).
        force_features: flagged features to keep anyway.
        truth: the demo truth table (adds the ceiling to the metrics).
        show_progress: progress bars; progress: one-line status messages.
    """

    path: str = "train"
    tune: bool = False
    force_features: tuple[str, ...] = ()
    truth: pd.DataFrame | None = None
    show_progress: bool = False
    progress: Progress | None = None


@dataclass
class Parts:
    """The three parts of a training frame (pandas or Dask) and the split behind them."""

    split: Split
    train: Any
    valid: Any
    test: Any


class Engine(Protocol):
    """Where the recipe's heavy steps run (one machine or a cluster)."""

    name: str

    def labels(self, frame: Any) -> pd.DataFrame:
        """``account_id``, ``label`` and (when present) ``snapshot`` of every row (small)."""

    def columns(self, frame: Any) -> pd.DataFrame:
        """An empty frame with ``frame``'s columns and dtypes."""

    def split(self, frame: Any, kind: ModelKind, config: Any) -> Parts:
        """The kind's split into train / valid / test."""

    def feature_aucs(self, train: Any, features: list[str]) -> dict[str, float]:
        """Single-feature ROC AUC (``max(auc, 1 - auc)``) of each feature on ``train``."""

    def fit(
        self, parts: Parts, features: list[str], params: dict[str, Any], ctx: FitContext
    ) -> TrialcastModel:
        """An uncalibrated model (``wrap_booster``) fitted on train, stopped on valid."""

    def margins(
        self, model: TrialcastModel, part: Any
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Raw margins, labels and trial phases (None: the model cannot see its phase)
        of ``part`` (for calibration)."""

    def scored(self, model: TrialcastModel, part: Any) -> pd.DataFrame:
        """The part's rows (at least ``SCORED_COLUMNS`` present) with ``p_model``."""

    def sample(self, part: Any, n: int) -> pd.DataFrame:
        """Up to ``n`` rows of ``part`` as pandas (SHAP on a probable leak)."""


class LocalEngine:
    """The recipe's steps on pandas frames, on this machine."""

    name = "local"

    def labels(self, frame: pd.DataFrame) -> pd.DataFrame:
        return frame[[c for c in LABEL_COLUMNS if c in frame.columns]]

    def columns(self, frame: pd.DataFrame) -> pd.DataFrame:
        return frame.iloc[:0]

    def split(self, frame: pd.DataFrame, kind: ModelKind, config: Any) -> Parts:
        split = split_for_config(frame, kind.name, config)
        train, valid, test = split.frames(frame)
        return Parts(split, train, valid, test)

    def feature_aucs(self, train: pd.DataFrame, features: list[str]) -> dict[str, float]:
        y = train["label"].to_numpy()
        return {name: single_feature_auc(train[name], y) for name in features}

    def fit(
        self, parts: Parts, features: list[str], params: dict[str, Any], ctx: FitContext
    ) -> TrialcastModel:
        categories = categorical_levels(parts.train, features)
        booster = fit_booster(
            parts.train,
            parts.valid,
            features,
            params,
            categories=categories,
            rounds=ctx.rounds,
        )
        return wrap_booster(
            booster,
            features=features,
            categories=categories,
            kind=ctx.kind,
            spec_json=ctx.spec_json,
            params=params,
        )

    def margins(
        self, model: TrialcastModel, part: pd.DataFrame
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        return model.margin(part), part["label"].to_numpy(), phase_inputs(model, part)

    def scored(self, model: TrialcastModel, part: pd.DataFrame) -> pd.DataFrame:
        out = part.copy()
        out["p_model"] = model.predict_proba(part)
        return out

    def sample(self, part: pd.DataFrame, n: int) -> pd.DataFrame:
        return part.head(n)


LOCAL = LocalEngine()


def _say(progress: Progress | None, message: str) -> None:
    log.info(message)
    if progress is not None:
        progress(message)


def guard_features(
    engine: Engine, train: Any, features: list[str], *, threshold: float, forced: tuple[str, ...]
) -> LeakageReport:
    """The single-feature guard: features whose AUC alone exceeds ``threshold`` are
    excluded unless forced (``training.guards.check_leakage``, on any engine)."""
    aucs = engine.feature_aucs(train, features)
    flagged = {name: auc for name, auc in aucs.items() if auc > threshold}
    excluded = [f for f in flagged if f not in set(forced)]
    return LeakageReport(
        flagged=flagged, excluded=excluded, kept=[f for f in features if f not in excluded]
    )


def _baselines(
    test: pd.DataFrame,
    train: Any,
    kept: list[str],
    *,
    train_labels: pd.DataFrame,
    kind: ModelKind,
    spec_json: str,
    truth: pd.DataFrame | None,
) -> dict[str, str]:
    """Add the baseline probability columns to ``test``; returns name -> column."""
    prob_cols = {"model": "p_model"}
    if isinstance(train, pd.DataFrame):  # the fitted baselines need the training rows
        test["p_logistic"] = fit_logistic_baseline(train, kept).predict_proba(test)
        prob_cols["logistic"] = "p_logistic"
        if kind.persona_baseline:
            from features.personas import PersonaLevels

            levels = PersonaLevels.from_dict(
                FeatureSpec.from_json(spec_json).persona_levels if spec_json else None
            )
            test["p_persona"] = build_persona_baseline(train, test, levels)
            prob_cols["persona"] = "p_persona"
    timing = snapshot_base_rates(train_labels, test)
    if timing is not None:
        test["p_snapshot_rate"] = timing
        prob_cols["snapshot_rate"] = "p_snapshot_rate"
    if truth is not None:
        test["p_ceiling"] = build_ceiling(test, truth, kind.name)
        prob_cols["ceiling"] = "p_ceiling"
    return prob_cols


def fit_kind(
    config: Any,
    frame: Any,
    kind: str | ModelKind,
    *,
    spec_json: str = "",
    options: RecipeOptions = RecipeOptions(),
    engine: Engine = LOCAL,
) -> FittedKind:
    """Fit and judge one model kind on its labelled training frame (no recording).

    Args:
        config: the company config (``[model]``, ``[promotion]``, ``[leakage]``).
        frame: the kind's labelled snapshots (pandas, or Dask with a Dask engine),
            built with a feature spec fitted before the validation cut.
        kind: the model kind (name or ``ModelKind``).
        spec_json: that feature spec (travels with the model).
        options: which path calls, tuning, forced features, truth, progress.
        engine: where the work runs (``LOCAL`` or ``training.dask_recipe.DaskEngine``).

    Returns:
        The fitted, calibrated model with its parts, metrics, guards and verdict.

    Raises:
        NotEnoughDataError: too few rows / positives, or a split part with one class.
    """
    RECIPE_CALLS[options.path] += 1
    declared = model_kind(kind)
    name = declared.name
    started = time.perf_counter()
    cfg = config.model
    progress = options.progress
    labels = engine.labels(frame)
    check_enough_data(labels, name, min_positives=cfg.min_positives)
    size = data_size(config, labels, name)
    _say(progress, size.message())
    try:
        parts = engine.split(frame, declared, config)
    except ValueError as exc:
        raise NotEnoughDataError(f"{name} model: {exc}") from exc
    for part_name, part in (
        ("train", parts.train),
        ("validation", parts.valid),
        ("test", parts.test),
    ):
        check_split_classes(engine.labels(part), name, part_name)

    columns = engine.columns(frame)
    features = model_features(columns, declared)
    forced = tuple(options.force_features)
    unknown = [f for f in forced if f not in columns.columns]
    if unknown:
        log.warning("forced feature(s) %s are not in the %s training set", unknown, name)
    features += [f for f in forced if f in columns.columns and f not in features]
    leakage = guard_features(
        engine, parts.train, features, threshold=cfg.leakage_auc, forced=forced
    )
    if isinstance(parts.train, pd.DataFrame):
        from training.train import add_table_leaks

        leakage = add_table_leaks(leakage, parts.train, forced)
    if leakage.flagged:
        _say(progress, leakage.message())

    params: dict[str, Any] = dict(cfg.lightgbm)
    if size.small:
        params = small_data_params(params)
    tuning: TuneResult | None = None
    if options.tune and isinstance(parts.train, pd.DataFrame):
        _say(progress, f"{name}: tuning LightGBM ({cfg.tune_trials} Optuna trials)...")
        tuning = tune_params(
            parts.train,
            parts.valid,
            leakage.kept,
            params,
            categories=categorical_levels(parts.train, leakage.kept),
            search=TuneOptions(
                n_trials=cfg.tune_trials,
                seed=int(params.get("seed", 0)),
                show_progress=options.show_progress,
            ),
            rounds=Rounds.of(cfg),
        )
        params = tuning.params
        _say(progress, f"{name}: best validation log loss {tuning.best_log_loss:.4f}")

    _say(progress, f"{name}: fitting on {len(labels):,} rows, {len(leakage.kept)} features...")
    ctx = FitContext(name, spec_json, Rounds.of(cfg))
    model = engine.fit(parts, leakage.kept, params, ctx)
    margin, y_valid, phases = engine.margins(model, parts.valid)
    model = calibrate(model, margin, y_valid, phases)
    valid_ll = log_loss(y_valid, calibrated_probability(model, margin, phases))

    test = engine.scored(model, parts.test)
    train_labels = engine.labels(parts.train)
    train_rate = float(train_labels["label"].mean())
    # The timing-only model sees what the model saw, calibration included: the
    # training and validation parts (per-phase calibration is fitted on validation).
    seen = pd.concat([train_labels, engine.labels(parts.valid)], ignore_index=True)
    prob_cols = _baselines(
        test,
        parts.train,
        leakage.kept,
        train_labels=seen,
        kind=declared,
        spec_json=spec_json,
        truth=options.truth,
    )
    test["p_base_rate"] = np.full(len(test), train_rate)
    prob_cols["base_rate"] = "p_base_rate"
    metrics = evaluate_models(test, prob_cols, min_rows=config.promotion.min_segment_rows)
    base = check_base_rate(test["label"], test["p_model"], train_rate)
    gate = judge_scored(config, model, test, train_rate, engine=engine, test_part=parts.test)
    return FittedKind(
        kind=name,
        model=model,
        split=parts.split,
        fingerprint_frame=frame if isinstance(frame, pd.DataFrame) else labels,
        train=parts.train,
        test=test,
        prob_cols=prob_cols,
        metrics=metrics,
        leakage=leakage,
        base_rate=base,
        valid_log_loss=valid_ll,
        tuning=tuning,
        seconds=time.perf_counter() - started,
        gate=gate,
        engine=engine.name,
        small_data=size.small,
        valid=parts.valid,
    )


def judge_scored(
    config: Any,
    model: TrialcastModel,
    test: pd.DataFrame,
    train_rate: float,
    *,
    engine: Engine = LOCAL,
    test_part: Any = None,
    p_champion: np.ndarray | None = None,
    known: GateResult | None = None,
) -> GateResult:
    """The gate's verdict on scored test rows (``p_model``); mean |SHAP| on up to
    2,000 test rows names the features of a probable leak (computed only then).
    ``known``: the verdict on the same rows without the champion (see ``judge``)."""
    source = test if test_part is None else test_part
    return judge(
        config,
        test,
        test["p_model"].to_numpy(),
        train_rate=train_rate,
        p_champion=p_champion,
        p_timing=test["p_snapshot_rate"].to_numpy() if "p_snapshot_rate" in test else None,
        importance=lambda: model.contributions(engine.sample(source, 2000)).values.abs().mean(),
        known=known,
    )
