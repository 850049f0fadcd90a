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
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

from features.build import FeatureBuilder, feature_columns
from features.config import CompanyConfig
from features.personas import PersonaLevels, fit_persona_levels
from features.snapshots import build_churn_training_set, build_trial_training_set
from features.spec import FeatureSpec, fit_feature_spec
from features.tables import Tables
from training.baselines import (
    build_base_rate_baseline,
    build_ceiling,
    build_persona_baseline,
    fit_logistic_baseline,
)
from training.gate import judge_fitted, write_heldout_predictions
from training.guards import (
    LeakageReport,
    NotEnoughDataError,
    check_base_rate,
    check_enough_data,
    check_leakage,
    check_split_classes,
)
from training.metrics import evaluate_models, log_loss
from training.model import categorical_levels, fit_model
from training.persona_rates import (
    compute_observed_persona_rates,
    last_snapshot_rows,
    rates_to_dict,
    rates_to_metrics,
)
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
from training.small_data import data_size, small_data_params, spec_cutoff
from training.split import split_training_frame
from training.tracking import (
    RunRecord,
    data_fingerprint,
    get_or_create_experiment,
    git_commit,
    log_training_run,
    use_tracking_uri,
)
from training.train_results import FittedKind, ModelOutcome, TrainingSets, TrainResult
from training.tune import tune_params

log = logging.getLogger("trialcast.training")

KINDS = ("conversion", "churn")
#: Columns of a training set that identify or time a row; never model inputs.
ID_COLUMNS = ("account_id", "trial_start", "as_of", "snapshot", "snapshot_day", "label")

Progress = Callable[[str], None]


