"""Training benchmark: time to train both models on 10k / 100k demo accounts, and how
close the conversion model gets to the truth file's ceiling (the issue's targets).

Each size trains into its own temporary MLflow store, so runs never see each other.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table

TARGET_SEGMENTS = ("d1", "d3", "d7", "d14", "end", "all")


def run_training_benchmark(
    sizes: list[int], *, seed: int, out: Path, console: Console
) -> list[dict]:
    """Generate, train and compare with baselines and the ceiling for each size."""
    from features.config import load_demo_config
    from features.demo.generator import generate_demo_data
    from training.recipe import RecipeOptions
    from training.train import RecordTarget, train_models

    results = []
    for n in sizes:
        with console.status(f"{n:,} accounts: generating demo data..."):
            demo = generate_demo_data(n, seed=seed)

        def say(msg: str, n: int = n) -> None:
            console.print(f"{n:,}: {msg}", style="dim")

        with tempfile.TemporaryDirectory() as store:
            t0 = time.perf_counter()
            result = train_models(
                load_demo_config(),
                demo.tables,
                options=RecipeOptions(truth=demo.truth, progress=say),
                target=RecordTarget(tracking_uri=f"sqlite:///{store}/mlflow.db"),
            )
            wall = time.perf_counter() - t0
        for kind, outcome in result.models.items():
            m = outcome.metrics
            for segment in TARGET_SEGMENTS:
                seg = m[m["segment"] == segment].set_index("model")
                if seg.empty:
                    continue
                row = {"accounts": n, "kind": kind, "segment": segment, "n": int(seg["n"].iloc[0])}
                for model in seg.index:
                    for metric in ("roc_auc", "log_loss", "ece"):
                        row[f"{model}_{metric}"] = float(seg.loc[model, metric])
                results.append(row)
        results.append(
            {
                "accounts": n,
                "kind": "timing",
                **{k: round(v, 2) for k, v in result.seconds.items()},
                "wall_s": round(wall, 2),
            }
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    _print(results, console)
    console.print(f"Raw results: {out}")
    return results


def _print(results: list[dict], console: Console) -> None:
    frame = pd.DataFrame([r for r in results if r["kind"] != "timing"])
    for (n, kind), part in frame.groupby(["accounts", "kind"], sort=False):
        table = Table(title=f"{kind}, {n:,} accounts: test ROC AUC / log loss / ECE")
        for col in (
            "segment",
            "n",
            "model",
            "ceiling",
            "logistic",
            "persona",
            "gap AUC",
            "gap log loss",
        ):
            table.add_column(col, justify="right")
        for d in part.to_dict("records"):

            def trio(name: str, d: dict = d) -> str:
                key = f"{name}_roc_auc"
                if key not in d or pd.isna(d[key]):
                    return "-"
                return f"{d[key]:.3f} / {d[f'{name}_log_loss']:.3f} / {d[f'{name}_ece']:.3f}"

            gap_auc = d.get("ceiling_roc_auc", float("nan")) - d["model_roc_auc"]
            gap_ll = d["model_log_loss"] - d.get("ceiling_log_loss", float("nan"))
            table.add_row(
                str(d["segment"]),
                f"{d['n']:,}",
                trio("model"),
                trio("ceiling"),
                trio("logistic"),
                trio("persona"),
                f"{gap_auc:+.3f}",
                f"{gap_ll:+.3f}",
            )
        console.print(table)
    for r in results:
        if r["kind"] == "timing":
            console.print(
                f"{r['accounts']:,} accounts: "
                + ", ".join(f"{k} {v}s" for k, v in r.items() if k not in ("accounts", "kind"))
            )
