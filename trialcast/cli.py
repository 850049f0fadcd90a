"""The ``trialcast`` command: the composition root that wires the packages to files.

Subcommands are thin: they parse options, call one job function and print what
it produced. All logic lives in ``features``, ``training`` and ``serving``.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.text import Text

from features.config import demo_config_text, starter_config_text
from trialcast.cli_common import (
    console,
    fail,
    fail_without_labels,
    load_config_or_exit,
    parse_moment,
    say,
    stop,
)
from trialcast.cli_dask import dask_app
from trialcast.cli_forecast import backtest_command, forecast_command
from trialcast.cli_funnel import funnel_command
from trialcast.milestones_job import milestones_command
from trialcast.monitor_job import monitor_command
from trialcast.retrain_job import retrain_command

app = typer.Typer(
    help="trialcast: which trials convert, which customers churn, why, and what it means for revenue.",
    no_args_is_help=True,
    add_completion=False,
)

if TYPE_CHECKING:
    from features.demo.generator import DemoData

DEFAULT_DEMO_DIR = Path("data/demo")


@app.callback()
def _startup(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show library log lines and warnings.")
    ] = False,
) -> None:
    """trialcast: which trials convert, which customers churn, why, and what it means for revenue."""
    from trialcast.runtime import disable_telemetry, passive_openmp_when_busy, quiet_libraries

    disable_telemetry()
    passive_openmp_when_busy()
    quiet_libraries(verbose)


@app.command("demo-data")
def demo_data(
    out: Annotated[
        Path, typer.Option(help="Folder to write the demo tables into.")
    ] = DEFAULT_DEMO_DIR,
    accounts: Annotated[int, typer.Option(min=10, help="Number of trial accounts.")] = 10_000,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same data).")] = 0,
    trial_days: Annotated[
        str, typer.Option(help="Trial lengths in days, comma-separated.")
    ] = "14,30",
    in_trial_share: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Share of conversions during the trial.")
    ] = 0.35,
    after_trial_beta: Annotated[
        str, typer.Option(help="Beta(a,b) of post-trial lags over the window, 'a,b'.")
    ] = "1.0,3.5",
    scenario: Annotated[
        str,
        typer.Option(
            help="What changes from --scenario-date: none, pricing (conversion log-odds -0.8), "
            "onboarding (behaviour mix shifts, outcome law unchanged), tracking (an event type "
            "stops being logged). See docs/monitoring.md."
        ),
    ] = "none",
    scenario_date: Annotated[
        str | None,
        typer.Option(help="When the scenario starts (ISO date; default 8 weeks before export)."),
    ] = None,
    scenario_event: Annotated[
        str | None,
        typer.Option(help="The event type a tracking break silences (default: the aha event)."),
    ] = None,
) -> None:
    """Generate the demo company's tables (events, accounts, communications) and its truth file."""
    from features.demo.generator import generate_demo_data, write_demo_data
    from features.demo.latent import DemoConversionLags

    lengths = tuple(int(x) for x in trial_days.split(",") if x.strip())
    try:
        a_after, b_after = (float(x) for x in after_trial_beta.split(","))
    except ValueError:
        fail(f"--after-trial-beta: expected two numbers 'a,b', got {after_trial_beta!r}")
    lags = DemoConversionLags(in_trial_share=in_trial_share, a_after=a_after, b_after=b_after)
    with console.status(f"Generating {accounts:,} demo accounts..."):
        demo = generate_demo_data(accounts, seed=seed, trial_days=lengths, conversion_lags=lags)
        demo = _with_scenario(demo, scenario, scenario_date, scenario_event)
        paths = write_demo_data(demo, out)
    config_path = out / "trialcast.toml"
    config_path.write_text(demo_config_text())
    console.print(
        f"Wrote {len(demo.tables.accounts):,} accounts, {len(demo.tables.events):,} events, "
        f"{0 if demo.tables.communications is None else len(demo.tables.communications):,} messages"
    )
    for name, path in {**paths, "config": config_path}.items():
        console.print(f"  {name:<16} {path}")


def _with_scenario(demo: DemoData, scenario: str, date: str | None, event: str | None) -> DemoData:
    """``demo`` with a model-health scenario applied, or a clean exit on a bad option."""
    import pandas as pd

    from features.demo.scenarios import SCENARIOS, apply_scenario

    if scenario not in SCENARIOS:
        fail(f"--scenario: {scenario!r} is not one of {', '.join(SCENARIOS)}")
    export = pd.Timestamp(demo.truth.attrs["export_time"])
    try:
        since = pd.Timestamp(date) if date else export - pd.Timedelta(weeks=8)
        return apply_scenario(demo, scenario, since=since, event=event)
    except ValueError as exc:
        fail(f"--scenario {scenario}: {exc}")


