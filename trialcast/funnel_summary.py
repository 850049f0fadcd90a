"""What ``trialcast funnel`` prints: the funnel of the finished cohorts by motion, the
latest cohorts still deciding, the flagged changes and where the files went."""

from __future__ import annotations

from typing import Any, cast

import pandas as pd
from rich.console import Console
from rich.table import Table

from trialcast.funnel_job import FunnelRunResult
from trialcast.funnel_plot import pooled_funnel


def _pct(value: Any) -> str:
    return "-" if pd.isna(value) else f"{100 * value:.0f}%"


def _records(frame: pd.DataFrame) -> list[Any]:
    return cast(list[Any], list(frame.itertuples()))


def print_funnel_summary(result: FunnelRunResult, console: Console) -> None:
    """The funnel (pooled finished cohorts) per motion, open cohorts' paid share and flags."""
    table = result.table
    dimension = "motion" if (table["dimension"] == "motion").any() else "total"
    pooled = pooled_funnel(table, dimension)
    segments = list(dict.fromkeys(pooled["segment"]))
    out = Table(
        title=f"Trial funnel as of {result.as_of:%Y-%m-%d} (finished cohorts, by {dimension})"
    )
    out.add_column("stage")
    for segment in segments:
        out.add_column(segment, justify="right")
    for (order, stage), part in pooled.groupby(["stage_order", "stage"], sort=True):
        del order
        shares = part.set_index("segment")["share"]
        out.add_row(str(stage), *(_pct(shares.get(s, float("nan"))) for s in segments))
    console.print(out)
    paid = table[(table["dimension"] == "total") & (table["stage_kind"] == "paid")]
    deciding = paid[paid["expected_share"].notna()].sort_values("cohort").tail(6)
    for r in _records(deciding):
        console.print(
            f"  cohort {r.cohort}: paid so far {_pct(r.share)}, expected {_pct(r.expected_share)} "
            f"(P10-P90 {_pct(r.expected_p10)}-{_pct(r.expected_p90)}), {int(r.open_trials):,} open",
            markup=False,
        )
    flagged = table[table["flagged"]]
    tested = int(table["p_value"].notna().sum())
    console.print(f"  {len(flagged):,} of {tested:,} tested cohort-stage cells flagged as changed")
    for r in _records(flagged.sort_values("cohort").tail(10)):
        console.print(
            f"    {r.cohort} {r.dimension}={r.segment} {r.stage}: {_pct(r.share)} vs "
            f"{_pct(r.baseline_share)} in the previous cohorts (p={r.p_value:.1g})",
            markup=False,
        )
    for name, path in result.outputs.items():
        console.print(f"  {name:<12} {path}", markup=False)
