"""``trialcast milestones``: which actions predict conversion, and a checklist to paste.

Wire it with ``app.command("milestones")(milestones_command)``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:  # the heavy modules load only when the command runs
    from training.milestones import MilestoneDiscovery

console = Console()
err = Console(stderr=True)


def _deadline(days: float) -> str:
    return "trial end" if math.isnan(days) else f"day {days:g}"


def print_milestone_ranking(
    discovery: MilestoneDiscovery, *, top: int = 15, out: Console = console
) -> None:
    """The top candidates by lift (with their model importance rank)."""
    table = Table(
        title=(
            f"Milestone candidates: {discovery.n_trials:,} closed trials, "
            f"{discovery.base_rate:.1%} converted"
        ),
        header_style="bold",
    )
    for col in (
        "#",
        "event",
        "min",
        "by",
        "reached",
        "conv. if reached",
        "conv. if not",
        "lift (95% CI)",
        "median day",
        "importance (rank)",
    ):
        table.add_column(col, justify="left" if col == "event" else "right")
    for row in discovery.top(top).to_dict("records"):
        table.add_row(
            str(row["lift_rank"]),
            str(row["event"]),
            str(row["min_count"]),
            _deadline(row["deadline_days"]),
            f"{row['reached']:,} ({row['reached_share']:.0%})",
            f"{row['rate_reached']:.1%}",
            f"{row['rate_not_reached']:.1%}",
            f"{row['lift']:.2f} ({row['lift_low']:.2f}-{row['lift_high']:.2f})",
            f"{row['median_day']:.1f}",
            f"{row['importance']:.3f} ({row['importance_rank']})",
        )
    out.print(table)


def milestones_command(
    config: Annotated[Path, typer.Option("--config", "-c", help="Company config (TOML).")],
    top: Annotated[int, typer.Option(min=1, help="How many candidates to list.")] = 15,
    max_steps: Annotated[int, typer.Option(min=1, help="Longest checklist to propose.")] = 7,
    exclude: Annotated[
        list[str] | None,
        typer.Option(help="Event type never to propose (repeat), e.g. background page views."),
    ] = None,
    as_of: Annotated[
        str | None, typer.Option(help="The data's 'now' (ISO 8601); default: the latest event.")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Also write the checklist TOML snippet to this file.")
    ] = None,
) -> None:
    """Rank milestone candidates by conversion lift and propose an activation checklist."""
    import pandas as pd

    from features.config import ConfigError
    from features.loaders import load_tables
    from features.validation import InputError
    from training.milestones import discover_milestones
    from trialcast.cli_common import load_config_or_exit

    try:
        cfg = load_config_or_exit(config)
        with console.status("Loading the tables and scoring milestone candidates..."):
            discovery = discover_milestones(
                cfg,
                load_tables(cfg).tables,
                now=pd.Timestamp(as_of) if as_of else None,
                exclude_events=tuple(exclude or ()),
                max_steps=max_steps,
            )
    except (ConfigError, InputError, ValueError) as exc:
        err.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(code=2) from exc
    print_milestone_ranking(discovery, top=top)
    snippet = discovery.toml(cfg.company)
    console.rule("Proposed checklist (paste into your config)")
    console.print(snippet, markup=False, highlight=False, soft_wrap=True)
    if out is not None:
        out.write_text(snippet)
        console.print(f"wrote {out}", markup=False)
    console.print(f"[dim]milestone discovery took {discovery.seconds:.1f} s[/]")
