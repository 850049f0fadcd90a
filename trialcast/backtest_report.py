"""The backtest's judgement lines: phases, interval honesty, count and value vs the oracle.

Printed by ``trialcast backtest`` under the cohort table (``trialcast.summary``);
with ``--truth`` every line compares the shipping path with the oracle floor
in the same run.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from trialcast.backtest_phases import MIN_JUDGED_TRIALS, phase_table, phase_verdict
from trialcast.backtest_values import segment_table, value_band_table


def _pct(value: object) -> str:
    number = float(value)  # type: ignore[arg-type]
    return "-" if np.isnan(number) else f"{number:+.1f}%"


def print_phase_table(phases: pd.DataFrame, console: Console) -> None:
    """Expected vs true-expected (oracle) vs actual conversions per trial length and phase."""
    table_data = phase_table(phases)
    if table_data.empty:
        return
    has_oracle = not table_data["oracle"].isna().all()
    table = Table(title="Open trials by trial length and phase at the origin (all cohorts)")
    cols = ["length", "phase", "trials", "expected", "oracle", "actual", "vs oracle", "vs actual"]
    for col in cols if has_oracle else [c for c in cols if "oracle" not in c]:
        table.add_column(col, justify="left" if col in ("length", "phase") else "right")
    for r in table_data.itertuples():
        cells = [str(r.length), str(r.phase), f"{r.trials:,}", f"{r.expected:,.1f}"]
        if has_oracle:
            cells.append(f"{r.oracle:,.1f}")
        cells.append(f"{r.actual:,.0f}")
        if has_oracle:
            cells.append(_pct(r.vs_oracle_pct) + ("" if r.judged else " (few)"))
        cells.append(_pct(r.vs_actual_pct))
        table.add_row(*cells)
    console.print(table)
    verdict = phase_verdict(table_data)
    if verdict:
        console.print(f"Phases vs the oracle: {verdict}", markup=False)


def print_value_bands(phases: pd.DataFrame, console: Console) -> None:
    """Expected conversions and revenue per quarter of estimated deal value (vs the oracle)."""
    bands = value_band_table(phases)
    if bands.empty:
        return
    has_oracle = not bands["oracle"].isna().all()
    table = Table(title="Open trials by estimated deal value (all cohorts)")
    cols = ["deal value", "trials", "expected", "oracle", "actual", "vs oracle"]
    cols += ["expected revenue", "oracle revenue", "revenue vs oracle", "revenue vs actual"]
    for col in cols if has_oracle else [c for c in cols if "oracle" not in c]:
        table.add_column(col, justify="left" if col == "deal value" else "right")
    for r in bands.itertuples():
        cells = [str(r.band), f"{r.trials:,}", f"{r.expected:,.1f}"]
        if has_oracle:
            cells.append(f"{r.oracle:,.1f}")
        cells.append(f"{r.actual:,.0f}")
        if has_oracle:
            cells.append(_pct(r.vs_oracle_pct))
        cells.append(f"{r.expected_value:,.0f}")
        if has_oracle:
            cells += [f"{r.oracle_value:,.0f}", _pct(r.value_vs_oracle_pct)]
        cells.append(_pct(r.value_vs_actual_pct))
        table.add_row(*cells)
    console.print(table)


def print_segments(phases: pd.DataFrame, console: Console) -> None:
    """Expected vs true-expected (oracle) vs actual conversions per forecast segment."""
    data = segment_table(phases)
    if data.empty:
        return
    data["judged"] = data["trials"] >= MIN_JUDGED_TRIALS
    has_oracle = not data["oracle"].isna().all()
    table = Table(title="Open trials by segment (all cohorts)")
    cols = ["segment", "value", "trials", "expected", "oracle", "actual", "vs oracle"]
    cols += ["revenue vs oracle", "vs actual"]
    for col in cols if has_oracle else [c for c in cols if "oracle" not in c]:
        table.add_column(col, justify="left" if col in ("segment", "value") else "right")
    for r in data.itertuples():
        few = "" if r.judged else " (few)"
        cells = [str(r.segment), str(r.value), f"{r.trials:,}", f"{r.expected:,.1f}"]
        if has_oracle:
            cells.append(f"{r.oracle:,.1f}")
        cells.append(f"{r.actual:,.0f}")
        if has_oracle:
            cells += [_pct(r.vs_oracle_pct) + few, _pct(r.value_vs_oracle_pct)]
        cells.append(_pct(r.vs_actual_pct))
        table.add_row(*cells)
    console.print(table)


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
