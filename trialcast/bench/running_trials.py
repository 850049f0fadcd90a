"""Where the forecast's open-trial probabilities miss, by trial phase, against the truth.

``python -m trialcast.bench.running_trials DIR`` (a company written by
``trialcast demo-data``) trains the backtest's model at a few origins
(``trialcast.backtest.fit_cohort_model``), scores every open trial through the
shipping path (``serving.batch.predict_open_trials``) and compares the mean
probability with the generator's true open probability
(``OracleTruth.open_probability``), grouped by trial length and by the share of
the trial elapsed at the origin (or "past end"). A calibrated model has ratios
near 1 in every group: the groups are defined by what the model sees.
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd


def phase_table(company_dir: str, origins: list[str]) -> pd.DataFrame:
    """Mean shipping p, mean true p and their ratio per (trial length, phase)."""
    from features.build import FeatureBuilder
    from features.config import load_config
    from features.loaders import load_tables
    from serving.batch import predict_open_trials
    from trialcast.backtest import fit_cohort_model, truncate_tables
    from trialcast.backtest_oracle import OracleTruth

    config = load_config(f"{company_dir}/trialcast.toml")
    tables = load_tables(config).tables
    oracle = OracleTruth.read(f"{company_dir}/truth.parquet")
    parts = []
    for text in origins:
        origin = pd.Timestamp(text)
        known = truncate_tables(tables, origin)
        builder = FeatureBuilder.from_tables(known, config)
        model, _, _ = fit_cohort_model(builder, config, origin)
        scored = predict_open_trials(builder, model, origin)
        ids = scored.features.index.astype(str)
        acc = known.accounts.set_index(known.accounts["account_id"].astype(str)).loc[ids]
        start, end = acc["trial_start"], acc["trial_end"]
        elapsed = (origin - start).dt.total_seconds().to_numpy() / 86_400
        length = ((end - start).dt.total_seconds() / 86_400).to_numpy()
        share = pd.cut(elapsed / length, [0, 0.25, 0.5, 0.75, 1.0]).astype(str)
        parts.append(
            pd.DataFrame(
                {
                    "p": scored.p_convert,
                    "oracle": oracle.open_probability(pd.Index(ids), start, origin),
                    "length": length.round(),
                    "phase": np.where(scored.past_end, "past end", share),
                }
            )
        )
    rows = pd.concat(parts, ignore_index=True)
    table = rows.groupby(["length", "phase"]).agg(
        trials=("p", "size"), p=("p", "mean"), oracle=("oracle", "mean")
    )
    return table.assign(ratio=table["p"] / table["oracle"])


def main() -> None:  # pragma: no cover - command line
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("company_dir")
    parser.add_argument("--origins", default="2026-02-01,2026-05-01,2026-08-01")
    args = parser.parse_args()
    print(phase_table(args.company_dir, args.origins.split(",")).round(3).to_string())


if __name__ == "__main__":  # pragma: no cover
    main()
