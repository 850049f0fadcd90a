"""Printing lead types' observed chances beside the seed's stated ones."""

from __future__ import annotations

import pandas as pd
from rich.console import Console
from rich.table import Table
from rich.text import Text


def print_persona_rates(rates: pd.DataFrame, console: Console, *, title: str = "") -> None:
    """One row per lead type: trials, stated chance, observed rate (95% CI), and a note
    where the data contradicts the type's playbook (``training.persona_rates``)."""
    view = Table(title=title or "Lead types: stated chance vs observed in the training window")
    for col in ("lead type", "trials", "stated", "observed (95% CI)", "note"):
        view.add_column(col, justify="left" if col in ("lead type", "note") else "right")
    for r in rates.to_dict("records"):
        observed = f"{r['observed']:.0%} ({r['low']:.0%}-{r['high']:.0%})" if r["trials"] else "-"
        note = str(r["note"])
        style = "bold red" if note.startswith("contradicts") else ""
        view.add_row(
            str(r["persona"]),
            f"{int(r['trials']):,}",
            f"{r['stated']:.0%}",
            observed,
            Text(note, style=style),
        )
    console.print(view)
