"""Generated companies that hand over a per-account feature table (and maybe no events).

Used by the tests, the README example (``docs/examples/feature_table``) and the
feature-table benchmark. Each company is a handful of knobs (size, trial length,
conversion lag, column names, signal strength), so judgements are tested on
companies that differ from the demo and from each other.

A latent quality per trial drives both the features and the conversion chance;
optional leaking columns are filled from the outcome (``first_invoice_amount``
only for converters, ``days_to_convert``), as a careless warehouse model would.

Run ``python -m features.demo.table_company OUT_DIR`` to write the README
example (``trials.csv`` and ``feature_table.toml``).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class TableCompany:
    """Knobs of one generated feature-table company.

    Attributes:
        n_trials: trials (one row each without ``as_of``).
        seed: random seed.
        trial_days: trial length.
        lag_days: conversions happen this many days after trial end (uniform range).
        start: first trial start; trials start evenly over ``span_days``.
        span_days: days over which trials start; the export is at the end.
        signal: strength of the latent quality in the conversion log-odds (0: none).
        base_logit: conversion log-odds of an average trial.
        as_of_every_days: with a value, one row per trial every so many days
            (point in time); without, one row per trial with whole-trial values.
        leaks: add ``first_invoice_amount`` and ``days_to_convert``.
        extra_columns: add this many weak numeric columns ``signal_<k>``.
        names: rename the standard columns (another company's vocabulary).
    """

    n_trials: int = 250
    seed: int = 0
    trial_days: int = 14
    lag_days: tuple[float, float] = (0.5, 20.0)
    start: str = "2025-01-01"
    span_days: int = 330
    signal: float = 1.6
    base_logit: float = -0.8
    as_of_every_days: int | None = None
    leaks: bool = True
    extra_columns: int = 0
    names: dict[str, str] = field(default_factory=dict)

    @property
    def export(self) -> pd.Timestamp:
        return pd.Timestamp(self.start) + pd.Timedelta(days=self.span_days)


def generate_table_company(company: TableCompany) -> pd.DataFrame:
    """The feature table of ``company``: account columns, optional ``as_of``, features.

    Columns: ``account_id``, ``trial_start``, ``trial_end``, ``converted_at``,
    ``deal_value`` (account columns), ``as_of`` (point-in-time companies), then
    ``hours_to_first_report`` (h), ``pipelines_run`` (count), ``seats``,
    ``plan_interest`` (text), ``sso_enabled`` (yes/no), the leaking columns and
    ``signal_<k>``; renamed by ``company.names``.
    """
    rng = np.random.default_rng(company.seed)
    n = company.n_trials
    q = rng.normal(size=n)
    start = pd.Timestamp(company.start) + pd.to_timedelta(
        np.sort(rng.uniform(0, company.span_days, n)), unit="D"
    )
    start = start.floor("h")
    end = start + pd.Timedelta(days=company.trial_days)
    p = 1 / (1 + np.exp(-(company.base_logit + company.signal * q)))
    converts = rng.uniform(size=n) < p
    lag = rng.uniform(*company.lag_days, n)
    converted_at = pd.Series(end + pd.to_timedelta(lag, unit="D")).where(converts)
    converted_at = converted_at.where(converted_at <= company.export)
    first_report_h = np.exp(3.0 - 0.9 * q + rng.normal(0, 0.6, n))
    reported = first_report_h < company.trial_days * 24
    rate = np.exp(0.8 + 0.6 * q + rng.normal(0, 0.3, n))  # pipelines per day
    seats = 1 + rng.poisson(np.exp(0.7 + 0.4 * q))
    plan = np.where(
        q + rng.normal(0, 1, n) > 0.7, "business", np.where(q > -0.5, "team", "starter")
    )
    sso = np.where(rng.uniform(size=n) < 0.2 + 0.2 * (q > 0), "yes", "no")
    accounts = pd.DataFrame(
        {
            "account_id": [f"t{company.seed}_{i:05d}" for i in range(n)],
            "trial_start": start,
            "trial_end": end,
            "converted_at": converted_at.to_numpy(),
            "deal_value": np.round(300 * seats * (1 + 0.2 * rng.uniform(size=n)), 2),
        }
    )
    if company.as_of_every_days is None:
        days = np.full(n, float(company.trial_days))
        frame = accounts.copy()
    else:
        steps = np.arange(
            company.as_of_every_days, company.trial_days + 1, company.as_of_every_days
        )
        rows = np.repeat(np.arange(n), len(steps))
        days = np.tile(steps.astype(float), n)
        frame = accounts.iloc[rows].reset_index(drop=True)
        frame.insert(1, "as_of", frame["trial_start"] + pd.to_timedelta(days, unit="D"))
        keep = (frame["as_of"] <= company.export).to_numpy()
        frame, days, q_rows = frame[keep].reset_index(drop=True), days[keep], rows[keep]
    idx = np.arange(n) if company.as_of_every_days is None else q_rows
    hours = first_report_h[idx]
    frame["hours_to_first_report"] = np.where(
        reported[idx] & (hours < days * 24), np.round(hours, 1), np.nan
    )
    frame["pipelines_run"] = rng.poisson(rate[idx] * days)
    frame["seats"] = seats[idx]
    frame["plan_interest"] = plan[idx]
    frame["sso_enabled"] = sso[idx]
    if company.leaks:
        conv = pd.to_datetime(frame["converted_at"])
        frame["first_invoice_amount"] = frame["deal_value"].where(conv.notna())
        frame["days_to_convert"] = ((conv - frame["trial_start"]).dt.total_seconds() / 86400).round(
            1
        )
    for k in range(company.extra_columns):
        weight = 0.3 if k % 3 == 0 else 0.0
        frame[f"signal_{k}"] = np.round(weight * q[idx] + rng.normal(size=len(frame)), 3)
    return frame.rename(columns=company.names)


EXAMPLE_CONFIG = """\
# A company that keeps its trial features in the warehouse and has no event log.
# Data: trials.csv, one row per trial (generated by
#   python -m features.demo.table_company docs/examples/feature_table).
company = "Example feature-table company"
output_dir = "out"

[sources.features]
path = "trials.csv"

[feature_table]
# These columns of the table describe the account (dates and the outcome), not features.
account_columns = ["trial_start", "trial_end", "converted_at", "deal_value"]

[feature_table.columns.hours_to_first_report]
label = "hours to first report"
unit = "h"

[feature_table.columns.pipelines_run]
label = "pipelines run in the trial"

[feature_table.columns.seats]
label = "seats"

[feature_table.columns.plan_interest]
type = "categorical"
label = "plan looked at"

[feature_table.columns.sso_enabled]
type = "boolean"
label = "SSO enabled (1 = yes)"

[feature_table.columns.first_invoice_amount]
label = "first invoice amount"
unit = "EUR"

[feature_table.columns.days_to_convert]
label = "days to convert"
unit = "days"

[trial]
conversion_window_days = 30

[validation]
export_time = "2025-11-27T00:00:00"

[model]
# A small table: fewer positives needed and smaller leaves than the defaults.
min_positives = 10
valid_fraction = 0.2
test_fraction = 0.2
lightgbm = { objective = "binary", learning_rate = 0.05, num_leaves = 7, min_child_samples = 10, verbose = -1, seed = 0, num_threads = 1 }
num_boost_round = 200
early_stopping_rounds = 30
"""


def write_example(out_dir: str | Path, company: TableCompany | None = None) -> list[Path]:
    """Write the README example: ``trials.csv`` and ``feature_table.toml``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    company = company or TableCompany(n_trials=1500, seed=7)
    frame = generate_table_company(company)
    csv = out / "trials.csv"
    frame.to_csv(csv, index=False, date_format="%Y-%m-%dT%H:%M:%S")
    toml = out / "feature_table.toml"
    toml.write_text(EXAMPLE_CONFIG)
    return [csv, toml]


if __name__ == "__main__":  # pragma: no cover - documented one-liner
    for path in write_example(sys.argv[1] if len(sys.argv) > 1 else "docs/examples/feature_table"):
        print(path)
