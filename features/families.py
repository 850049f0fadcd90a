"""The feature families, declared once: what each computes and how it reads.

Building (``features.build.FeatureBuilder.build``, used by training, batch
scoring and the service) loops over ``FAMILIES``; the reason texts
(``serving.reasons``) find a feature's family by its column prefix. Adding a
family is one module with a ``compute`` function (and, optionally, a
``describe`` for its sentences) plus one line in ``FAMILIES``; see
``docs/extending.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from features.activation import compute_activation_features
from features.communication import CommIndex, compute_communication_features
from features.config import CompanyConfig
from features.engagement import compute_engagement_features
from features.event_counts import compute_event_count_features
from features.event_index import NAT_SECONDS, SECONDS_PER_DAY, EventCut, EventIndex
from features.feature_table import compute_table_features, describe_table_feature
from features.firmographics import compute_firmographic_features
from features.leaks import usable_firmographics
from features.spec import FeatureSpec
from features.tables import Tables
from features.weekdays import compute_weekend_timing

Columns = Mapping[str, "np.ndarray | pd.Series"]


@dataclass(frozen=True)
class FamilyInputs:
    """Everything a family may read for one batch of (account, ``as_of``) rows.

    Attributes:
        tables: the validated tables.
        config: the company config (each family reads its own slice).
        spec: the frozen feature spec (top-K event types, category levels).
        index: the event index; ``cut`` its events strictly before each ``as_of``.
        comms: the communications index.
        rows_acc: account positions, one per row.
        as_of: cutoffs in int64 seconds, one per row.
    """

    tables: Tables
    config: CompanyConfig
    spec: FeatureSpec
    index: EventIndex
    cut: EventCut
    comms: CommIndex
    rows_acc: np.ndarray
    as_of: np.ndarray


#: ``describe(name, value, features, context) -> sentence or None``; ``context`` is
#: the reason context the serving layer builds (company vocabulary).
Describe = Callable[[str, Any, Mapping[str, Any], Any], "str | None"]


@dataclass(frozen=True)
class FeatureFamily:
    """One declared family of features.

    Attributes:
        name: family name (``activation``); also its column prefix unless
            ``prefixes`` says otherwise.
        compute: ``(inputs, columns built so far) -> {column: values}``.
        prefixes: column-name prefixes the family owns (reason lookup).
        describe: optional sentence template for its columns; families without
            one use the service's built-in templates or a generic line.
        needs_events: computed from the event log; skipped when a company gives
            a feature table and no events (``[sources.features]`` alone).
        needs_communications: computed from communications; skipped, too, for
            such a company when it gives no communications table.
    """

    name: str
    compute: Callable[[FamilyInputs, Columns], Mapping[str, Any]]
    prefixes: tuple[str, ...] = ()
    describe: Describe | None = None
    needs_events: bool = False
    needs_communications: bool = False

    def owns(self, column: str) -> bool:
        """Whether ``column`` belongs to this family (by prefix)."""
        return column.startswith(self.prefixes or (self.name + "_",))


def compute_timing_features(
    index: EventIndex, rows_acc: np.ndarray, as_of: np.ndarray
) -> dict[str, np.ndarray]:
    """Where the account is in its lifecycle at ``as_of``.

    Columns (days): trial_days_elapsed, trial_days_remaining (negative after the
    trial), trial_length_days, the weekend inputs of
    ``features.weekdays.compute_weekend_timing`` (trial_weekend_days_elapsed,
    trial_weekend_share_elapsed, trial_weekend_days_2d; UTC weekends),
    customer_days_paying (NaN unless it converted before ``as_of``).
    """
    start = index.trial_start[rows_acc]
    end = index.trial_end[rows_acc]
    converted = index.converted_at[rows_acc]
    paying = (converted != NAT_SECONDS) & (converted < as_of)
    return {
        "trial_days_elapsed": (as_of - start) / SECONDS_PER_DAY,
        "trial_days_remaining": (end - as_of) / SECONDS_PER_DAY,
        "trial_length_days": (end - start) / SECONDS_PER_DAY,
        **compute_weekend_timing(start, as_of),
        "customer_days_paying": np.where(paying, (as_of - converted) / SECONDS_PER_DAY, np.nan),
    }


def compute_customer_mrr(
    accounts: pd.DataFrame,
    rows_acc: np.ndarray,
    days_paying: Any,
    excluded_attributes: list[str] | tuple[str, ...] = (),
) -> np.ndarray:
    """``customer_mrr``: the account's MRR while it pays (NaN before conversion, and
    everywhere when the leak scan found ``mrr`` rewritten at churn)."""
    if "mrr" not in accounts.columns or "mrr" in excluded_attributes:
        return np.full(len(rows_acc), np.nan)
    mrr = pd.to_numeric(accounts["mrr"], errors="coerce").to_numpy(dtype=np.float64)[rows_acc]
    return np.where(np.isnan(np.asarray(days_paying, dtype=float)), np.nan, mrr)


#: Every family, in the column order of the feature frame.
FAMILIES: tuple[FeatureFamily, ...] = (
    FeatureFamily(
        "timing",
        lambda x, _: compute_timing_features(x.index, x.rows_acc, x.as_of),
        prefixes=("trial_", "customer_days_"),
    ),
    FeatureFamily(
        "activation",
        lambda x, _: compute_activation_features(x.cut, x.config.activation),
        needs_events=True,
    ),
    FeatureFamily(
        "engagement",
        lambda x, _: compute_engagement_features(
            x.cut, x.config.engagement, x.spec.activity_profile
        ),
        needs_events=True,
    ),
    FeatureFamily(
        "count",
        lambda x, _: compute_event_count_features(x.cut, x.spec),
        prefixes=("count_",),
        needs_events=True,
    ),
    FeatureFamily(
        "communication",
        lambda x, _: compute_communication_features(
            x.comms,
            x.rows_acc,
            x.as_of,
            x.config.communication,
            recent_days=x.config.engagement.recent_window_days,
        ),
        prefixes=("comm_",),
        needs_communications=True,
    ),
    FeatureFamily(
        "firmographics",
        lambda x, _: compute_firmographic_features(
            x.tables.accounts,
            x.rows_acc,
            usable_firmographics(x.config, x.spec.excluded_attributes),
            x.spec,
        ),
        prefixes=("firmo_",),
    ),
    FeatureFamily(
        "customer",
        lambda x, cols: {
            "customer_mrr": compute_customer_mrr(
                x.tables.accounts,
                x.rows_acc,
                cols["customer_days_paying"],
                x.spec.excluded_attributes,
            )
        },
        prefixes=("customer_mrr",),
    ),
    FeatureFamily(
        "table",
        lambda x, _: compute_table_features(x),
        prefixes=("table_",),
        describe=describe_table_feature,
    ),
)


def family_of(column: str) -> FeatureFamily | None:
    """The declared family that owns feature ``column`` (None for unknown columns)."""
    return next((f for f in FAMILIES if f.owns(column)), None)
