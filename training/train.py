"""The training job: training sets -> split -> guards -> fit -> evaluate -> log -> register.

``train_models`` trains the conversion model (one model for every snapshot day;
``trial_days_elapsed`` tells it where in the trial a row is) and the churn model
(trial features plus the paying-customer columns), judges each on the newest
cohorts against the baselines (persona heuristic, logistic regression, base rate,
and on demo data the true-probability ceiling), logs everything to MLflow,
registers the model with the ``challenger`` alias, and makes it ``champion`` when
there is none yet and it beats the base rate.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from features.build import FeatureBuilder
from features.config import CompanyConfig
from features.personas import fit_persona_levels
from features.spec_stats import point_in_time_spec
from features.tables import Tables
from models.kinds import KINDS as MODEL_KINDS
from models.kinds import model_kind
from training.gate import write_heldout_predictions
from training.guards import LeakageReport, NotEnoughDataError
from training.metrics import evaluate_models, log_loss
from training.persona_rates import (
    compute_observed_persona_rates,
    last_snapshot_rows,
    rates_to_dict,
    rates_to_metrics,
)
from training.recipe import RecipeOptions, fit_kind, judge_scored
from training.registry import (
    CHAMPION,
    load_model_version,
    register_version,
    registered_name,
    set_champion,
    version_by_alias,
)
from training.settings import (
    MODELS_DIR,
    output_root,
    resolve_artifact_location,
    resolve_tracking_uri,
)
from training.tracking import (
    RunRecord,
    cyclic_gc_paused,
    data_fingerprint,
    explain_ahead,
    get_or_create_experiment,
    git_commit,
    log_training_run,
    use_tracking_uri,
)
from training.train_results import FittedKind, ModelOutcome, TrainingSets, TrainResult

log = logging.getLogger("trialcast.training")

KINDS = tuple(MODEL_KINDS)
Progress = Callable[[str], None]


def point_in_time_builder(
    config: CompanyConfig, tables: Tables, export_time: pd.Timestamp | None = None
) -> FeatureBuilder:
    """An indexed builder whose feature spec (leak scan, exclusions, top-K types,
    levels) was fitted only on trials that started before the time split's
    validation cohorts (``training.small_data.spec_cutoff``): what ``train``,
    ``retrain`` and the backtest build their training sets with."""
    return FeatureBuilder.from_tables(
        tables, config, point_in_time_spec(tables, config, export_time)
    )


def build_training_sets(
    config: CompanyConfig,
    data: Tables | FeatureBuilder | TrainingSets,
    *,
    kinds: tuple[str, ...] = KINDS,
    export_time: pd.Timestamp | None = None,
) -> TrainingSets:
    """The labelled training frames from tables, an indexed builder, or as given.

    From tables, the feature spec is fitted on trials that started before the
    time split's validation cohorts only (``training.small_data.spec_cutoff``).
    A kind with nothing to train on is recorded in ``refused`` with the reason.
    """
    if isinstance(data, TrainingSets):
        return data
    if isinstance(data, FeatureBuilder):
        builder = data
    else:
        builder = point_in_time_builder(config, data, export_time)
    sets = TrainingSets(conversion=None, churn=None, spec=builder.spec)
    for kind in kinds:
        declared = model_kind(kind)
        try:
            frame = declared.training_set(builder, export_time=export_time)
        except ValueError as exc:
            sets.refused[kind] = f"{kind} model: {exc}"
            continue
        setattr(sets, declared.name, frame)
    return sets


def _say(progress: Progress | None, message: str) -> None:
    log.info(message)
    if progress is not None:
        progress(message)


def fit_and_evaluate(
    config: CompanyConfig,
    frame: pd.DataFrame,
    kind: str,
    *,
    spec_json: str = "",
    tune: bool = False,
    force_features: tuple[str, ...] | list[str] = (),
    truth: pd.DataFrame | None = None,
    progress: Progress | None = None,
) -> FittedKind:
    """The recipe (``training.recipe.fit_kind``) on one machine, called from ``train``.

    Raises:
        NotEnoughDataError: too few rows / positives, or a split part with one class.
    """
    options = RecipeOptions(
        path="train",
        tune=tune,
        force_features=tuple(force_features),
        truth=truth,
        progress=progress,
    )
    return fit_kind(config, frame, kind, spec_json=spec_json, options=options)


def add_table_leaks(
    leakage: LeakageReport, train: pd.DataFrame, force_features: tuple[str, ...] | list[str]
) -> LeakageReport:
    """Add the feature-table checks (label-like names, outcome-driven missingness).

    ``features.table_leaks`` flags columns of a company feature table that the
    single-feature AUC check may miss; flagged columns are excluded unless forced,
    and listed in the leakage report with what was measured.
    """
    from features.feature_table import PREFIX
    from features.table_leaks import check_table_leaks
    from training.guards import single_feature_auc

    columns = [c for c in leakage.kept if c.startswith(PREFIX)]
    if not columns:
        return leakage
    leaks = [x for x in check_table_leaks(train, columns) if x.column not in force_features]
    if not leaks:
        return leakage
    for leak in leaks:
        log.warning(leak.message())
    flagged = {**leakage.flagged}
    y = train["label"].to_numpy()
    for leak in leaks:
        flagged.setdefault(leak.column, single_feature_auc(train[leak.column], y))
    excluded = [*leakage.excluded, *(x.column for x in leaks if x.column not in leakage.excluded)]
    kept = [c for c in leakage.kept if c not in excluded]
    return LeakageReport(flagged=flagged, excluded=excluded, kept=kept)


def _compare_with_champion(
    client: Any, name: str, fitted: FittedKind, min_gain: float
) -> tuple[bool | None, dict[str, str]]:
    """Score the current champion on the challenger's test part; add it to the metrics."""
    champion_version = version_by_alias(client, name, CHAMPION)
    if champion_version is None:
        return None, {}
    try:
        champion = load_model_version(client, name, CHAMPION)
        p = champion.predict_proba(fitted.test)
    except (KeyError, ValueError, OSError) as exc:
        log.warning("champion of %s could not score the new test part: %s", name, exc)
        return None, {
            "compared_champion_version": champion_version.version,
            "beats_champion": "unknown",
        }
    fitted.test["p_champion"] = p
    fitted.prob_cols["champion"] = "p_champion"
    fitted.metrics = pd.concat(
        [fitted.metrics, evaluate_models(fitted.test, {"champion": "p_champion"})],
        ignore_index=True,
    )
    challenger_ll = fitted.base_rate.model_log_loss
    champion_ll = log_loss(fitted.test["label"], p)
    gain = champion_ll - challenger_ll
    beats = bool(gain > 0 and gain >= min_gain)
    return beats, {
        "compared_champion_version": str(champion_version.version),
        "champion_test_log_loss": f"{champion_ll:.6f}",
        "beats_champion": str(beats).lower(),
    }


