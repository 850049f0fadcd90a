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
from rich.text import Text

if TYPE_CHECKING:  # the heavy modules load only when the command runs
    from training.milestones import MilestoneDiscovery

console = Console(markup=False)  # messages keep their [brackets] (see cli_common)
err = Console(stderr=True, markup=False)


def _deadline(days: float) -> str:
    return "trial end" if math.isnan(days) else f"day {days:g}"


def print_milestone_ranking(
    discovery: MilestoneDiscovery, *, top: int = 15, out: Console = console
) -> None:
    """The top candidates by what they add given overall activity (raw lift beside it)."""
    table = Table(
        title=(
            f"Milestone candidates: {discovery.n_trials:,} closed trials, "
            f"{discovery.base_rate:.1%} converted; ranked by lift among equally active trials"
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
        "adjusted lift (95% CI)",
        "raw lift",
        "median day",
        "importance (rank)",
    ):
        table.add_column(col, justify="left" if col == "event" else "right")
    for row in discovery.top(top).to_dict("records"):
        table.add_row(
            str(row["rank"]),
            str(row["event"]),
            str(row["min_count"]),
            _deadline(row["deadline_days"]),
            f"{row['reached']:,} ({row['reached_share']:.0%})",
            f"{row['rate_reached']:.1%}",
            f"{row['rate_not_reached']:.1%}",
            f"{row['adj_lift']:.2f} ({row['adj_lift_low']:.2f}-{row['adj_lift_high']:.2f})",
            f"{row['lift']:.2f}",
            f"{row['median_day']:.1f}",
            f"{row['importance']:.3f} ({row['importance_rank']})",
        )
    out.print(table)
    for row in discovery.checklist_rows.to_dict("records"):
        out.print(Text.assemble((row["stage"], "bold"), f": {row['event']}. {row['why']}"))
    if discovery.left_out:
        out.print(Text.assemble(("Left out", "bold"), ":"))
        for line in discovery.left_out:
            out.print(f"  {line}", markup=False, highlight=False)
    if discovery.excluded:
        out.print(f"Never scored (leak exclusions): {', '.join(discovery.excluded)}", markup=False)
    out.print(discovery.verdict, markup=False, highlight=False)


def milestones_command(
    config: Annotated[Path, typer.Option("--config", "-c", help="Company config (TOML).")],
    top: Annotated[int, typer.Option(min=1, help="How many candidates to list.")] = 15,
    max_steps: Annotated[int, typer.Option(min=1, help="Longest checklist to propose.")] = 7,
    exclude: Annotated[
        list[str] | None,
        typer.Option(
            help="Event type never to score (repeat), e.g. an outcome such as Invoice Paid."
        ),
    ] = None,
    as_of: Annotated[
        str | None, typer.Option(help="The data's 'now' (ISO 8601); default: the latest event.")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Also write the checklist TOML snippet to this file.")
    ] = None,
) -> None:
    """Rank milestone candidates by what they add beyond activity and propose a checklist."""
    import pandas as pd

    from features.build import FeatureBuilder
    from features.config import ConfigError
    from features.loaders import load_tables
    from features.validation import InputError
    from training.milestones import MilestoneRules, discover_milestones
    from training.pql_rule import propose_pql_for_company
    from trialcast.cli_common import fail_without_labels, load_config_or_exit

    try:
        cfg = load_config_or_exit(config)
        with console.status("Loading the tables and scoring milestone candidates..."):
            tables = load_tables(cfg).tables
            fail_without_labels(tables.accounts)
            builder = FeatureBuilder.from_tables(tables, cfg)
            discovery = discover_milestones(
                cfg,
                builder,
                now=pd.Timestamp(as_of) if as_of else None,
                exclude_events=tuple(exclude or ()),
                rules=MilestoneRules(max_steps=max_steps),
            )
        pql = None
        if not cfg.pql.conditions:  # no rule means no PQLs: propose one from the data
            with console.status("No PQL rule in the config: proposing one from the data..."):
                pql = propose_pql_for_company(builder, discovery)
    except (ConfigError, InputError, ValueError) as exc:
        err.print(Text.assemble(("error:", "bold red"), f" {exc}"))
        raise typer.Exit(code=2) from exc
    print_milestone_ranking(discovery, top=top)
    snippet = discovery.toml(cfg.company)
    console.rule("Proposed checklist (paste into your config)")
    console.print(snippet, markup=False, highlight=False, soft_wrap=True)
    if pql is not None:
        console.rule("Proposed PQL rule (your config has none, so nobody is a PQL yet)")
        console.print(pql.toml(), markup=False, highlight=False, soft_wrap=True)
        snippet += "\n" + pql.toml()
    if out is not None:
        out.write_text(snippet)
        console.print(f"wrote {out}", markup=False)
    console.print(f"milestone discovery took {discovery.seconds:.1f} s", style="dim")
