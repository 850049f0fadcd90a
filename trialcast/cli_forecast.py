"""The finance commands: ``trialcast forecast`` and ``trialcast backtest``.

Thin wrappers, like every command: parse options, call ``trialcast.forecast_job``
and print its summary. Heavy libraries load only when a command runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from trialcast.cli_common import (
    console,
    fail,
    fail_without_labels,
    load_config_or_exit,
    parse_moment,
    stop,
)


def backtest_command(
    config: Annotated[Path, typer.Option("--config", "-c", help="Company config (TOML).")],
    out: Annotated[
        Path | None,
        typer.Option(
            help="Output folder (default: models/forecast/backtest, shown by the service)."
        ),
    ] = None,
    cohort: Annotated[
        list[str] | None, typer.Option(help="Cohort month(s) YYYY-MM (default: all).")
    ] = None,
    truth: Annotated[
        Path | None,
        typer.Option(
            help="A generated company's truth.parquet: adds the oracle floor (the same "
            "cohorts forecast from the true probabilities and deal values)."
        ),
    ] = None,
    period: Annotated[
        str,
        typer.Option(
            help="Cohort span: 'month' (default) or 'week' (~4x the cohorts, to judge "
            "the P10-P90 range on 50+ forecasts)."
        ),
    ] = "month",
) -> None:
    """Rolling-origin backtest of the revenue forecast over past monthly (or weekly) cohorts."""
    from features.loaders import load_tables
    from features.validation import InputError
    from serving.forecast.view import resolve_forecast_dir
    from trialcast.backtest_oracle import OracleTruth, OracleTruthError
    from trialcast.forecast_job import run_backtest
    from trialcast.summary import print_backtest_summary

    cfg = load_config_or_exit(config)
    if period not in ("month", "week"):
        fail(f"--period {period!r}: use 'month' or 'week'")
    try:
        with console.status("Loading tables and backtesting cohorts (a model per origin)..."):
            tables = load_tables(cfg).tables
            fail_without_labels(tables.accounts)
            target = out or resolve_forecast_dir() / "backtest"
            oracle = OracleTruth.read(truth) if truth is not None else None
            result = run_backtest(cfg, tables, target, cohorts=cohort, period=period, oracle=oracle)
    except (InputError, OracleTruthError) as exc:
        fail(str(exc))
    except ValueError as exc:  # e.g. no cohort with closed history: say so, no traceback
        fail(
            f"backtest: {exc}. A backtest needs past monthly cohorts whose conversion window "
            "has closed, with converted trials among them; export more history (or pick "
            "cohorts with --cohort)"
        )
    print_backtest_summary(result, console)


def forecast_command(
    config: Annotated[Path, typer.Option("--config", "-c", help="Company config (TOML).")],
    scores: Annotated[
        Path | None, typer.Option(help="Scores from `trialcast score` (scored now if omitted).")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Output folder (default: models/forecast, which the service shows)."),
    ] = None,
    to_sql: Annotated[
        str | None, typer.Option(help="Also export account rows to this SQLAlchemy URL.")
    ] = None,
    logit_sd: Annotated[
        float, typer.Option(help="Calibration uncertainty (log-odds sd) to widen ranges.")
    ] = 0.0,
    as_of: Annotated[
        str | None,
        typer.Option(help="Forecast moment (ISO 8601; default: the export time)."),
    ] = None,
) -> None:
    """Expected new revenue from open trials by month and segment, with P10/P50/P90."""
    import pandas as pd

    from features.loaders import load_tables
    from features.validation import InputError
    from serving.batch import export_now, score_customers
    from serving.forecast.deal import DealValueError
    from serving.forecast.view import resolve_forecast_dir
    from serving.open_trials import NO_OPEN_TRIAL_EXIT, NoOpenTrialError
    from serving.scoring import load_scoring_models
    from trialcast.forecast_job import (
        ForecastInputs,
        ForecastOptions,
        prepare_scores_for_forecast,
        read_scores_file,
        run_forecast,
        scores_model_version,
    )
    from trialcast.no_champion import missing_model_message
    from trialcast.serve_job import ModelSource, run_score_job
    from trialcast.summary import print_forecast_summary

    cfg = load_config_or_exit(config)
    moment = parse_moment(as_of)
    missing = missing_model_message(cfg)
    if missing:
        fail(missing)
    try:
        tables = load_tables(cfg).tables
        models = load_scoring_models(cfg)
        scores_were_made = scores is None
        if scores is None:
            with console.status("Scoring open trials..."):
                scored = run_score_job(
                    cfg, tables=tables, as_of=moment, source=ModelSource(models=models)
                )
            scores = scored.path
        raw = read_scores_file(scores)
    except InputError as exc:
        fail(str(exc))
    except NoOpenTrialError as exc:
        stop(f"{exc}; no forecast written", NO_OPEN_TRIAL_EXIT)
    version = scores_model_version(raw)
    frame = prepare_scores_for_forecast(raw, tables.accounts)
    scored_at = pd.Timestamp(frame["as_of"].max())
    if moment is not None and scored_at != moment:
        fail(f"--scores {scores}: scored as of {scored_at}, not --as-of {moment}")
    with console.status("Scoring paying customers for churn..."):
        customers = score_customers(cfg, tables, models, as_of=scored_at)
    reason = (
        None
        if customers is not None
        else "no churn model is registered under the served alias: run `trialcast train`"
    )
    try:
        result = run_forecast(
            cfg,
            frame,
            out or resolve_forecast_dir(),
            as_of=scored_at,
            inputs=ForecastInputs(
                history=tables.accounts,
                customers=customers,
                recurring_reason=reason,
                export_time=export_now(cfg, tables),
            ),
            options=ForecastOptions(model_version=version, logit_sd=logit_sd, to_sql=to_sql),
        )
    except (DealValueError, InputError) as exc:
        fail(str(exc))
    print_forecast_summary(result, console)
    for note in scored.notes if scores_were_made else ():
        console.print(f"  note: the forecast leaves out {note}", markup=False)
