"""Human-readable summaries printed by the CLI (rich tables)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table
from rich.text import Text

from features.pipeline import FeatureRunResult
from trialcast.persona_summary import print_persona_rates

if TYPE_CHECKING:
    from trialcast.forecast_job import BacktestRunResult, ForecastRunResult


def print_feature_summary(result: FeatureRunResult, console: Console | None = None) -> None:
    """Print what was loaded, set aside, built and written."""
    console = console or Console(markup=False)
    report = result.report
    rows = Table(title="Input rows", show_lines=False)
    for col in ("table", "rows in", "kept", "quarantined"):
        rows.add_column(col, justify="right" if col != "table" else "left")
    for name, n_in in report.rows_in.items():
        kept = report.rows_kept.get(name, 0)
        rows.add_row(name, f"{n_in:,}", f"{kept:,}", f"{n_in - kept:,}")
    console.print(rows)
    for note in result.leak_notes:
        console.print(note, style="bold yellow")
    if result.pql_note:
        console.print(result.pql_note)
    if report.problems:
        console.print("Problems found in the input:", style="bold yellow")
        for problem in report.problems:
            console.print(f"  - {problem.message()}")

    accounts = result.accounts
    n = len(accounts)
    console.print(
        Text.assemble(
            "\nFeatures as of ",
            (str(result.as_of), "bold"),
            f": {n:,} accounts x {accounts.shape[1]} columns from {result.n_events:,} events",
        )
    )
    stages = accounts["lifecycle"].value_counts(sort=False)
    console.print("Lifecycle: " + ", ".join(f"{k} {v:,}" for k, v in stages.items()))
    summary = Table(
        title="Accounts by trial lead type (features at trial end, or now if still trialling)"
    )
    for col in ("persona", "accounts", "share", "PQL share", "mean activation", "mean active days"):
        summary.add_column(col, justify="left" if col == "persona" else "right")
    for note in report.notes:  # the feature table's point-in-time status and label source
        if "feature table" in note or "conversion_flag" in note:
            console.print(Text.assemble(("Note:", "bold yellow"), f" {note}"))
    grouped = accounts.groupby("persona", observed=False)
    if "activation_rate_all" not in accounts.columns:
        console.print("Lead types: need an event log (a feature table alone has no activity)")
        grouped = accounts.iloc[:0].groupby("persona", observed=False)
    for persona, group in grouped:
        if len(group) == 0:
            continue
        summary.add_row(
            str(persona),
            f"{len(group):,}",
            f"{len(group) / max(n, 1):.1%}",
            f"{group['pql'].mean():.1%}",
            f"{group['activation_rate_all'].mean():.2f}",
            f"{group['engagement_active_days_all'].mean():.1f}",
        )
    if "activation_rate_all" in accounts.columns:
        console.print(summary)
    finished = accounts[accounts["lifecycle"].isin(["customer", "churned", "lost"])]
    if len(finished) and "activation_rate_all" in accounts.columns:
        from training.persona_rates import persona_rate_table

        converted = finished["lifecycle"].isin(["customer", "churned"]).to_numpy()
        rates = persona_rate_table(finished["persona"].astype(str).to_numpy(), converted)
        title = f"Lead types: stated chance vs observed on {len(finished):,} decided trials"
        print_persona_rates(rates, console, title=title)
    console.print(f"PQLs: {int(accounts['pql'].sum()):,} of {n:,} accounts")
    for name, frame in (("trial", result.trial_training), ("churn", result.churn_training)):
        if frame is not None:
            console.print(
                f"{name} training set: {len(frame):,} snapshots of {frame['account_id'].nunique():,} "
                f"accounts, positive rate {frame['label'].mean():.1%}"
            )
    for name, reason in result.skipped_training_sets.items():
        console.print(Text.assemble((f"{name} training set not built:", "yellow"), f" {reason}"))
    timing = ", ".join(f"{k} {v:.1f}s" for k, v in result.seconds.items())
    console.print(f"Timing: {timing}")
    console.print("\nOutputs", style="bold")
    for name, path in result.outputs.items():
        console.print(f"  {name:<22} {path}", markup=False)


def print_backtest_summary(run: BacktestRunResult, console: Console) -> None:
    """Per-cohort forecast vs actual, then MAPE and P10-P90 coverage."""
    from trialcast.backtest_report import (
        print_honesty,
        print_phase_table,
        print_segments,
        print_value_bands,
    )

    table = Table(title="Backtest: forecast at each cohort's end vs actual revenue")
    vs_oracle = "count_vs_oracle_pct" in run.result.cohorts.columns
    cols = ["cohort", "trials", "forecast", "P10", "P90", "actual", "error", "inside"]
    for col in cols + (["count vs oracle", "value vs oracle"] if vs_oracle else []):
        table.add_column(col, justify="right")
    for r in run.result.cohorts.itertuples():
        cells = [
            str(r.cohort),
            f"{r.n_trials:,}",
            f"{r.forecast:,.0f}",
            f"{r.p10:,.0f}",
            f"{r.p90:,.0f}",
            f"{r.actual:,.0f}",
            f"{r.error_pct:+.1f}%",
            "yes" if r.inside else "no",
        ]
        if vs_oracle:
            cells += [f"{r.count_vs_oracle_pct:+.1f}%", f"{r.value_vs_oracle_pct:+.1f}%"]
        table.add_row(*cells)
    console.print(table)
    print_phase_table(run.result.phases, console)
    print_value_bands(run.result.phases, console)
    print_segments(run.result.phases, console)
    s = run.result.summary
    console.print(
        f"MAPE {s.get('mape', float('nan')):.2f}%, P10-P90 coverage {s.get('coverage', float('nan')):.0f}% "
        f"over {s.get('n_cohorts', 0):.0f} cohorts; cohorts of 500+ trials: MAPE "
        f"{s.get('mape_500', float('nan')):.2f}%, coverage {s.get('coverage_500', float('nan')):.0f}%"
    )
    if "count_error_pct" in s:
        console.print(
            f"Conversions: expected vs actual {s['count_error_pct']:+.1f}% in total "
            f"(mean |error| per cohort {s['count_mape']:.1f}%); value per conversion: mean "
            f"|error| {s['value_mape']:.1f}%; trials past their end: expected "
            f"{s['expected_past_end']:.1f} vs {s['actual_past_end']:.0f} actual "
            f"({s['past_end_error_pct']:+.1f}%); trials past the window: expected 0, "
            f"{s['actual_closed']:.0f} converted"
        )
    if "oracle_mape" in s:
        console.print(
            f"Oracle floor (truth file, not the shipping path): MAPE {s['oracle_mape']:.2f}% "
            f"(expected {s['oracle_expected_mape']:.2f}% at this cohort size), "
            f"P10-P90 coverage {s['oracle_coverage']:.0f}%; conversions "
            f"{s['oracle_count_error_pct']:+.1f}% in total (mean |error| "
            f"{s['oracle_count_mape']:.1f}%), value per conversion mean |error| "
            f"{s['oracle_value_mape']:.1f}%"
        )
    print_honesty(s, console)
    for name, path in run.outputs.items():
        console.print(f"  {name:<24} {path}", markup=False)


def print_forecast_summary(run: ForecastRunResult, console: Console) -> None:
    """Expected new revenue with its range, by dimension, and where it was written."""
    table = Table(
        title=f"New revenue from open trials as of {run.as_of} (model {run.model_version})"
    )
    for col in ("dimension", "segment", "trials", "expected", "P10", "P50", "P90"):
        table.add_column(col, justify="left" if col in ("dimension", "segment") else "right")
    for r in run.breakdown.itertuples():
        table.add_row(
            str(r.dimension),
            str(r.segment),
            f"{r.n_accounts:,}",
            f"{r.expected:,.0f}",
            f"{r.p10:,.0f}",
            f"{r.p50:,.0f}",
            f"{r.p90:,.0f}",
        )
    console.print(table)
    if run.recurring is None:
        console.print(f"Recurring revenue: not forecast: {run.recurring_reason}")
    if run.recurring is not None:
        rec = Table(title="Recurring revenue of paying accounts over the churn horizon (MRR)")
        for col in ("dimension", "segment", "measure", "current MRR", "expected", "P10", "P90"):
            rec.add_column(
                col, justify="left" if col in ("dimension", "segment", "measure") else "right"
            )
        for r in run.recurring[run.recurring["dimension"] == "total"].itertuples():
            rec.add_row(
                str(r.dimension),
                str(r.segment),
                str(r.measure),
                f"{r.mrr:,.0f}",
                f"{r.expected:,.0f}",
                f"{r.p10:,.0f}",
                f"{r.p90:,.0f}",
            )
        console.print(rec)
    if run.sql_rows is not None:
        console.print(f"Exported {run.sql_rows:,} account rows to SQL")
    for name, path in run.outputs.items():
        console.print(f"  {name:<24} {path}", markup=False)