def model_features(frame: pd.DataFrame, kind: str) -> list[str]:
    """Model input columns of a training set: features only, no ids, times or label."""
    cols = feature_columns(frame, customer=kind == "churn")
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
    else:  # point in time: the spec (top-K types, levels, leak scan) sees only older trials
        cut = spec_cutoff(data, config, export_time)
        spec = fit_feature_spec(data, config, before=cut, export_time=export_time)
        builder = FeatureBuilder.from_tables(data, config, spec)
    sets = TrainingSets(conversion=None, churn=None, spec=builder.spec)
    builders = {"conversion": build_trial_training_set, "churn": build_churn_training_set}
    for kind in kinds:
        try:
            frame = builders[kind](builder, export_time=export_time)
        except ValueError as exc:
            sets.refused[kind] = f"{kind} model: {exc}"
            continue
        if kind == "conversion":
            sets.conversion = frame
        else:
            sets.churn = frame
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
    show_progress: bool = False,
    progress: Progress | None = None,
) -> FittedKind:
    """Split, guard, fit and evaluate one model kind (no MLflow).

    Raises:
        NotEnoughDataError: too few rows / positives, or a split part with one class.
    """
    started = time.perf_counter()
    cfg = config.model
    check_enough_data(frame, kind, min_positives=cfg.min_positives)
    size = data_size(config, frame, kind)
    _say(progress, size.message())
    try:
        # churn is split out of time: no paying account's rows run into the test period
        split = split_training_frame(
            frame,
            kind,
            valid_fraction=cfg.valid_fraction,
            test_fraction=cfg.test_fraction,
            horizon_days=config.trial.churn_horizon_days,
        )
    except ValueError as exc:
        raise NotEnoughDataError(f"{kind} model: {exc}") from exc
    train, valid, test = split.frames(frame)
    for name, part in (("train", train), ("validation", valid), ("test", test)):
        check_split_classes(part, kind, name)

    features = model_features(frame, kind)
    unknown = [f for f in force_features if f not in frame.columns]
    if unknown:
        log.warning("forced feature(s) %s are not in the %s training set", unknown, kind)
    features += [f for f in force_features if f in frame.columns and f not in features]
    leakage = check_leakage(
        train, features, threshold=cfg.leakage_auc, force_features=tuple(force_features)
    )
    leakage = add_table_leaks(leakage, train, force_features)
    if leakage.flagged:
        _say(progress, leakage.message())

    params: dict[str, Any] = dict(cfg.lightgbm)
    if size.small:
        params = small_data_params(params)
    tuning = None
    if tune:
        _say(progress, f"{kind}: tuning LightGBM ({cfg.tune_trials} Optuna trials)...")
        tuning = tune_params(
            train,
            valid,
            leakage.kept,
            params,
            categories=categorical_levels(train, leakage.kept),
            n_trials=cfg.tune_trials,
            num_boost_round=cfg.num_boost_round,
            early_stopping_rounds=cfg.early_stopping_rounds,
            seed=int(params.get("seed", 0)),
            show_progress=show_progress,
        )
        params = tuning.params
        _say(progress, f"{kind}: best validation log loss {tuning.best_log_loss:.4f}")

    _say(progress, f"{kind}: fitting on {len(train):,} rows, {len(leakage.kept)} features...")
    model = fit_model(
        train,
        valid,
        leakage.kept,
        params,
        kind=kind,
        spec_json=spec_json,
        num_boost_round=cfg.num_boost_round,
        early_stopping_rounds=cfg.early_stopping_rounds,
    )
    valid_ll = log_loss(valid["label"], model.predict_proba(valid))

    test = test.copy()
    prob_cols = {"model": "p_model"}
    test["p_model"] = model.predict_proba(test)
    logistic = fit_logistic_baseline(train, leakage.kept)
    test["p_logistic"] = logistic.predict_proba(test)
    prob_cols["logistic"] = "p_logistic"
    if kind == "conversion":
        levels = PersonaLevels.from_dict(
            FeatureSpec.from_json(spec_json).persona_levels if spec_json else None
        )
        test["p_persona"] = build_persona_baseline(train, test, levels)
        prob_cols["persona"] = "p_persona"
    test["p_base_rate"] = build_base_rate_baseline(train, test)
    prob_cols["base_rate"] = "p_base_rate"
    if truth is not None:
        test["p_ceiling"] = build_ceiling(test, truth, kind)
        prob_cols["ceiling"] = "p_ceiling"
    metrics = evaluate_models(test, prob_cols, min_rows=config.promotion.min_segment_rows)
    base = check_base_rate(test["label"], test["p_model"], float(train["label"].mean()))
    _say(progress, base.message(kind))
    gate = judge_fitted(config, model, train, test)
    return FittedKind(
        kind=kind,
        model=model,
        split=split,
        fingerprint_frame=frame,
        train=train,
        test=test,
        prob_cols=prob_cols,
        metrics=metrics,
        leakage=leakage,
        base_rate=base,
        valid_log_loss=valid_ll,
        tuning=tuning,
        seconds=time.perf_counter() - started,
        gate=gate,
    )


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
    tune: bool = False,
    force_features: tuple[str, ...] | list[str] = (),
    tracking_uri: str | None = None,
    truth: pd.DataFrame | None = None,
    kinds: tuple[str, ...] = KINDS,
    export_time: pd.Timestamp | None = None,
    project_dir: str | Path | None = None,
    show_progress: bool = False,
    progress: Progress | None = None,
    predictions_dir: str | Path | None = None,
) -> TrainResult:
    """Train, evaluate, log and register the conversion and churn models.

    Args:
        config: the company config (``[model]``, ``[registry]``).
        data: tables, an indexed ``FeatureBuilder``, or prebuilt ``TrainingSets``.
        tune: run the Optuna search (``[model].tune_trials``) before the final fit.
        force_features: flagged-as-leaky features to keep anyway.
        tracking_uri: MLflow tracking URI (else env / config / default SQLite).
        truth: the demo truth table; adds the "ceiling" rows to the metrics.
        kinds: which models to train.
        export_time: "now" of the data (default: the latest event).
        project_dir: where ``models/`` lives for the default store (default: cwd).
        show_progress: progress bars (Optuna).
        progress: called with one-line status messages.
        predictions_dir: where the held-out predictions Parquet files go
            (default ``<project>/models/predictions``).

    Returns:
        Per kind, the model, its metrics, registry version and promotion outcome;
        refused kinds with their messages.

    Raises:
        NotEnoughDataError: when every requested kind was refused.
    """
    started = time.perf_counter()
    seconds: dict[str, float] = {}
    project = Path(project_dir).resolve() if project_dir is not None else None
    _say(progress, "building training sets...")
    sets = build_training_sets(config, data, kinds=kinds, export_time=export_time)
    if sets.spec is not None and sets.spec.table_as_of is False and sets.spec.table_columns:
        from features.feature_table import TRIAL_END_ONLY_NOTE

        _say(progress, f"conversion: {TRIAL_END_ONLY_NOTE}")
    seconds["features"] = time.perf_counter() - started
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
            fitted[kind] = fit_and_evaluate(
                config,
                frame,
                kind,
                spec_json=spec_json,
                tune=tune,
                force_features=force_features,
                truth=truth,
                show_progress=show_progress,
                progress=progress,
            )
        except NotEnoughDataError as exc:
            refused[kind] = str(exc)
            _say(progress, f"refused: {exc}")
        seconds[kind] = fitted[kind].seconds if kind in fitted else 0.0
    if not fitted:
        raise NotEnoughDataError("\n".join(refused.values()) or "nothing to train")

    uri = resolve_tracking_uri(config, tracking_uri, project_dir=project)
    predictions_root = (
        Path(predictions_dir)
        if predictions_dir is not None
        else output_root(project) / MODELS_DIR / "predictions"
    )
    outcomes: dict[str, ModelOutcome] = {}
    log_started = time.perf_counter()
    train_id = uuid.uuid4().hex[:12]
    commit = git_commit(project)
    with use_tracking_uri(uri) as client:
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
                fit.gate = judge_fitted(
                    config, fit.model, fit.train, fit.test, fit.test["p_champion"].to_numpy()
                )
            gate = (
                fit.gate
                if fit.gate is not None
                else judge_fitted(config, fit.model, fit.train, fit.test)
            )
            _say(progress, gate.message(kind))
            tags = {
                "trialcast.kind": kind,
                "trialcast.train_id": train_id,
                "trialcast.as_of": data_as_of(data, export_time),
                "config_hash": config.config_hash(),
                "company": config.company,
                "git_commit": commit,
                "beats_base_rate": str(fit.base_rate.beats).lower(),
                "test_log_loss": f"{fit.base_rate.model_log_loss:.6f}",
                "base_rate_log_loss": f"{fit.base_rate.base_log_loss:.6f}",
                "leak_excluded": ",".join(fit.leakage.excluded) or "none",
                "tuned": str(tune).lower(),
                **champion_tags,
                **gate.tags(),
                "small_data": str(data_size(config, fit.fingerprint_frame, kind).small).lower(),
            }
            _say(progress, f"{kind}: logging run and registering {name}...")
            record = _record(fit, config, tags=tags)
            if kind == "conversion" and persona_rates is not None:
                rates = persona_rates.astype(object).where(persona_rates.notna(), None)
                record.documents["persona_rates.json"] = rates.to_dict("records")
                record.extra_metrics.update(rates_to_metrics(persona_rates))
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
    seconds["logging"] = time.perf_counter() - log_started
    seconds["total"] = time.perf_counter() - started
    return TrainResult(
        tracking_uri=uri,
        experiment_id=experiment_id,
        models=outcomes,
        refused=refused,
        seconds=seconds,
        persona_rates=persona_rates,
    )