def _record(
    fitted: FittedKind,
    config: CompanyConfig,
    *,
    tags: dict[str, str],
) -> RunRecord:
    model = fitted.model
    params: dict[str, Any] = {
        **{f"lgb_{k}": v for k, v in model.params.items()},
        "kind": fitted.kind,
        "num_boost_round": config.model.num_boost_round,
        "early_stopping_rounds": config.model.early_stopping_rounds,
        "best_iteration": model.best_iteration,
        "valid_fraction": config.model.valid_fraction,
        "test_fraction": config.model.test_fraction,
        "n_features": len(model.features),
        "leakage_auc": config.model.leakage_auc,
        "excluded_features": ",".join(fitted.leakage.excluded) or "none",
        "tuned": fitted.tuning is not None,
    }
    extra = {
        "platt_a": model.a,
        "platt_b": model.b,
        "valid_log_loss": fitted.valid_log_loss,
        "test_base_rate_log_loss": fitted.base_rate.base_log_loss,
        "fit_seconds": fitted.seconds,
    }
    if fitted.tuning is not None:
        extra["tune_best_valid_log_loss_raw"] = fitted.tuning.best_log_loss
    return RunRecord(
        kind=fitted.kind,
        model=model,
        params=params,
        metrics=fitted.metrics,
        extra_metrics=extra,
        tags=tags,
        fingerprint=data_fingerprint(fitted.fingerprint_frame, fitted.split, fitted.kind),
        test_predictions=fitted.test,
        prob_cols=fitted.prob_cols,
        example=fitted.test.head(5),
        documents={
            "leakage.json": {
                "flagged": fitted.leakage.flagged,
                "excluded": fitted.leakage.excluded,
            }
        },
    )


def data_as_of(data: object, export_time: pd.Timestamp | None) -> str:
    """The data's "now" a model was trained at (ISO), read back by ``trialcast monitor``."""
    if export_time is not None:
        return pd.Timestamp(export_time).isoformat()
    tables = data.tables if isinstance(data, FeatureBuilder) else data
    return tables.export_time().isoformat() if isinstance(tables, Tables) else "unknown"


