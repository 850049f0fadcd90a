"""Feature-table benchmark: a warehouse table of N trials x C columns trains, scores, explains.

``python -m trialcast.bench.feature_table --trials 10000 --columns 50`` generates
a table-only company (``features.demo.table_company``: 5 standard columns plus
weak ``signal_<k>`` columns up to C), writes it as CSV and times each step on
the real code path: load + validate (CSV -> quarantine checks), build the
training set, train the conversion model into a temporary MLflow store, batch
score every open trial with its reasons, and explain every training row
(TreeSHAP, Platt-scaled; checked to add up to the served log-odds).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def run_feature_table_benchmark(n_trials: int, n_columns: int, *, seed: int = 0) -> dict:
    """Time the feature-table path; returns seconds per step and sizes."""
    from features.build import FeatureBuilder, feature_columns
    from features.config import parse_config
    from features.demo.table_company import TableCompany, generate_table_company
    from features.loaders import load_tables
    from features.snapshots import build_trial_training_set
    from serving.batch import score_accounts
    from serving.scoring import load_scoring_models
    from training.train import RecordTarget, TrainingSets, train_models

    company = TableCompany(
        n_trials=n_trials, seed=seed, leaks=False, extra_columns=max(n_columns - 5, 0),
        span_days=365,
    )  # fmt: skip
    seconds: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        frame = generate_table_company(company)
        frame.to_csv(root / "trials.csv", index=False, date_format="%Y-%m-%dT%H:%M:%S")
        raw = {
            "sources": {"features": {"path": "trials.csv"}},
            "feature_table": {
                "account_columns": ["trial_start", "trial_end", "converted_at", "deal_value"],
                "columns": {
                    "plan_interest": {"type": "categorical"},
                    "sso_enabled": {"type": "boolean"},
                    **{
                        str(c): {"label": str(c).replace("_", " ")}
                        for c in frame.columns
                        if str(c).startswith(("signal_", "hours_", "pipelines_", "seats"))
                    },
                },
            },
            "validation": {"export_time": company.export.isoformat()},
            "model": {"lightgbm": {"objective": "binary", "verbose": -1, "num_threads": 1}},
        }
        config = parse_config(raw, base_dir=root)
        t0 = time.perf_counter()
        tables = load_tables(config).tables
        seconds["load_validate"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        builder = FeatureBuilder.from_tables(tables, config)
        train_set = build_trial_training_set(builder)
        seconds["training_set"] = time.perf_counter() - t0
        uri = f"sqlite:///{root / 'mlflow.db'}"
        t0 = time.perf_counter()
        trained = train_models(
            config,
            TrainingSets(conversion=train_set, churn=None, spec=builder.spec),
            kinds=("conversion",),
            target=RecordTarget(tracking_uri=uri),
        )
        seconds["train_and_register"] = time.perf_counter() - t0
        seconds["  of which fit+evaluate"] = trained.seconds.get("conversion", float("nan"))
        seconds["  of which MLflow logging"] = trained.seconds.get("logging", float("nan"))
        models = load_scoring_models(config, tracking_uri=uri, cache_root=str(root / "cache"))
        t0 = time.perf_counter()
        scores = score_accounts(config, tables, models, allow_before_trial_end=True)
        seconds["score_open_trials"] = time.perf_counter() - t0
        model = models.conversion.model
        t0 = time.perf_counter()
        M = model.matrix_from_frame(train_set)
        contrib, base = model.explain_matrix(M, num_threads=1)
        seconds["explain_all_rows"] = time.perf_counter() - t0
        gap = float(np.max(np.abs(contrib.sum(axis=1) + base - model.logit(train_set))))
    return {
        "trials": n_trials,
        "table_columns": len([c for c in feature_columns(train_set) if c.startswith("table_")]),
        "training_rows": len(train_set),
        "scored": len(scores),
        "model_features": len(model.features),
        "explain_max_gap": gap,
        "seconds": seconds,
    }


def main() -> None:  # pragma: no cover - command line
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--columns", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    started = time.perf_counter()
    result = run_feature_table_benchmark(args.trials, args.columns, seed=args.seed)
    total = time.perf_counter() - started
    print(f"{result['trials']:,} trials x {result['table_columns']} table columns")
    print(f"training rows {result['training_rows']:,}, scored {result['scored']:,} open trials")
    print(f"model features {result['model_features']}, max |sum(SHAP)+base-logit| "
          f"{result['explain_max_gap']:.2e}")  # fmt: skip
    for step, s in result["seconds"].items():
        print(f"  {step:<22} {s:7.2f} s")
    print(f"  {'total (incl. generation)':<22} {total:7.2f} s")


if __name__ == "__main__":  # pragma: no cover
    main()
