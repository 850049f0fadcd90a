"""``trialcast monitor``: is the champion still right? (docs/monitoring.md).

Wire it with ``app.command("monitor")(monitor_command)``. Exit codes: 0 when
healthy or too early to tell, 1 on an alert (inputs shifted, outcomes shifted,
data broken), 2 on an error (bad config or input, no champion, registry down).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.text import Text

from trialcast.cli_common import console, fail, load_config_or_exit, say

if TYPE_CHECKING:
    from features.config import CompanyConfig
    from features.tables import Tables
    from trialcast.monitoring.job import MonitorReport

VERDICT_STYLE = {
    "healthy": "bold green",
    "too early to tell": "cyan",
    "inputs shifted": "yellow",
    "outcomes shifted": "bold red",
    "data broken": "bold red",
}


def print_report(report: MonitorReport, path: Path) -> None:
    """The verdict, its alerts and the cohorts in a few lines."""
    from models.kinds import model_kind

    style = VERDICT_STYLE.get(report.verdict.value, "bold")
    console.print(Text.assemble((report.verdict.value, style), f"  as of {report.as_of}"))
    for alert in report.alerts:
        say(f"  [{alert.kind.value}] {alert.subject}: {alert.evidence}")
    for note in report.notes:
        say(f"  note: {note}", style="dim")
    for kind, health in report.kinds.items():
        say(
            f"  {kind} v{health.champion.version} (trained at {health.champion.trained_at}): "
            f"{health.test.evidence(model_kind(kind).counted)}"
        )
    say(f"report {path}")


def monitor_command(
    config: Annotated[Path, typer.Option("--config", "-c", help="Company config (TOML).")],
    as_of: Annotated[
        str | None,
        typer.Option(help="Judge as on this date (ISO 8601): later data is invisible."),
    ] = None,
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow tracking URI.")] = None,
) -> None:
    """Judge each champion on the data known at --as-of; write monitoring/<as_of>.json."""
    import pandas as pd

    from features.config import ConfigError
    from features.loaders import load_tables
    from features.validation import InputError
    from models.kinds import KINDS
    from models.settings import output_root, resolve_tracking_uri
    from training.tracking import use_tracking_uri
    from trialcast.monitoring.champion import load_champion
    from trialcast.monitoring.job import run_monitor, write_report
    from trialcast.monitoring.record import record_monitor_run

    cfg = load_config_or_exit(config)
    try:
        moment = pd.Timestamp(as_of) if as_of else None
    except ValueError:
        fail(f"--as-of: not a date: {as_of!r} (use ISO 8601, e.g. 2026-03-02)")
    uri = resolve_tracking_uri(cfg, tracking_uri)
    try:
        with console.status("Loading and validating the tables..."):
            loaded = load_tables(cfg)
        rep = loaded.report
        quarantined = {t: len(f) for t, f in rep.quarantine.items()}
        with use_tracking_uri(uri) as client:
            champions = {
                kind: champ
                for kind in KINDS
                if (champ := load_champion(client, cfg, kind)) is not None
            }
            with console.status("Scoring cohorts, testing outcomes, drift and data..."):
                report = run_monitor(
                    cfg,
                    loaded.tables,
                    champions,
                    as_of=moment,
                    rows_in=dict(rep.rows_in),
                    rows_quarantined=quarantined,
                )
            path = write_report(report, output_root())
            run_id = record_monitor_run(client, cfg, report, tracking_uri=uri)
    except (InputError, ConfigError, ValueError) as exc:
        fail(str(exc))
    except Exception as exc:  # registry down, unreadable model: an error, not an alert
        fail(f"monitor failed: {type(exc).__name__}: {exc}")
    print_report(report, path)
    say(f"MLflow run {run_id} ({uri})", style="dim")
    raise typer.Exit(code=report.verdict.exit_code)


def retrain_need_gate(
    config: CompanyConfig, *, as_of: str | None, tracking_uri: str | None, max_age_days: float
) -> Tables:
    """``retrain --when-needed``'s first step: the monitor's verdict decides.

    Returns the loaded tables when a retrain is needed; otherwise prints why and
    exits: 0 when the champion is kept, ``EXIT_DATA_BROKEN`` (3) on broken data.
    """
    import pandas as pd

    from features.loaders import load_tables
    from features.validation import InputError
    from models.settings import output_root, resolve_tracking_uri
    from training.tracking import use_tracking_uri
    from trialcast.monitoring.need import EXIT_DATA_BROKEN, NeedAction, assess_need

    uri = resolve_tracking_uri(config, tracking_uri)
    try:
        tables = load_tables(config).tables
        with use_tracking_uri(uri) as client:
            need, _ = assess_need(
                client,
                config,
                tables,
                as_of=pd.Timestamp(as_of) if as_of else None,
                output_root=output_root(),
                max_age_days=max_age_days,
            )
    except (InputError, ValueError) as exc:
        fail(str(exc))
    say(f"when needed: {need.reason}")
    if need.action is NeedAction.REFUSE:
        raise typer.Exit(code=EXIT_DATA_BROKEN)
    if need.action is NeedAction.KEEP:
        raise typer.Exit(code=0)
    return tables