def train_models(
    config: CompanyConfig,
    data: Tables | FeatureBuilder | TrainingSets,
    *,
    kinds: tuple[str, ...] = KINDS,
    export_time: pd.Timestamp | None = None,
    options: RecipeOptions | None = None,
    target: RecordTarget | None = None,
) -> TrainResult:
    """Train, evaluate, log and register the conversion and churn models.

    Each kind goes through the one recipe (``training.recipe.fit_kind``), then
    ``record_fitted`` logs and registers it.

    Args:
        config: the company config (``[model]``, ``[registry]``).
        data: tables, an indexed ``FeatureBuilder``, or prebuilt ``TrainingSets``.
        kinds: which models to train.
        export_time: "now" of the data (default: the latest event).
        options: how the recipe runs: ``tune`` (the Optuna search,
            ``[model].tune_trials``, before the final fit), ``force_features``
            (flagged-as-leaky features to keep anyway), ``truth`` (the demo truth
            table: the "ceiling" rows of the metrics), ``show_progress`` (Optuna
            progress bars) and ``progress`` (called with one-line status
            messages). Its ``path`` is set here: ``train``, or the path of
            prebuilt ``TrainingSets``.
        target: where the models are recorded: ``tracking_uri`` (else env /
            config / default SQLite), ``project_dir`` (the output root of the
            default store) and ``predictions_dir`` (held-out predictions, default
            ``<output root>/models/predictions``); its other fields are set here.

    Returns:
        Per kind, the model, its metrics, registry version and promotion outcome;
        refused kinds with their messages.

    Raises:
        NotEnoughDataError: when every requested kind was refused.
    """
    options = replace(
        options or RecipeOptions(),
        path="train" if not isinstance(data, TrainingSets) else data.path,
    )
    progress = options.progress
    started = time.perf_counter()
    target = target or RecordTarget()
    _say(progress, "building training sets...")
    sets = build_training_sets(config, data, kinds=kinds, export_time=export_time)
    if sets.spec is not None and sets.spec.table_as_of is False and sets.spec.table_columns:
        from features.feature_table import TRIAL_END_ONLY_NOTE

        _say(progress, f"conversion: {TRIAL_END_ONLY_NOTE}")
    features_seconds = time.perf_counter() - started
    persona_rates = None
    if sets.spec is not None and sets.conversion is not None:
        # Lead-type levels and observed chances from the training window's trials;
        # both travel with the models in the feature spec.
        levels = fit_persona_levels(last_snapshot_rows(sets.conversion), config.personas.levels)
        persona_rates = compute_observed_persona_rates(sets.conversion, levels)
        sets.spec = replace(
            sets.spec,
            persona_levels=levels.to_dict(),
            persona_rates=rates_to_dict(persona_rates),
        )
    spec_json = sets.spec.to_json() if sets.spec is not None else ""
    refused = {k: v for k, v in sets.refused.items() if k in kinds}

    fitted: dict[str, FittedKind] = {}
    for kind in kinds:
        frame = sets.frame(kind)
        if frame is None:
            continue
        try:
            fitted[kind] = fit_kind(config, frame, kind, spec_json=spec_json, options=options)
        except NotEnoughDataError as exc:
            refused[kind] = str(exc)
            _say(progress, f"refused: {exc}")
    if not fitted:
        raise NotEnoughDataError("\n".join(refused.values()) or "nothing to train")
    target = replace(
        target,
        tuned=options.tune,
        persona_rates=persona_rates,
        extra_tags={**target.extra_tags, "trialcast.as_of": data_as_of(data, export_time)},
    )
    result = record_fitted(config, fitted, target, progress=progress)
    result.refused = refused
    result.seconds = {
        "features": features_seconds,
        **{kind: (fitted[kind].seconds if kind in fitted else 0.0) for kind in kinds},
        "logging": result.seconds.get("logging", 0.0),
        "total": time.perf_counter() - started,
    }
    return result


@dataclass(frozen=True)
class RecordTarget:
    """Where ``record_fitted`` writes: the MLflow store, the project, the predictions.

    Attributes:
        tracking_uri: MLflow tracking URI (else env / config / default SQLite).
        project_dir: where ``models/`` lives for the default store (default: cwd).
        predictions_dir: held-out predictions folder (default ``<project>/models/predictions``).
        tuned: whether the models were tuned (a tag).
        persona_rates: observed lead-type rates (logged with the conversion model).
        extra_tags: more tags on every run and version (e.g. the Dask engine).
    """

    tracking_uri: str | None = None
    project_dir: str | Path | None = None
    predictions_dir: str | Path | None = None
    tuned: bool = False
    persona_rates: pd.DataFrame | None = None
    extra_tags: dict[str, str] = field(default_factory=dict)


