"""Printing a training job's outcome: metrics beside baselines, guards, registry."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from training.train_results import TrainResult, summary_table
from trialcast.persona_summary import print_persona_rates

SEGMENTS = ("all", "d1", "d3", "d7", "d14", "end")
METRICS = ("roc_auc", "log_loss", "ece", "lift_top10")


def print_train_summary(result: TrainResult, console: Console) -> None:
    """Print test metrics per model kind, snapshot and baseline, then what was registered."""
    table = summary_table(result, SEGMENTS)
    for kind, outcome in result.models.items():
        rows = table[table["kind"] == kind]
        view = Table(title=f"{kind} model: held-out test metrics (newest cohorts)")
        for col in ("segment", "model", "n", *METRICS):
            view.add_column(col, justify="left" if col in ("segment", "model") else "right")
        for r in rows.itertuples():
            view.add_row(
                str(r.segment),
                str(r.model),
                f"{int(r.n):,}",  # type: ignore[arg-type]
                *(
                    f"{getattr(r, m):.3f}" if getattr(r, m) == getattr(r, m) else "-"
                    for m in METRICS
                ),
            )
        console.print(view)
        console.print(outcome.leakage.message(), markup=False)
        console.print(outcome.base_rate.message(kind), markup=False)
        if outcome.gate is not None:
            console.print(outcome.gate.message(kind), markup=False)
        if outcome.predictions_path is not None:
            console.print(f"Held-out predictions: {outcome.predictions_path}", markup=False)
        promoted = outcome.promotion.reason if outcome.promotion is not None else "champion kept"
        console.print(
            Text.assemble(
                "Registered ",
                (outcome.registered_name, "bold"),
                f" version {outcome.version} (alias challenger); {promoted}. "
                f"MLflow run {outcome.run_id}",
            )
        )
    if result.persona_rates is not None:
        snapshot = result.persona_rates.attrs.get("snapshot", "")
        title = "Lead types: stated chance vs observed in the training window" + (
            f" (trials typed at snapshot {snapshot}, before conversions start)" if snapshot else ""
        )
        print_persona_rates(result.persona_rates, console, title=title)
    for kind, message in result.refused.items():
        console.print(Text.assemble((f"{kind} model not trained:", "yellow"), f" {message}"))
    console.print("Timing: " + ", ".join(f"{k} {v:.1f}s" for k, v in result.seconds.items()))