@app.command("init-config")
def init_config(
    path: Annotated[Path, typer.Argument(help="Where to write the starter config (TOML).")],
    force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
) -> None:
    """Write a starter company config (every section, commented) to edit for your data."""
    if path.exists() and not force:
        fail(f"{path} exists; pass --force to overwrite")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(starter_config_text())
    say(
        f"Wrote {path}; edit [sources], the milestones and the PQL rule, then run "
        f"`trialcast check-config {path}`"
    )


@app.command("check-config")
def check_config(
    path: Annotated[
        Path | None, typer.Argument(help="Company config (TOML); or give it with -c.")
    ] = None,
    config_option: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="Company config (TOML), as every other command."),
    ] = None,
    data: Annotated[
        bool,
        typer.Option(
            "--data",
            help="Also load the data: check every event name and PQL feature against it "
            "and scan for leaks (outcome events, post-purchase columns).",
        ),
    ] = False,
) -> None:
    """Check a company config and print what it says (with --data: against the data too)."""
    from features.config_check import pql_rule_note

    if path is not None and config_option is not None and path != config_option:
        fail(f"two configs given ({path} and -c {config_option}): give one")
    path = path or config_option
    if path is None:
        fail("give the company config: trialcast check-config -c CONFIG [--data]")
    config = load_config_or_exit(path)
    console.print(
        Text.assemble(
            ("ok", "green"), f" {path}: company {config.company!r}, hash {config.config_hash()}"
        )
    )
    say(f"  milestones: {', '.join(m.name for m in config.activation.milestones) or 'none'}")
    say(f"  core events: {', '.join(config.engagement.core_events) or 'none'}")
    say(f"  {pql_rule_note(config)}")
    say(f"  outputs under: {config.run_output_root}")
    if data:
        from trialcast.config_data import check_config_data

        check_config_data(config)


@app.command("features")
def features_cmd(
    config: Annotated[Path, typer.Option("--config", "-c", help="Company config (TOML).")],
    out: Annotated[
        Path | None, typer.Option(help="Output folder (default: <output root>/features).")
    ] = None,
    as_of: Annotated[
        str | None, typer.Option(help="Cutoff (ISO 8601); default: the latest event.")
    ] = None,
    no_training_sets: Annotated[bool, typer.Option(help="Only the account features.")] = False,
    list_features: Annotated[
        bool, typer.Option("--list", help="Print the feature names this config builds and stop.")
    ] = False,
) -> None:
    """Load and check the tables, build point-in-time features and the training sets."""

    from features.config import ConfigError
    from features.pipeline import run_feature_pipeline
    from features.validation import InputError
    from trialcast.summary import print_feature_summary

    cfg = load_config_or_exit(config)
    moment = parse_moment(as_of)
    if list_features:
        from trialcast.config_data import list_feature_names

        list_feature_names(cfg)
        return
    target = out if out is not None else cfg.run_output_root / "features"
    try:
        with console.status("Loading, validating and building features..."):
            result = run_feature_pipeline(
                cfg,
                target,
                as_of=moment,
                training_sets=not no_training_sets,
            )
    except (InputError, ConfigError) as exc:
        fail(str(exc))
    print_feature_summary(result, console)


