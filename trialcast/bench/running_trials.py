"""Where the forecast's open-trial probabilities miss, by trial phase, against the truth.

``python -m trialcast.bench.running_trials DIR`` (a company written by
``trialcast demo-data``) trains the backtest's model at a few origins
(``trialcast.backtest.fit_cohort_model``), scores every open trial through the
shipping path (``serving.batch.predict_open_trials``) and compares expected
conversions with the generator's true open probabilities
(``OracleTruth.open_probability``), grouped by trial length and phase
(``trialcast.backtest_phases``, the same table ``trialcast backtest --truth``
prints for its cohorts; here over every open trial at a few origins, quicker).
A calibrated model has expected / true-expected near 1 in every group.
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd


def phase_table(company_dir: str, origins: list[str]) -> pd.DataFrame:
    """Expected (shipping), true-expected and actual conversions per (trial length, phase)."""
    from features.build import FeatureBuilder
    from features.config import load_config
    from features.loaders import load_tables
    from serving.batch import predict_open_trials
    from trialcast.backtest import fit_cohort_model, truncate_tables
    from trialcast.backtest_oracle import OracleTruth
    from trialcast.backtest_phases import phase_rows
    from trialcast.backtest_phases import phase_table as group

    config = load_config(f"{company_dir}/trialcast.toml")
    tables = load_tables(config).tables
    oracle = OracleTruth.read(f"{company_dir}/truth.parquet")
    window = pd.Timedelta(days=config.trial.conversion_window_days)
    full = tables.accounts.set_index(tables.accounts["account_id"].astype(str))
    parts = []
    for text in origins:
        origin = pd.Timestamp(text)
        known = truncate_tables(tables, origin)
        builder = FeatureBuilder.from_tables(known, config)
        model, _, _ = fit_cohort_model(builder, config, origin)
        scored = predict_open_trials(builder, model, origin)
        ids = scored.features.index.astype(str)
        acc = full.loc[ids]
        won = (acc["converted_at"] >= origin) & (acc["converted_at"] < acc["trial_end"] + window)
        parts.append(
            phase_rows(
                acc,
                origin,
                scored.p_convert,
                won=won.to_numpy(dtype=float),
                oracle_p=oracle.open_probability(pd.Index(ids), acc["trial_start"], origin),
            )
        )
    return group(pd.concat(parts, ignore_index=True))


def main() -> None:  # pragma: no cover - command line
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("company_dir")
    parser.add_argument("--origins", default="2026-02-01,2026-05-01,2026-08-01")
    args = parser.parse_args()
    with np.errstate(divide="ignore", invalid="ignore"):
        table = phase_table(args.company_dir, args.origins.split(","))
    print(table.round(3).to_string())


if __name__ == "__main__":  # pragma: no cover
    main()
