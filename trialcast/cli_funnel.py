"""``trialcast funnel``: the trial funnel by signup cohort, motion and segment."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from trialcast.cli_common import console, fail, load_config_or_exit, say


def funnel_command(
    config: Annotated[Path, typer.Option("--config", "-c", help="Company config (TOML).")],
    as_of: Annotated[
        str | None,
        typer.Option(
            help="Funnel moment (ISO 8601; only data known then; default: the export time)."
        ),
    ] = None,
    by: Annotated[str, typer.Option(help="Signup cohorts by 'week' or 'month'.")] = "week",
    out: Annotated[
        Path | None,
        typer.Option(
            help="Also write the long table here (.csv or .parquet) with a .png beside it."
        ),
    ] = None,
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow tracking URI.")] = None,
) -> None:
    """Per signup cohort: share of trials reaching each stage (signup, checklist, PQL, paid),
    median days, stage-to-stage conversion, change flags, and the champion's expected
    paid share for cohorts still deciding; self-serve and sales-assisted side by side."""
    import pandas as pd

    from features.config import ConfigError
    from features.loaders import load_tables
    from features.validation import InputError
    from models.loader import ModelUnavailableError, load_serving_model
    from serving.batch import export_now
    from trialcast.funnel_job import check_out_file, run_funnel
    from trialcast.funnel_summary import print_funnel_summary
    from trialcast.no_champion import missing_model_message

    cfg = load_config_or_exit(config)
    if by not in ("week", "month"):
        fail(f"--by: cohorts are by 'week' or 'month', not {by!r}")
    try:
        check_out_file(out)
    except ValueError as exc:
        fail(str(exc))
    try:
        moment = pd.Timestamp(as_of) if as_of else None
    except ValueError:
        fail(f"--as-of: not a date/time: {as_of!r}")
    if moment is not None and moment.tzinfo is not None:
        moment = moment.tz_convert("UTC").tz_localize(None)
    with console.status("Loading and checking the tables..."):
        try:
            tables = load_tables(cfg).tables
        except InputError as exc:
            fail(str(exc))
    moment = moment if moment is not None else export_now(cfg, tables)
    model, note = None, missing_model_message(cfg, tracking_uri=tracking_uri)
    if note is None:
        with console.status("Loading the champion model..."):
            try:
                model = load_serving_model(cfg, "conversion", tracking_uri=tracking_uri)
            except ModelUnavailableError as exc:
                note = str(exc)
    with console.status("Counting the funnel by cohort..."):
        try:
            result = run_funnel(cfg, tables, as_of=moment, by=by, model=model, out_file=out)
        except (ConfigError, ValueError) as exc:
            fail(str(exc))
    print_funnel_summary(result, console)
    if note is not None:
        say(f"  note: no expected paid share for open cohorts: {note}")
