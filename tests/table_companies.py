"""Feature-table companies written to disk and loaded through the real loader."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from features.config import CompanyConfig, parse_config
from features.demo.table_company import TableCompany, generate_table_company

ACCOUNT_COLUMNS = ["trial_start", "trial_end", "converted_at", "deal_value"]

#: Declared columns in the standard vocabulary (label, unit, type).
COLUMNS: dict[str, dict[str, str]] = {
    "hours_to_first_report": {"label": "hours to first report", "unit": "h"},
    "pipelines_run": {"label": "pipelines run"},
    "seats": {"label": "seats", "unit": "seats"},
    "plan_interest": {"label": "plan looked at", "type": "categorical"},
    "sso_enabled": {"label": "SSO enabled", "type": "boolean"},
}
LEAKS = {
    "first_invoice_amount": {"label": "first invoice amount", "unit": "EUR"},
    "days_to_convert": {"label": "days to convert", "unit": "days"},
}

SMALL_MODEL: dict[str, Any] = {
    "min_positives": 10,
    "valid_fraction": 0.2,
    "test_fraction": 0.2,
    "num_boost_round": 150,
    "early_stopping_rounds": 20,
    "lightgbm": {
        "objective": "binary",
        "learning_rate": 0.08,
        "num_leaves": 7,
        "min_child_samples": 10,
        "verbose": -1,
        "seed": 0,
        "num_threads": 1,
    },
}


def write_company(
    root: Path,
    company: TableCompany,
    *,
    columns: dict[str, dict[str, str]] | None = None,
    extra: dict[str, Any] | None = None,
    file: str = "trials.csv",
    frame: pd.DataFrame | None = None,
) -> tuple[CompanyConfig, pd.DataFrame]:
    """Write ``company``'s table as CSV under ``root`` and return a config that reads it."""
    root.mkdir(parents=True, exist_ok=True)
    table = generate_table_company(company) if frame is None else frame
    table.to_csv(root / file, index=False, date_format="%Y-%m-%dT%H:%M:%S")
    cols = dict(columns if columns is not None else COLUMNS)
    if columns is None and company.leaks:
        cols.update(LEAKS)
    raw: dict[str, Any] = {
        "company": f"table company {company.seed}",
        "sources": {"features": {"path": file}},
        "feature_table": {"account_columns": ACCOUNT_COLUMNS, "columns": cols},
        "trial": {"conversion_window_days": 30, "default_trial_days": company.trial_days},
        "validation": {"export_time": company.export.isoformat()},
        "model": SMALL_MODEL,
        "registry": {"experiment": f"table-{company.seed}"},
    }
    for key, value in (extra or {}).items():
        raw[key] = {**raw.get(key, {}), **value} if isinstance(value, dict) else value
    return parse_config(raw, base_dir=root), table