@app.command("train")
def train(
    config: Annotated[Path, typer.Option("--config", "-c", help="Company config (TOML).")],
    tune: Annotated[bool, typer.Option(help="Run an Optuna search before the final fit.")] = False,
    force_feature: Annotated[
        list[str] | None, typer.Option(help="Keep a feature even if flagged as leaky.")
    ] = None,
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow tracking URI.")] = None,
    kind: Annotated[
        list[str] | None, typer.Option(help="Which model(s): conversion, churn (default both).")
    ] = None,
    truth: Annotated[
        Path | None, typer.Option(help="Truth file (demo data) to report the ceiling.")
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option(help="Train as on this date (ISO 8601): later data is invisible."),
    ] = None,
) -> None:
    """Train, evaluate, log (MLflow) and register the conversion and churn models."""
    import pandas as pd

    from features.loaders import load_tables
    from features.validation import InputError
    from training.guards import NotEnoughDataError
    from trialcast.train_summary import print_train_summary

    cfg = load_config_or_exit(config)
    truth_path = truth if truth is not None else config.parent / "truth.parquet"
    truth_frame = pd.read_parquet(truth_path) if truth_path.exists() else None
    try:
        with console.status("Loading and validating the tables..."):
            tables = load_tables(cfg).tables
        fail_without_labels(tables.accounts)
        moment = pd.Timestamp(as_of) if as_of else None
        if moment is not None:  # replay: the export as it stood then
            from trialcast.backtest import truncate_tables

            tables = truncate_tables(tables, moment)
        from training.recipe import RecipeOptions
        from training.train import KINDS, RecordTarget, train_models

        result = train_models(
            cfg,
            tables,
            kinds=tuple(kind) if kind else tuple(KINDS),
            export_time=moment,
            options=RecipeOptions(
                tune=tune,
                force_features=tuple(force_feature or ()),
                truth=truth_frame,
                show_progress=tune,
                progress=lambda msg: say(msg, style="dim"),
            ),
            target=RecordTarget(tracking_uri=tracking_uri),
        )
    except (InputError, NotEnoughDataError, ValueError) as exc:
        fail(str(exc))
    print_train_summary(result, console)


@app.command("promote")
def promote_cmd(
    config: Annotated[Path, typer.Option("--config", "-c", help="Company config (TOML).")],
    kind: Annotated[str, typer.Option(help="conversion or churn.")] = "conversion",
    version: Annotated[
        int | None, typer.Option(help="Version to promote (default: challenger).")
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            help="Promote a 'promoted' version even if it did not beat the champion "
            "(never overrides the verdict)."
        ),
    ] = False,
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow tracking URI.")] = None,
) -> None:
    """Move the ``champion`` alias to a registered version whose verdict is ``promoted``;
    exits non-zero when it refuses."""
    from training.registry import promote

    cfg = load_config_or_exit(config)
    outcome = promote(cfg, kind, version=version, tracking_uri=tracking_uri, force=force)
    if not outcome.promoted:
        fail(outcome.reason)
    say(outcome.reason)


@app.command("score")
def score(
    config: Annotated[Path, typer.Option("--config", "-c", help="Company config (TOML).")],
    out: Annotated[
        Path | None, typer.Option(help="Scores Parquet (default: models/scores/latest.parquet).")
    ] = None,
    as_of: Annotated[
        str | None, typer.Option(help="Scoring moment (default: the export time).")
    ] = None,
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow tracking URI.")] = None,
    alias: Annotated[
        str | None, typer.Option(help="Registry alias to load (default: champion).")
    ] = None,
    allow_before_trial_end: Annotated[
        bool,
        typer.Option(
            "--allow-before-trial-end",
            help="Let a trial-end model (feature table without as_of) score running trials.",
        ),
    ] = False,
) -> None:
    """Batch-score the open trials with the champion model and its reasons (the sales snapshot)."""
    from features.validation import InputError
    from serving.open_trials import NO_OPEN_TRIAL_EXIT, NoOpenTrialError
    from trialcast.no_champion import missing_model_message
    from trialcast.serve_job import ModelSource, run_score_job

    cfg = load_config_or_exit(config)
    moment = parse_moment(as_of)
    missing = missing_model_message(cfg, tracking_uri=tracking_uri, alias=alias)
    if missing:
        fail(missing)
    try:
        with console.status("Scoring open trials with explanations..."):
            result = run_score_job(
                cfg,
                out=out,
                as_of=moment,
                allow_before_trial_end=allow_before_trial_end or None,
                source=ModelSource(tracking_uri=tracking_uri, alias=alias),
            )
    except InputError as exc:
        fail(str(exc))
    except NoOpenTrialError as exc:
        stop(str(exc), NO_OPEN_TRIAL_EXIT)
    console.print(
        f"Scored {result.n_accounts:,} open trials as of {result.as_of} with {result.models}"
    )
    for note in result.notes:
        console.print(f"  note: {note}", markup=False)
    console.print(f"  scores {result.path}")
    if result.closed_path is not None:
        console.print(
            f"  closed {result.closed_path} ({result.n_closed:,} trials past their window: p = 0)"
        )


