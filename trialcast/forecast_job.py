"""Job functions behind ``trialcast forecast`` and ``trialcast backtest``.

They read nothing the caller did not pass (except ``history``-less timing, which
falls back to uniform), write their outputs into ``out_dir`` and return what they
produced; they print nothing. Until champion models are served from the registry,
``run_forecast`` takes a scores frame (``account_id``, ``p_convert``,
``deal_value``, ``trial_days_elapsed``, segments...).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from features.config import CompanyConfig
from features.quarantine import InputError
from features.tables import Tables
from serving.forecast.deal import DealValueError, no_value_message
from serving.forecast.distribution import TOLERANCE
from serving.forecast.exports import (
    DEFAULT_TABLE,
    build_export_frame,
    write_csv,
    write_parquet,
    write_sql,
)
from serving.forecast.history import archive_run, forecast_vs_actual
from serving.forecast.plots import (
    compute_cohort_curves,
    plot_cohort_curves,
    plot_forecast_by_month,
    plot_forecast_vs_actual,
    save_png,
)
from serving.forecast.revenue import (
    build_account_forecast,
    forecast_new_revenue,
    forecast_recurring_revenue,
    prepare_open_trials,
)
from serving.forecast.segments import PERSONA, add_segment_columns, configured_segments
from serving.forecast.timing import ConversionTiming, fit_conversion_timing
from trialcast.backtest import BacktestResult, run_rolling_backtest
from trialcast.backtest_intervals import plot_pit_histogram
from trialcast.backtest_oracle import OracleTruth
from trialcast.backtest_phases import phase_table
from trialcast.backtest_values import segment_table, value_band_table


@dataclass
class ForecastRunResult:
    """What ``run_forecast`` computed and wrote.

    Attributes:
        breakdown: tidy new-revenue forecast (total, month, segments).
        accounts: the account-level export rows.
        recurring: churn-adjusted MRR forecast (None without customers).
        timing: the conversion timing used.
        as_of, model_version: stamps of this forecast.
        outputs: name -> path of every file written.
        sql_rows: rows written to SQL (None when not exported there).
        seconds: wall time per step.
    """

    breakdown: pd.DataFrame
    accounts: pd.DataFrame
    recurring: pd.DataFrame | None
    timing: ConversionTiming
    as_of: pd.Timestamp
    model_version: str
    outputs: dict[str, Path] = field(default_factory=dict)
    sql_rows: int | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    recurring_reason: str | None = None


def _fill_deal_values(
    scores: pd.DataFrame,
    history: pd.DataFrame | None,
    as_of: pd.Timestamp,
    default_value: float | None = None,
) -> pd.DataFrame:
    """Missing deal values take the median deal of the account's plan (else overall)
    among deals won before ``as_of`` (nothing from after the forecast moment), else
    ``default_value`` (``[forecast].default_deal_value``).

    Raises:
        DealValueError: some trial still has no value (a revenue forecast needs one).
    """
    if "deal_value" not in scores.columns:
        scores = scores.assign(deal_value=np.nan)
    missing = scores["deal_value"].isna()
    if not missing.any():
        return scores
    fill = pd.Series(np.nan, index=scores.index)
    wins = 0
    if history is not None and "deal_value" in history.columns:
        won = history[(history["converted_at"] < pd.Timestamp(as_of)).fillna(False)]
        wins = len(won)
        fill[:] = float(won["deal_value"].median()) if won["deal_value"].notna().any() else np.nan
        if "plan" in scores.columns and "plan" in won.columns:
            by_plan = won.groupby(won["plan"].astype(str))["deal_value"].median()
            fill = scores["plan"].astype(str).map(by_plan).fillna(fill)
    if default_value is not None:
        fill = fill.fillna(float(default_value))
    filled = scores["deal_value"].where(~missing, fill)
    if filled.isna().any():
        ids = pd.Index(scores.loc[filled.isna(), "account_id"].astype(str))
        has_column = history is not None and "deal_value" in history.columns
        raise DealValueError(
            no_value_message(ids, pd.Timestamp(as_of), wins, has_column=has_column)
            + "; a revenue forecast needs a value for every open trial"
        )
    return scores.assign(deal_value=filled)


#: Columns a scores file (``trialcast score``) must have to be forecast.
SCORES_COLUMNS = ("account_id", "as_of", "trial_start", "trial_end", "p_convert")


def read_scores_file(path: str | Path) -> pd.DataFrame:
    """A scores Parquet file written by ``trialcast score``, checked.

    Raises:
        InputError: the file is missing, not Parquet, or lacks a scores column.
    """
    import pyarrow as pa

    if not Path(path).is_file():
        raise InputError(f"--scores {path}: file not found; run `trialcast score` first")
    try:
        frame = pd.read_parquet(path)
    except (OSError, pa.ArrowException) as exc:
        raise InputError(
            f"--scores {path}: cannot read it as Parquet ({str(exc).splitlines()[0]}); pass "
            "a file written by `trialcast score`, or leave --scores out to score now"
        ) from exc
    missing = [c for c in SCORES_COLUMNS if c not in frame.columns]
    if missing:
        raise InputError(
            f"--scores {path}: not a scores file of `trialcast score` (no column "
            f"{', '.join(missing)}); leave --scores out to score now"
        )
    return frame


def prepare_scores_for_forecast(scores: pd.DataFrame, accounts: pd.DataFrame) -> pd.DataFrame:
    """Batch scores (``trialcast score``) with days into and length of the trial
    (segments come from the config: ``serving.forecast.segments``)."""
    del accounts  # segments are added by ``run_forecast`` from the config
    frame = scores.copy()
    as_of = pd.Timestamp(pd.to_datetime(frame["as_of"]).max())
    start, end = pd.to_datetime(frame["trial_start"]), pd.to_datetime(frame["trial_end"])
    frame["trial_days_elapsed"] = (as_of - start).dt.total_seconds() / 86_400
    frame["trial_length_days"] = (end - start).dt.total_seconds() / 86_400
    return frame


def scores_model_version(scores: pd.DataFrame) -> str:
    """The model name(s) and version(s) a scores file was made with (``"unknown"`` if absent)."""
    if not {"model_name", "model_version"} <= set(scores.columns):
        return "unknown (scores file has no model_name / model_version)"
    pairs = scores[["model_name", "model_version"]].drop_duplicates().astype(str)
    return ", ".join(f"{n} {v}" for n, v in pairs.itertuples(index=False))


def write_forecast_meta(
    out: Path, *, as_of: pd.Timestamp, model_version: str, recurring_reason: str | None = None
) -> Path:
    """``forecast_meta.json``: when the forecast was made, with which models, and why
    recurring revenue is missing when it is."""
    path = out / "forecast_meta.json"
    out.mkdir(parents=True, exist_ok=True)
    payload = {
        "as_of": pd.Timestamp(as_of).isoformat(),
        "model_version": model_version,
        "recurring_reason": recurring_reason,
    }
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload))
    os.replace(tmp, path)
    return path


@dataclass(frozen=True)
class ForecastInputs:
    """What a forecast knows besides the scored open trials.

    Attributes:
        history: accounts table (``trial_start``, ``trial_end``, ``converted_at``,
            ``deal_value``, ``plan``) to learn timing and fill missing deal values.
        customers: paying accounts with ``mrr`` and ``p_churn`` (optional).
        recurring_reason: why ``customers`` is missing (kept in the meta file and
            the result; a reason is required when it is missing).
        export_time: "now" of ``history`` (decides which past runs are complete in
            ``forecast_history.csv``; default ``as_of``).
    """

    history: pd.DataFrame | None = None
    customers: pd.DataFrame | None = None
    recurring_reason: str | None = None
    export_time: pd.Timestamp | None = None


@dataclass(frozen=True)
class ForecastOptions:
    """How a forecast is computed and where it is also written.

    Attributes:
        horizon_days: recurring-revenue horizon (default: ``churn_horizon_days``).
        model_version: stamped on every exported row.
        logit_sd: calibration uncertainty (shared log-odds sd) widening the ranges.
        tolerance: accuracy of the ranges (fraction of each group's sd).
        to_sql: SQLAlchemy URL to also write the account rows to (``sql_table``).
        sql_table: the table ``to_sql`` writes.
        pictures: write the PNG of expected revenue by month.
    """

    horizon_days: float | None = None
    model_version: str = "unregistered"
    logit_sd: float = 0.0
    tolerance: float = TOLERANCE
    to_sql: str | None = None
    sql_table: str = DEFAULT_TABLE
    pictures: bool = True


def run_forecast(
    config: CompanyConfig,
    scores: pd.DataFrame,
    out_dir: str | Path,
    *,
    as_of: pd.Timestamp | None = None,
    inputs: ForecastInputs | None = None,
    options: ForecastOptions | None = None,
) -> ForecastRunResult:
    """Forecast new revenue from scored open trials (and churn-adjusted MRR); write it.

    Args:
        config: the company config (trial length, window, churn horizon).
        scores: one row per open trial (see ``serving.forecast.forecast_new_revenue``).
        out_dir: folder for ``forecast_breakdown.csv``, ``forecast_accounts.csv`` /
            ``.parquet``, ``forecast_recurring.csv`` and the PNGs.
        as_of: moment of the scores (default: max ``as_of`` column, else now).
        inputs: history, customers and the data's "now" (``ForecastInputs``).
        options: horizon, version stamp, range settings, SQL export and pictures
            (``ForecastOptions``).
    """
    inputs = inputs or ForecastInputs()
    options = options or ForecastOptions()
    history, customers = inputs.history, inputs.customers
    recurring_reason, export_time = inputs.recurring_reason, inputs.export_time
    horizon_days, model_version = options.horizon_days, options.model_version
    logit_sd, tolerance, pictures = options.logit_sd, options.tolerance, options.pictures
    to_sql, sql_table = options.to_sql, options.sql_table
    if customers is None and not recurring_reason:
        recurring_reason = "no churn scores were given"
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    if as_of is None:
        as_of = (
            pd.Timestamp(pd.to_datetime(scores["as_of"]).max())
            if "as_of" in scores.columns
            else pd.Timestamp.now().floor("s")
        )
    moment = pd.Timestamp(as_of)
    window = config.trial.conversion_window_days
    timing = (
        fit_conversion_timing(history, as_of=moment, window_days=window)
        if history is not None
        else ConversionTiming(tau=np.array([]), window_days=float(window), fitted_at=moment)
    )
    scores = _fill_deal_values(scores, history, moment, config.forecast.default_deal_value)
    trials = prepare_open_trials(
        scores, as_of=moment, default_trial_days=config.trial.default_trial_days
    )
    accounts_table = history if history is not None else trials[["account_id"]]
    specs = configured_segments(config, [*trials.columns, *accounts_table.columns])
    trials, segments = add_segment_columns(trials, accounts_table, specs)
    breakdown = forecast_new_revenue(
        trials,
        timing,
        as_of=moment,
        segments=segments,
        logit_sd=logit_sd,
        tolerance=tolerance,
        default_trial_days=config.trial.default_trial_days,
    )
    accounts = build_export_frame(
        build_account_forecast(trials, timing, as_of=moment, segments=segments),
        model_version=model_version,
        as_of=moment,
        segments=segments,
    )
    recurring = None
    if customers is not None:
        kept = [s for s in specs if s.column != PERSONA]
        customers, customer_segments = add_segment_columns(customers, accounts_table, kept)
        recurring = forecast_recurring_revenue(
            customers,
            segments=customer_segments,
            horizon_days=horizon_days or config.trial.churn_horizon_days,
            model_horizon_days=config.trial.churn_horizon_days,
            logit_sd=logit_sd,
            tolerance=tolerance,
        )
    seconds["forecast"] = time.perf_counter() - started

    out = Path(out_dir)
    outputs = {
        "breakdown": write_csv(breakdown, out / "forecast_breakdown.csv"),
        "meta": write_forecast_meta(
            out, as_of=moment, model_version=model_version, recurring_reason=recurring_reason
        ),
        "accounts_csv": write_csv(accounts, out / "forecast_accounts.csv"),
        "accounts_parquet": write_parquet(accounts, out / "forecast_accounts.parquet"),
    }
    if recurring is not None:
        outputs["recurring"] = write_csv(recurring, out / "forecast_recurring.csv")
    outputs["run"] = archive_run(out, breakdown, accounts, moment)
    if history is not None:
        past = forecast_vs_actual(
            out,
            history,
            window_days=window,
            export_time=export_time if export_time is not None else moment,
        )
        outputs["history"] = write_csv(past, out / "forecast_history.csv")
        if pictures and len(past):
            shown = past.assign(cohort=past["as_of"].astype(str).str[:16])
            outputs["history_png"] = save_png(
                plot_forecast_vs_actual(
                    shown, title="Forecast at each as_of vs actual (open trials then)"
                ),
                out / "forecast_history.png",
            )
    if pictures:
        outputs["by_month_png"] = save_png(
            plot_forecast_by_month(breakdown), out / "forecast_by_month.png"
        )
    sql_rows = write_sql(accounts, to_sql, table=sql_table) if to_sql else None
    seconds["total"] = time.perf_counter() - started
    return ForecastRunResult(
        breakdown=breakdown,
        accounts=accounts,
        recurring=recurring,
        timing=timing,
        as_of=moment,
        model_version=model_version,
        outputs=outputs,
        sql_rows=sql_rows,
        seconds=seconds,
        recurring_reason=None if recurring is not None else recurring_reason,
    )


@dataclass
class BacktestRunResult:
    """What ``run_backtest`` computed and wrote."""

    result: BacktestResult
    curves: pd.DataFrame
    outputs: dict[str, Path] = field(default_factory=dict)
    seconds: float = 0.0


def run_backtest(
    config: CompanyConfig,
    tables: Tables,
    out_dir: str | Path,
    *,
    cohorts: list[str] | None = None,
    period: str = "month",
    num_threads: int | None = 1,
    pictures: bool = True,
    oracle: OracleTruth | None = None,
) -> BacktestRunResult:
    """Rolling-origin backtest over monthly (or weekly) cohorts; writes tables and pictures.

    Writes ``backtest_cohorts.csv``, ``backtest_summary.csv``,
    ``backtest_phases.csv`` (expected conversions by trial phase and length),
    ``backtest_value_bands.csv`` (expected conversions and revenue by quarter of
    estimated deal value), ``backtest_segments.csv`` (the same per forecast
    segment: size band, plan...),
    ``backtest_open_trials.csv`` (the rows behind it: one per open trial of each
    cohort, with its probability, the oracle's and the outcome),
    ``backtest_forecast_vs_actual.png``, ``backtest_pit.png`` (interval honesty)
    and ``cohort_conversion_curves.png``.
    ``num_threads`` is LightGBM's per fit (1 by default: many small fits).
    ``oracle`` (a generated company's truth) adds the oracle floor columns.
    """
    started = time.perf_counter()
    result = run_rolling_backtest(
        tables, config, cohorts=cohorts, period=period, num_threads=num_threads, oracle=oracle
    )
    window = config.trial.conversion_window_days
    curves = compute_cohort_curves(
        tables.accounts, max_day=int(max(config.trial.default_trial_days, 30) + window)
    )
    out = Path(out_dir)
    outputs = {
        "cohorts": write_csv(result.cohorts, out / "backtest_cohorts.csv"),
        "summary": write_csv(pd.DataFrame([result.summary]), out / "backtest_summary.csv"),
        "phases": write_csv(phase_table(result.phases), out / "backtest_phases.csv"),
        "value_bands": write_csv(value_band_table(result.phases), out / "backtest_value_bands.csv"),
        "segments": write_csv(segment_table(result.phases), out / "backtest_segments.csv"),
        "open_trials": write_csv(result.phases, out / "backtest_open_trials.csv"),
    }
    if pictures:
        outputs["forecast_vs_actual_png"] = save_png(
            plot_forecast_vs_actual(result.cohorts), out / "backtest_forecast_vs_actual.png"
        )
        outputs["pit_png"] = save_png(plot_pit_histogram(result.cohorts), out / "backtest_pit.png")
        outputs["curves_png"] = save_png(
            plot_cohort_curves(curves), out / "cohort_conversion_curves.png"
        )
    return BacktestRunResult(
        result=result, curves=curves, outputs=outputs, seconds=time.perf_counter() - started
    )
