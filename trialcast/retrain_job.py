"""``trialcast retrain``: the scheduled retraining job (see docs/retraining.md).

Wire it with ``app.command("retrain")(retrain_command)``. Exit codes: 0 when the job
ran to a decision (promoted, kept, unchanged) or found another retrain running
(busy: nothing done, the running job decides), or, with ``--when-needed``, kept a
healthy champion; 1 when every kind was refused for too little data; 2 on bad
config / input or an error (the champions are untouched); 3 when ``--when-needed``
refused because the monitor found the data broken.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:  # the heavy modules load only when the command runs
    from training.retrain_decision import RetrainDecision

console = Console(markup=False)  # messages keep their [brackets] (see cli_common)
err = Console(stderr=True, markup=False)

STATUS_STYLE = {
    "promoted": "bold green",
    "kept": "yellow",
    "unchanged": "cyan",
    "busy": "cyan",
    "refused": "red",
    "failed": "bold red",
}


def _num(x: float | None, fmt: str = ".4f") -> str:
    return "-" if x is None else format(x, fmt)


def print_retrain_decision(decision: RetrainDecision, out: Console = console) -> None:
    """The decision as a short status line plus a table per model kind."""
    style = STATUS_STYLE.get(decision.status, "bold")
    out.print(Text.assemble((decision.status, style), f"  retrain {decision.retrain_id}"))
    if decision.status == "busy":
        out.print(decision.message, markup=False)
        return
    if decision.kinds:
        table = Table(show_header=True, header_style="bold")
        for col in (
            "kind",
            "action",
            "champion",
            "new",
            "LL new",
            "LL champ.",
            "gain",
            "holdout",
        ):
            table.add_column(col)
        for kd in decision.kinds.values():
            champion = kd.champion_before or "-"
            if kd.champion_after != kd.champion_before:
                champion = f"{kd.champion_before or '-'} -> {kd.champion_after}"
            table.add_row(
                kd.kind,
                kd.action,
                champion,
                kd.challenger_version or "-",
                _num(kd.challenger_log_loss),
                _num(kd.champion_log_loss),
                _num(kd.log_loss_gain, "+.4f"),
                f"{kd.holdout_rows:,}" if kd.holdout_rows else "-",
            )
        out.print(table)
        for kd in decision.kinds.values():
            out.print(Text.assemble((kd.kind, "bold"), ": "), end="")
            out.print(kd.reason, markup=False, highlight=False)
    if decision.run_id:
        out.print(f"MLflow run {decision.run_id} ({decision.tracking_uri})", markup=False)
    if decision.decision_path:
        out.print(f"decision file {decision.decision_path}", markup=False)
    total = decision.seconds.get("total")
    if total is not None:
        out.print(f"retrain took {total:.1f} s", style="dim")


def retrain_command(
    config: Annotated[Path, typer.Option("--config", "-c", help="Company config (TOML).")],
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow tracking URI.")] = None,
    kind: Annotated[
        list[str] | None, typer.Option(help="Which model(s): conversion, churn (default both).")
    ] = None,
    wait: Annotated[
        float,
        typer.Option(
            min=0,
            help="Seconds to wait for a running retrain to finish (default 0: exit at once).",
        ),
    ] = 0.0,
    lock_file: Annotated[
        Path | None, typer.Option(help="Lock file (default models/retrain-<registry>.lock).")
    ] = None,
    as_of: Annotated[
        str | None, typer.Option(help="The data's 'now' (ISO 8601); default: the latest event.")
    ] = None,
    truth: Annotated[
        Path | None, typer.Option(help="Truth file (demo data) to report the ceiling.")
    ] = None,
    when_needed: Annotated[
        bool,
        typer.Option(
            "--when-needed",
            help="Run the monitor first: retrain on shifted outcomes or inputs or an old "
            "champion, keep a healthy one, refuse on broken data (exit 3).",
        ),
    ] = False,
    max_age_days: Annotated[
        float, typer.Option(min=0, help="With --when-needed: retrain a champion older than this.")
    ] = 90.0,
) -> None:
    """Retrain on fresh data; promote the challenger only if it beats the champion."""
    import pandas as pd

    from features.loaders import load_tables
    from features.validation import InputError
    from training.retrain import RetrainOptions, run_retrain
    from trialcast.cli_common import load_config_or_exit, parse_moment

    cfg = load_config_or_exit(config)
    moment = parse_moment(as_of)
    truth_path = truth if truth is not None else config.parent / "truth.parquet"
    truth_frame = pd.read_parquet(truth_path) if truth_path.exists() else None
    loader = lambda: load_tables(cfg).tables  # noqa: E731
    if when_needed:
        from trialcast.monitor_job import retrain_need_gate

        needed = retrain_need_gate(
            cfg, as_of=as_of, tracking_uri=tracking_uri, max_age_days=max_age_days
        )
        loader = lambda: needed  # noqa: E731
    try:
        decision = run_retrain(
            cfg,
            loader,
            now=moment,
            kinds=tuple(kind) if kind else ("conversion", "churn"),
            options=RetrainOptions(
                tracking_uri=tracking_uri,
                lock_path=lock_file,
                wait_seconds=wait,
                truth=truth_frame,
                progress=lambda msg: console.print(msg, style="dim", highlight=False),
            ),
        )
    except InputError as exc:
        err.print(Text.assemble(("error:", "bold red"), f" {exc}"))
        raise typer.Exit(code=2) from exc
    except Exception as exc:
        err.print(Text.assemble(("retrain failed:", "bold red"), f" {type(exc).__name__}: {exc}"))
        err.print("The champion aliases were not touched by the failed step.")
        raise typer.Exit(code=2) from exc
    print_retrain_decision(decision)
    if decision.status == "refused":
        raise typer.Exit(code=1)
