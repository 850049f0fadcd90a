"""The backtest's judgement lines: phases, interval honesty, count and value vs the oracle.

Printed by ``trialcast backtest`` under the cohort table (``trialcast.summary``);
with ``--truth`` every line compares the shipping path with the oracle floor
in the same run.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from trialcast.backtest_phases import MIN_JUDGED_TRIALS, phase_table, phase_verdict
from trialcast.backtest_values import segment_table, value_band_table


def _pct(value: object) -> str:
    number = float(value)  # type: ignore[arg-type]
    return "-" if np.isnan(number) else f"{number:+.1f}%"


def _counts(row: Any) -> dict[str, str]:
    """The trials and expected / oracle / actual conversions cells of a table row."""
    return {
        "trials": f"{row.trials:,}",
        "expected": f"{row.expected:,.1f}",
        "oracle": f"{row.oracle:,.1f}",
        "actual": f"{row.actual:,.0f}",
    }


def _print_rows(
    console: Console,
    title: str,
    rows: list[dict[str, str]],
    *,
    left: tuple[str, ...],
    has_oracle: bool,
) -> None:
    """A table of ``rows`` (column -> text, in order); the oracle's columns only with
    an oracle, the ``left`` columns left-aligned and the numbers right-aligned."""
    if not rows:
        return
    columns = [c for c in rows[0] if has_oracle or "oracle" not in c]
    table = Table(title=title)
    for col in columns:
        table.add_column(col, justify="left" if col in left else "right")
    for row in rows:
        table.add_row(*(row[c] for c in columns))
    console.print(table)


def print_phase_table(phases: pd.DataFrame, console: Console) -> None:
    """Expected vs true-expected (oracle) vs actual conversions per trial length and phase."""
    table_data = phase_table(phases)
    if table_data.empty:
        return
    rows = [
        {
            "length": str(r.length),
            "phase": str(r.phase),
            **_counts(r),
            "vs oracle": _pct(r.vs_oracle_pct) + ("" if r.judged else " (few)"),
            "vs actual": _pct(r.vs_actual_pct),
        }
        for r in table_data.itertuples()
    ]
    _print_rows(
        console,
        "Open trials by trial length and phase at the origin (all cohorts)",
        rows,
        left=("length", "phase"),
        has_oracle=not table_data["oracle"].isna().all(),
    )
    verdict = phase_verdict(table_data)
    if verdict:
        console.print(f"Phases vs the oracle: {verdict}", markup=False)


def print_value_bands(phases: pd.DataFrame, console: Console) -> None:
    """Expected conversions and revenue per quarter of estimated deal value (vs the oracle)."""
    bands = value_band_table(phases)
    if bands.empty:
        return
    rows = [
        {
            "deal value": str(r.band),
            **_counts(r),
            "vs oracle": _pct(r.vs_oracle_pct),
            "expected revenue": f"{r.expected_value:,.0f}",
            "oracle revenue": f"{r.oracle_value:,.0f}",
            "revenue vs oracle": _pct(r.value_vs_oracle_pct),
            "revenue vs actual": _pct(r.value_vs_actual_pct),
        }
        for r in bands.itertuples()
    ]
    _print_rows(
        console,
        "Open trials by estimated deal value (all cohorts)",
        rows,
        left=("deal value",),
        has_oracle=not bands["oracle"].isna().all(),
    )


def print_segments(phases: pd.DataFrame, console: Console) -> None:
    """Expected vs true-expected (oracle) vs actual conversions per forecast segment."""
    data = segment_table(phases)
    if data.empty:
        return
    data["judged"] = data["trials"] >= MIN_JUDGED_TRIALS
    rows = [
        {
            "segment": str(r.segment),
            "value": str(r.value),
            **_counts(r),
            "vs oracle": _pct(r.vs_oracle_pct) + ("" if r.judged else " (few)"),
            "revenue vs oracle": _pct(r.value_vs_oracle_pct),
            "vs actual": _pct(r.vs_actual_pct),
        }
        for r in data.itertuples()
    ]
    _print_rows(
        console,
        "Open trials by segment (all cohorts)",
        rows,
        left=("segment", "value"),
        has_oracle=not data["oracle"].isna().all(),
    )


def print_honesty(summary: dict[str, float], console: Console) -> None:
    """Interval honesty (RMS of standardised errors, PIT tails) and count/value vs the oracle."""
    if "rms_z" in summary:
        line = (
            f"Interval honesty over {summary['n_interval']:.0f} cohort forecasts: RMS of "
            f"standardised errors {summary['rms_z']:.2f} (1 = honest widths), mean "
            f"{summary['mean_z']:+.2f}; outside P10-P90 by PIT "
            f"{100 * summary['pit_outer_share']:.0f}% (honest: 20%)"
        )
        if "oracle_rms_z" in summary:
            line += f"; oracle RMS {summary['oracle_rms_z']:.2f}"
        console.print(line, markup=False)
    if "count_vs_oracle_pct" in summary:
        console.print(
            f"Open trials vs the oracle: expected conversions {summary['count_vs_oracle_pct']:+.1f}% "
            f"in total (mean |error| per cohort {summary['count_vs_oracle_mape']:.1f}%); expected "
            f"open revenue {summary['value_vs_oracle_pct']:+.1f}% (mean |error| per cohort "
            f"{summary['value_vs_oracle_mape']:.1f}%)",
            markup=False,
        )
