"""Small data: say so, regularise harder, and fit the feature spec before the split time.

A company with a few hundred trials can still be modelled, but every number is
shaky: below ``[promotion].small_data_trials`` trials or ``small_data_converters``
converters training runs in *small-data mode*: a loud warning with the sizes,
stronger LightGBM regularisation (fewer leaves, more L2, larger leaves), and the
verdict's bootstrap intervals (``training.gate``) decide promotion.

``spec_cutoff`` is the point-in-time rule for the feature spec: top-K event types
and category levels are chosen only from accounts that started (and events that
happened) before the time split's first validation cohort.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from features.config import CompanyConfig
from features.tables import Tables
from models.kinds import model_kind

#: LightGBM settings of small-data mode (only ever tightened, never loosened).
SMALL_DATA_PARAMS = {"num_leaves": 7, "lambda_l2": 10.0, "min_child_samples": 20}


@dataclass(frozen=True)
class DataSize:
    """How much labelled data one model kind has, and whether that is small."""

    kind: str
    accounts: int
    positive_accounts: int
    small: bool
    limits: tuple[int, int]

    def message(self) -> str:
        """The warning (small) or a one-line size note."""
        declared = model_kind(self.kind)
        what, pos = declared.population, declared.positives
        if not self.small:
            return f"{self.kind}: {self.accounts:,} {what}, {self.positive_accounts:,} {pos}"
        return (
            f"SMALL-DATA MODE ({self.kind}): {self.accounts:,} {what} and "
            f"{self.positive_accounts:,} {pos} (below {self.limits[0]:,} / {self.limits[1]:,}): "
            "stronger regularisation; metrics carry wide intervals, segment metrics under "
            "[promotion].min_segment_rows rows are not reported; judge with care"
        )


def data_size(config: CompanyConfig, frame: pd.DataFrame, kind: str) -> DataSize:
    """Labelled accounts and positive accounts of a training set, and the small-data call."""
    per_account = frame.groupby(frame["account_id"].astype(str))["label"].max()
    promo = config.promotion
    limits = (promo.small_data_trials, promo.small_data_converters)
    n, pos = len(per_account), int(per_account.sum())
    return DataSize(kind, n, pos, n < limits[0] or pos < limits[1], limits)


def small_data_params(params: dict[str, Any]) -> dict[str, Any]:
    """``params`` regularised for small data (each setting at least as strict as before)."""
    out = dict(params)
    out["num_leaves"] = min(int(out.get("num_leaves", 31)), SMALL_DATA_PARAMS["num_leaves"])
    out["lambda_l2"] = max(float(out.get("lambda_l2", 0.0)), SMALL_DATA_PARAMS["lambda_l2"])
    out["min_child_samples"] = max(
        int(out.get("min_child_samples", 20)), SMALL_DATA_PARAMS["min_child_samples"]
    )
    return out


def spec_cutoff(
    tables: Tables, config: CompanyConfig, export_time: pd.Timestamp | None = None
) -> pd.Timestamp | None:
    """Trial start of the first validation cohort of the conversion split (approximately);
    ``None`` when too few trials are labelled (see ``features.spec_stats.spec_cutoff_from_trials``).
    """
    from features.spec_stats import spec_cutoff_from_trials

    now = pd.Timestamp(export_time) if export_time is not None else tables.export_time()
    return spec_cutoff_from_trials(tables.accounts, config, now)