@app.command("serve")
def serve(
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="Company config (TOML).")
    ] = None,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 3000,
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow tracking URI.")] = None,
    alias: Annotated[str | None, typer.Option(help="Registry alias to serve.")] = None,
    scores: Annotated[
        Path | None, typer.Option(help="Batch-scored snapshot for lookups and the sales view.")
    ] = None,
) -> None:
    """Start the BentoML scoring service and sales view (needs TRIALCAST_API_TOKEN).

    Without ``-c`` the config named by ``TRIALCAST_CONFIG`` is used (its output
    folder holds the models), else the demo config. Exits with code 2 and the
    reason when there is no model to serve; when the registry is down, starts from
    the last served (cached) model.
    """
    import os

    from features.config import load_demo_config
    from serving.preflight import check_startup
    from trialcast.serve_job import ENV_CONFIG, run_serve

    if config is None and os.environ.get(ENV_CONFIG):
        config = Path(os.environ[ENV_CONFIG])
    cfg = load_config_or_exit(config) if config is not None else load_demo_config()
    with console.status("Checking the model registry..."):
        check = check_startup(cfg, alias=alias, tracking_uri=tracking_uri)
    if check.problem:
        if check.no_alias:  # say why nothing is champion: the last version's verdict
            from trialcast.no_champion import missing_model_message

            fail(
                missing_model_message(cfg, tracking_uri=tracking_uri, alias=alias) or check.problem
            )
        fail(check.problem)
    if check.registry_down:
        say(f"warning: the model registry is down ({check.detail}); serving the cached model")
        os.environ["TRIALCAST_REGISTRY_WAIT"] = "0"  # the workers need not wait again
    raise typer.Exit(
        code=run_serve(
            config_path=config,
            host=host,
            port=port,
            tracking_uri=tracking_uri,
            alias=alias,
            scores_path=scores,
        )
    )


app.command("backtest")(backtest_command)
app.command("forecast")(forecast_command)
app.command("retrain")(retrain_command)
app.command("milestones")(milestones_command)
app.command("monitor")(monitor_command)
app.command("funnel")(funnel_command)
app.add_typer(dask_app, name="dask")


@app.command("demo")
def demo(
    out: Annotated[Path, typer.Option(help="Folder for demo data and outputs.")] = DEFAULT_DEMO_DIR,
    accounts: Annotated[int, typer.Option(min=10, help="Number of trial accounts.")] = 10_000,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    fresh: Annotated[bool, typer.Option(help="Regenerate the demo data even if present.")] = False,
) -> None:
    """The main job on the bundled demo company: data, features, models, summary."""
    if fresh and out.exists():
        shutil.rmtree(out)
    if not (out / "events.parquet").exists():
        demo_data(out=out, accounts=accounts, seed=seed, trial_days="14,30")
    features_cmd(
        config=out / "trialcast.toml", out=out / "features", as_of=None, no_training_sets=False
    )
    console.rule("Models")
    train(
        config=out / "trialcast.toml",
        tune=False,
        force_feature=None,
        tracking_uri=None,
        kind=None,
        truth=out / "truth.parquet",
    )


@app.command("benchmark-features")
def benchmark_features(
    events: Annotated[
        str, typer.Option(help="Event counts to run, comma-separated (1M = 1000000).")
    ] = "1M,5M,20M",
    repeats: Annotated[int, typer.Option(min=1, help="Runs per size (median reported).")] = 3,
    work_dir: Annotated[Path, typer.Option(help="Where to keep the generated data.")] = Path(
        "data/bench"
    ),
) -> None:
    """Feature building throughput and peak memory vs a hand-written DuckDB query."""
    from trialcast.bench.features import run_feature_benchmark

    sizes = [_parse_count(x) for x in events.split(",") if x.strip()]
    run_feature_benchmark(sizes, repeats=repeats, work_dir=work_dir, console=console)


@app.command("benchmark-training")
def benchmark_training(
    accounts: Annotated[str, typer.Option(help="Demo sizes, comma-separated.")] = "10K,100K",
    seed: Annotated[int, typer.Option(help="Demo data seed.")] = 0,
    out: Annotated[Path, typer.Option(help="Where to write the raw results.")] = Path(
        "data/bench/training.json"
    ),
) -> None:
    """Training time and test metrics vs baselines and the truth ceiling on demo data."""
    from trialcast.bench.training import run_training_benchmark

    sizes = [_parse_count(x) for x in accounts.split(",") if x.strip()]
    run_training_benchmark(sizes, seed=seed, out=out, console=console)


def _parse_count(text: str) -> int:
    text = text.strip().upper()
    scale = {"K": 1_000, "M": 1_000_000}.get(text[-1], 1)
    return int(float(text.rstrip("KM")) * scale)


def main() -> None:  # pragma: no cover - console entry
    sys.exit(app())


if __name__ == "__main__":  # pragma: no cover
    app()