def record_fitted(
    config: CompanyConfig,
    fitted: dict[str, FittedKind],
    target: RecordTarget,
    *,
    progress: Progress | None = None,
) -> TrainResult:
    """Record fitted kinds: compare with the champion, log the MLflow run, register the
    version with its verdict, write the held-out predictions, promote a first champion.

    The verdict (``training.gate``) is the only judgement recorded; ``challenger``
    moves only to a version that is not a probable leak (``training.registry``).
    Python's cyclic garbage collector is paused meanwhile (``cyclic_gc_paused``).
    """
    started = time.perf_counter()
    project = Path(target.project_dir).resolve() if target.project_dir is not None else None
    uri = resolve_tracking_uri(config, target.tracking_uri, project_dir=project)
    predictions_root = (
        Path(target.predictions_dir)
        if target.predictions_dir is not None
        else output_root(project) / MODELS_DIR / "predictions"
    )
    outcomes: dict[str, ModelOutcome] = {}
    train_id = uuid.uuid4().hex[:12]
    commit = git_commit(project)
    tests = {kind: (fit.model, fit.test) for kind, fit in fitted.items()}
    with (
        cyclic_gc_paused(),
        explain_ahead(tests) as explained,  # the SHAP plots' values, on the other core
        use_tracking_uri(uri) as client,
    ):
        experiment_id = get_or_create_experiment(
            client,
            config.registry.experiment,
            resolve_artifact_location(uri, project_dir=project),
        )
        for kind, fit in fitted.items():
            name = registered_name(config, kind)
            beats_champion, champion_tags = _compare_with_champion(
                client, name, fit, config.model.promote_min_logloss_gain
            )
            if "p_champion" in fit.test.columns:
                fit.gate = judge_scored(
                    config,
                    fit.model,
                    fit.test,
                    fit.gate.train_rate if fit.gate is not None else fit.base_rate.base_rate,
                    p_champion=fit.test["p_champion"].to_numpy(),
                    known=fit.gate,
                )
            gate = fit.gate
            assert gate is not None  # the recipe always judges
            _say(progress, gate.message(kind))
            tags = {
                "trialcast.kind": kind,
                "trialcast.train_id": train_id,
                "trialcast.engine": fit.engine,
                "config_hash": config.config_hash(),
                "company": config.company,
                "git_commit": commit,
                "test_log_loss": f"{fit.base_rate.model_log_loss:.6f}",
                "base_rate_log_loss": f"{fit.base_rate.base_log_loss:.6f}",
                "leak_excluded": ",".join(fit.leakage.excluded) or "none",
                "tuned": str(target.tuned).lower(),
                **champion_tags,
                **gate.tags(),
                "small_data": str(fit.small_data).lower(),
                **target.extra_tags,
            }
            _say(progress, f"{kind}: logging run and registering {name}...")
            record = _record(fit, config, tags=tags)
            record.explained = explained[kind]
            if model_kind(kind).persona_baseline and target.persona_rates is not None:
                rates = target.persona_rates
                rates = rates.astype(object).where(rates.notna(), None)
                record.documents["persona_rates.json"] = rates.to_dict("records")
                record.extra_metrics.update(rates_to_metrics(target.persona_rates))
            run = log_training_run(
                record,
                experiment_id=experiment_id,
                run_name=f"{kind}-{train_id}",
                client=client,
            )
            version = register_version(
                client,
                name,
                run.model_uri,
                run_id=run.run_id,
                tags={**tags, "run_id": run.run_id},
            )
            predictions = write_heldout_predictions(
                fit.test, predictions_root / f"{kind}_heldout_predictions.parquet"
            )
            client.log_artifact(run.run_id, str(predictions), "heldout")
            _say(progress, f"{kind}: held-out predictions written to {predictions}")
            promotion = None
            if version_by_alias(client, name, CHAMPION) is None:
                promotion = set_champion(client, name, version)
                _say(progress, f"{kind}: {promotion.reason}")
            outcomes[kind] = ModelOutcome(
                kind=kind,
                model=fit.model,
                metrics=fit.metrics,
                leakage=fit.leakage,
                base_rate=fit.base_rate,
                split_sizes=fit.split.sizes(),
                run_id=run.run_id,
                registered_name=name,
                version=str(version.version),
                beats_champion=beats_champion,
                promotion=promotion,
                seconds=fit.seconds,
                tuning=fit.tuning,
                gate=gate,
                predictions_path=predictions,
            )
    return TrainResult(
        tracking_uri=uri,
        experiment_id=experiment_id,
        models=outcomes,
        refused={},
        seconds={"logging": time.perf_counter() - started},
        persona_rates=target.persona_rates,
    )
