"""Rolling-origin backtest of the revenue forecast over past monthly cohorts.

A cohort is the trials that started in one calendar month; its origin is the end
of that month. At each origin the world is cut to what an export then would
have held (``truncate_tables``): events and messages before the origin,
conversions and churns before it. On that cut the conversion model is trained
exactly as the training job would (training set with ``export_time = origin``,
through the one recipe, ``training.recipe.fit_kind``), the cohort's open trials are scored as of
the origin by the shipping function (``serving.batch.predict_open_trials``, the
one ``score`` / ``forecast`` / the service / Dask call; running trials and trials
deciding after their end alike), valued by the shipping estimate
(``serving.forecast.deal``: quotes and deals won before the origin only) and the
cohort's revenue is forecast with P10-P90 (already-converted trials count as
certain revenue; deal-value spread widens the range). The actual is the deal
value of the cohort's trials that converted within their window, from the full
tables. Count error (expected vs actual conversions) and value error (value per
conversion) are reported apart, and so are the trials past their end.

Interval width: the Bernoulli spread alone ignores model error. A miscalibrated
intercept moves every trial of a cohort the same way, so it does not average
out; it is added as a shared log-odds shift ``Z ~ N(0, s^2)`` whose ``s`` is the
standard error of the Platt calibration at the cohort (Fisher information of the
calibration fit on the validation part, inflated by the rows-per-account design
effect because snapshots of one account are not independent).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

import numpy as np
import pandas as pd

from features.build import FeatureBuilder
from features.config import CompanyConfig
from features.tables import Tables
from models.kinds import model_kind
from serving.batch import predict_open_trials
from serving.forecast.deal import estimate_deal_values, value_variance
from serving.forecast.distribution import TOLERANCE, compute_mixture_distribution
from training.model import TrialcastModel
from training.recipe import RecipeOptions, fit_kind
from training.train import point_in_time_builder
from training.train_results import FittedKind
from trialcast.backtest_intervals import (
    interval_scores,
    summarise_intervals,
    summarise_vs_oracle,
    vs_oracle_columns,
)
from trialcast.backtest_oracle import (
    CohortActuals,
    OracleTruth,
    oracle_cohort_row,
    summarise_oracle,
)
from trialcast.backtest_phases import phase_rows
from trialcast.backtest_values import add_backtest_segments

#: Cohort periods: trials started in one calendar month (default) or one week (Mon-Sun).
PERIODS = {"month": "M", "week": "W-SUN"}

DAY = pd.Timedelta(days=1)


@dataclass
class BacktestResult:
    """Per-cohort forecasts against actuals, and the overall scores.

    Attributes:
        cohorts: one row per cohort: ``cohort`` (YYYY-MM), ``origin``,
            ``n_trials``, ``n_open``, ``n_converted_at_origin``, ``certain``,
            ``forecast`` (expected), ``p10``, ``p50``, ``p90``, ``actual``,
            ``error_pct`` (forecast vs actual, % of actual), ``inside`` (actual
            within P10-P90), ``logit_sd``, ``error_bound``, ``n_train_rows``;
            with an oracle, ``oracle_forecast``, ``oracle_p10`` / ``oracle_p90``,
            ``oracle_error_pct``, ``oracle_inside``... (the floor, from the truth);
            ``pit`` / ``z`` (``trialcast.backtest_intervals``);
            ``verdict``: the gate's verdict on the cohort's model.
        summary: ``mape``, ``coverage``, ``mape_500`` / ``coverage_500`` (cohorts of
            500+ trials), ``n_cohorts``, ``n_cohorts_500``; count and value errors
            apart (``count_error_pct`` over all cohorts, ``count_mape``,
            ``value_mape``) and the trials past their end (``expected_past_end``,
            ``actual_past_end``, ``past_end_error_pct``), ``actual_closed``;
            with an oracle, ``oracle_mape``, ``oracle_coverage`` (and ``_500``),
            ``oracle_count_error_pct``, ``oracle_count_mape``, ``oracle_value_mape``.
    """

    cohorts: pd.DataFrame
    summary: dict[str, float] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    #: One row per open trial of every cohort (``trialcast.backtest_phases.phase_rows``).
    phases: pd.DataFrame = field(default_factory=pd.DataFrame)


def truncate_tables(tables: Tables, origin: pd.Timestamp) -> Tables:
    """The tables as an export at ``origin`` would have shown them (nothing at or after it)."""
    moment = pd.Timestamp(origin)
    events = tables.events[tables.events["timestamp"] < moment]
    comms = tables.communications
    if comms is not None:
        comms = comms[comms["timestamp"] < moment]
    accounts = tables.accounts[tables.accounts["trial_start"] < moment].copy()
    for col in ("converted_at", "churned_at"):
        if col in accounts.columns:
            accounts[col] = accounts[col].where(accounts[col] < moment)
    if "converted_at" in accounts.columns:
        # A deal's value (and MRR) is known once it is won; open trials keep their quote.
        for col in ("mrr", "deal_value"):
            if col in accounts.columns:
                accounts[col] = accounts[col].where(accounts["converted_at"].notna())
    return Tables(
        events=events.reset_index(drop=True),
        accounts=accounts.reset_index(drop=True),
        communications=None if comms is None else comms.reset_index(drop=True),
        features=truncate_feature_table(tables.features, accounts, moment),
        export_at=moment if tables.export_at is not None else None,
    )


def truncate_feature_table(
    table: pd.DataFrame | None, accounts: pd.DataFrame, moment: pd.Timestamp
) -> pd.DataFrame | None:
    """The feature-table rows known at ``moment``: rows with ``as_of`` before it, or,
    without ``as_of`` (whole-trial values), the rows of trials that ended before it."""
    if table is None:
        return None
    if "as_of" in table.columns:
        return table[table["as_of"] < moment].reset_index(drop=True)
    ended = accounts.loc[accounts["trial_end"] < moment, "account_id"].astype(str)
    return table[table["account_id"].astype(str).isin(ended)].reset_index(drop=True)


def list_cohorts(
    accounts: pd.DataFrame, *, window_days: float, export_time: pd.Timestamp, period: str = "month"
) -> list[tuple[str, pd.Timestamp]]:
    """``(cohort, origin)`` of every cohort whose trials' windows all closed by export.

    A cohort is the trials started in one ``period`` (``month``: ``YYYY-MM``;
    ``week``: ``YYYY-MM-DD/YYYY-MM-DD``, Monday to Sunday); its origin is the
    period's end.
    """
    start = pd.to_datetime(accounts["trial_start"])
    closes = pd.to_datetime(accounts["trial_end"]) + pd.Timedelta(days=window_days)
    last_close = closes.groupby(start.dt.to_period(PERIODS[period])).max()
    out = []
    for cohort, close in last_close.items():
        if close <= pd.Timestamp(export_time):
            end = pd.Period(cohort).end_time  # type: ignore[arg-type]
            out.append((str(cohort), end.normalize() + DAY))
    return out


def fit_cohort(
    builder: FeatureBuilder,
    config: CompanyConfig,
    origin: pd.Timestamp,
    *,
    kind: str = "conversion",
) -> tuple[FittedKind, int]:
    """Train and judge the ``kind`` model on what was known at ``origin``, through the
    one recipe (``training.recipe.fit_kind``: guards, small-data mode, the kind's
    split, calibration on the validation part, the gate's verdict on the test part).

    Returns the fitted kind and the training rows.

    Raises:
        ValueError: nothing to train on at ``origin`` (``NotEnoughDataError`` included).
    """
    declared = model_kind(kind)
    frame = declared.training_set(builder, export_time=origin)
    fitted = fit_kind(
        config,
        frame,
        declared,
        spec_json=builder.spec.to_json(),
        options=RecipeOptions(path="backtest"),
    )
    return fitted, len(frame)


def fit_cohort_model(
    builder: FeatureBuilder,
    config: CompanyConfig,
    origin: pd.Timestamp,
    *,
    kind: str = "conversion",
) -> tuple[TrialcastModel, pd.DataFrame, int]:
    """``fit_cohort``'s model, its validation part (calibration data) and the training rows."""
    fitted, n_rows = fit_cohort(builder, config, origin, kind=kind)
    return fitted.model, fitted.valid, n_rows


def compute_calibration_sd(
    model: TrialcastModel, valid: pd.DataFrame, cohort_margin: np.ndarray
) -> float:
    """Standard error of the calibrated log-odds at the cohort (a shared shift).

    Delta method on the Platt fit ``z = a m + b``: ``Var = g' I^-1 g`` with ``I`` the
    Fisher information on the validation rows and ``g = (mean cohort margin, 1)``,
    times the rows-per-account design effect of the validation part.
    """
    m = model.margin(valid)
    p = 1.0 / (1.0 + np.exp(-(model.a * m + model.b)))
    w = p * (1.0 - p)
    info = np.array([[w @ (m * m), w @ m], [w @ m, w.sum()]])
    try:
        cov = np.linalg.inv(info)
    except np.linalg.LinAlgError:
        return 0.0
    design = len(valid) / max(valid["account_id"].nunique(), 1)
    g = np.array([float(np.mean(cohort_margin)) if len(cohort_margin) else 0.0, 1.0])
    return float(np.sqrt(max(g @ cov @ g, 0.0) * design))


def evaluate_cohort(
    tables: Tables,
    config: CompanyConfig,
    cohort: str,
    origin: pd.Timestamp,
    *,
    calibration_uncertainty: bool = True,
    period: str = "month",
    oracle: OracleTruth | None = None,
) -> dict[str, object]:
    """Forecast one cohort at its origin through the shipping path; compare with what happened.

    The cohort's open trials are scored by ``serving.batch.predict_open_trials``
    (the function ``score`` / ``forecast`` / the service / Dask use) and valued by
    ``serving.forecast.deal.estimate_deal_values``; trials past their window at
    the origin are closed (p = 0). With ``oracle`` (a generated company's truth),
    the row also holds the oracle floor (``oracle_*``, ``trialcast.backtest_oracle``),
    computed after, and apart from, the shipping forecast.
    """
    window = config.trial.conversion_window_days
    known = truncate_tables(tables, origin)
    builder = point_in_time_builder(config, known, origin)
    fitted, n_rows = fit_cohort(builder, config, origin)
    model, valid = fitted.model, fitted.valid

    acc = known.accounts
    ids = acc["account_id"].astype(str)
    in_cohort = (acc["trial_start"].dt.to_period(PERIODS[period]).astype(str) == cohort).to_numpy()
    converted = acc["converted_at"].notna().to_numpy()
    scored = predict_open_trials(builder, model, origin)
    cohort_ids = set(ids[in_cohort])
    open_ids = scored.features.index.astype(str)
    keep = np.asarray(open_ids.isin(list(cohort_ids)), dtype=bool)
    p_open, margin = scored.p_convert[keep], scored.margin[keep]
    past_end = scored.past_end[keep]
    deals = estimate_deal_values(
        acc, open_ids[keep].to_series(), origin, size_column=config.firmographics.size_column
    )
    open_values = deals["deal_value"].to_numpy(dtype=float)
    value_var = value_variance(open_values, deals["deal_value_log_sd"].to_numpy(dtype=float))
    certain_values = acc.loc[in_cohort & converted, "deal_value"].astype(float).fillna(0.0)
    certain_values = certain_values.to_numpy()
    closed_ids = set(builder.index.account_ids[scored.closed])
    logit_sd = compute_calibration_sd(model, valid, margin) if calibration_uncertainty else 0.0
    dist = compute_mixture_distribution(
        np.concatenate([np.ones(len(certain_values)), p_open]),
        np.concatenate([certain_values, open_values]),
        logit_sd,
        tolerance=TOLERANCE,
        value_var=np.concatenate([np.zeros(len(certain_values)), value_var]),
    )

    full = tables.accounts
    f_ids = full["account_id"].astype(str)
    f_start = full["trial_start"]
    f_cohort = (f_start.dt.to_period(PERIODS[period]).astype(str) == cohort) & (f_start < origin)
    won = (full["converted_at"] < full["trial_end"] + pd.Timedelta(days=window)).fillna(False)
    won_later = won & ~(full["converted_at"] < origin).fillna(False)
    actual = float(full.loc[f_cohort & won, "deal_value"].astype(float).sum())
    open_set = set(open_ids[keep])
    won_open = f_ids.isin(open_set) & won_later
    past_set = set(open_ids[keep][past_end])
    won_past = f_ids.isin(past_set) & won_later
    actual_closed = int((f_ids.isin(closed_ids) & won_later).sum())
    expected_n = float(p_open.sum())
    actual_n = int(won_open.sum())
    open_actual_value = float(full.loc[won_open, "deal_value"].astype(float).sum())
    p10, p50, p90 = (dist.quantile(q) for q in (0.1, 0.5, 0.9))
    expected_value = float(p_open @ open_values)
    floor: dict[str, float | bool] = {}
    open_acc = acc.set_index(ids).loc[open_ids[keep]]
    if oracle is not None:
        floor = oracle_cohort_row(
            oracle,
            open_ids[keep],
            open_acc["trial_start"],
            origin,
            certain_values,
            actuals=CohortActuals(actual, actual_n, open_actual_value),
        )
    phases = phase_rows(
        open_acc,
        origin,
        p_open,
        won=pd.Series(won_later.to_numpy(), index=f_ids.to_numpy())
        .reindex(open_ids[keep])
        .to_numpy(dtype=float),
        oracle_p=(
            None
            if oracle is None
            else oracle.open_probability(open_ids[keep], open_acc["trial_start"], origin)
        ),
    )
    # who each row is and what its deal is worth: value error by deal size is read from these
    phases.insert(0, "account_id", np.asarray(open_ids[keep], dtype=object))
    phases["deal_value"] = open_values
    phases = add_backtest_segments(phases, acc, config)
    row: dict[str, object] = {
        "cohort": cohort,
        "origin": pd.Timestamp(origin),
        "n_trials": int(in_cohort.sum()),
        "n_open": int(keep.sum()),
        "n_converted_at_origin": int((in_cohort & converted).sum()),
        "certain": float(certain_values.sum()),
        "forecast": dist.mean,
        "p10": p10,
        "p50": p50,
        "p90": p90,
        "actual": actual,
        "error_pct": 100.0 * (dist.mean - actual) / actual if actual else np.nan,
        "inside": bool(p10 <= actual <= p90),
        "expected_conversions": expected_n,
        "actual_conversions": actual_n,
        "count_error_pct": 100.0 * (expected_n - actual_n) / actual_n if actual_n else np.nan,
        "value_per_conversion_error_pct": (
            100.0 * ((expected_value / expected_n) / (open_actual_value / actual_n) - 1.0)
            if actual_n and expected_n
            else np.nan
        ),
        "n_past_end": int(past_end.sum()),
        "expected_past_end": float(p_open[past_end].sum()),
        "actual_past_end": int(won_past.sum()),
        "n_closed": len(scored.closed),  # every trial past its window at the origin
        "expected_closed": 0.0,
        "actual_closed": actual_closed,
        "logit_sd": logit_sd,
        "error_bound": dist.error_bound((0.1, 0.5, 0.9)),
        "n_train_rows": n_rows,
        "verdict": fitted.gate.text if fitted.gate is not None else "",
        "expected_open_value": expected_value,
        **interval_scores(dist, actual, p10, p90),
        **floor,
    }
    return {**row, **vs_oracle_columns(row), "_phases": phases.assign(cohort=cohort)}


def summarise_backtest(cohorts: pd.DataFrame, *, min_trials: int = 500) -> dict[str, float]:
    """MAPE and P10-P90 coverage, overall and over cohorts of ``min_trials``+ trials."""
    big = cohorts[cohorts["n_trials"] >= min_trials]

    def mape(frame: pd.DataFrame) -> float:
        return float(frame["error_pct"].abs().mean()) if len(frame) else float("nan")

    def coverage(frame: pd.DataFrame) -> float:
        return float(100.0 * frame["inside"].mean()) if len(frame) else float("nan")

    out = {
        "n_cohorts": float(len(cohorts)),
        "mape": mape(cohorts),
        "coverage": coverage(cohorts),
        "n_cohorts_500": float(len(big)),
        "mape_500": mape(big),
        "coverage_500": coverage(big),
    }
    if "expected_conversions" in cohorts.columns:
        expected, actual = (
            cohorts["expected_conversions"].sum(),
            cohorts["actual_conversions"].sum(),
        )
        past_e, past_a = cohorts["expected_past_end"].sum(), cohorts["actual_past_end"].sum()
        out.update(
            {
                "count_error_pct": 100.0 * (expected / actual - 1.0) if actual else np.nan,
                "count_mape": float(cohorts["count_error_pct"].abs().mean()),
                "value_mape": float(cohorts["value_per_conversion_error_pct"].abs().mean()),
                "expected_past_end": float(past_e),
                "actual_past_end": float(past_a),
                "past_end_error_pct": 100.0 * (past_e / past_a - 1.0) if past_a else np.nan,
                "actual_closed": float(cohorts["actual_closed"].sum()),
            }
        )
    out.update(summarise_oracle(cohorts, min_trials=min_trials))
    out.update(summarise_intervals(cohorts))
    out.update(summarise_vs_oracle(cohorts))
    return out


def run_rolling_backtest(
    tables: Tables,
    config: CompanyConfig,
    *,
    cohorts: list[str] | None = None,
    export_time: pd.Timestamp | None = None,
    calibration_uncertainty: bool = True,
    period: str = "month",
    num_threads: int | None = None,
    oracle: OracleTruth | None = None,
) -> BacktestResult:
    """Backtest every eligible cohort (or the ``cohorts`` given, as ``YYYY-MM``).

    ``period`` (``month`` or ``week``) sets the cohorts' span (``list_cohorts``):
    weekly cohorts give ~4x the forecasts to judge the intervals on.

    Cohorts whose origin leaves too little labelled history to train on are
    skipped and listed in ``skipped`` with the reason. ``num_threads`` overrides LightGBM's thread count (many small fits
    run faster single-threaded, and far faster on a busy machine). ``oracle``
    (a generated company's truth) adds the oracle floor beside every cohort.
    """
    if num_threads is not None:
        params = {**config.model.lightgbm, "num_threads": int(num_threads)}
        config = config.model_copy(
            update={"model": config.model.model_copy(update={"lightgbm": params})}
        )
    moment = pd.Timestamp(export_time) if export_time is not None else tables.export_time()
    window = config.trial.conversion_window_days
    plan = list_cohorts(tables.accounts, window_days=window, export_time=moment, period=period)
    if cohorts is not None:
        wanted = set(cohorts)
        plan = [(c, o) for c, o in plan if c in wanted]
    rows = []
    skipped: dict[str, str] = {}
    for cohort, origin in plan:
        try:
            rows.append(
                evaluate_cohort(
                    tables,
                    config,
                    cohort,
                    origin,
                    calibration_uncertainty=calibration_uncertainty,
                    period=period,
                    oracle=oracle,
                )
            )
        except ValueError as exc:  # e.g. too little closed history at this origin
            skipped[cohort] = str(exc)
    if not rows:
        reasons = "; ".join(f"{c}: {r}" for c, r in skipped.items())
        raise ValueError(f"no cohort could be backtested ({reasons or 'no eligible cohort'})")
    phases = pd.concat([cast(pd.DataFrame, r.pop("_phases")) for r in rows], ignore_index=True)
    frame = pd.DataFrame(rows)
    return BacktestResult(
        cohorts=frame, summary=summarise_backtest(frame), phases=phases, skipped=skipped
    )
