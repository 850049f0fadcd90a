"""Point-in-time feature building: one row per account, from data strictly before ``as_of``.

This is the single feature code path for training, batch scoring and the online
service. ``FeatureBuilder`` indexes the tables once, then builds any number of
snapshots cheaply (the training-set builder asks for several per account).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from features.communication import CommIndex, build_comm_index
from features.config import CompanyConfig
from features.event_index import (
    EventIndex,
    build_event_index,
    cut_events,
    timestamp_seconds,
    to_seconds,
)
from features.families import FAMILIES, FamilyInputs
from features.leaks import drop_events
from features.spec import FeatureSpec, fit_feature_spec
from features.tables import Tables

log = logging.getLogger("trialcast.features")

#: Columns of feature frames and training sets that are not model inputs.
META_COLUMNS = (
    "account_id",
    "as_of",
    "trial_start",
    "snapshot",
    "snapshot_day",
    "label",
    "lifecycle",
    "persona",
    "playbook",
    "pql",
)

#: Feature columns only meaningful for paying accounts (churn model).
CUSTOMER_COLUMNS = ("customer_days_paying", "customer_mrr")


@dataclass
class FeatureBuilder:
    """Indexed tables plus the config and spec that decide the columns."""

    tables: Tables
    config: CompanyConfig
    spec: FeatureSpec
    index: EventIndex
    comms: CommIndex

    @classmethod
    def from_tables(
        cls, tables: Tables, config: CompanyConfig, spec: FeatureSpec | None = None
    ) -> FeatureBuilder:
        """Index ``tables`` once; fit a spec on them if none is given.

        Events the spec excludes (outcome events, ``[leakage].exclude_events``)
        are dropped here, before any feature family sees them.
        """
        index = None
        if spec is None:  # the leak scan reads the index the features will use
            full = build_event_index(tables)
            spec = fit_feature_spec(tables, config, index=full)
            if not full.event_codes(list(spec.excluded_events)).size:
                index = full
        for note in spec.leak_notes:
            log.warning(note)
        tables = drop_events(tables, spec.excluded_events)
        if index is None:  # rebuilt without the excluded events
            index = build_event_index(tables)
        comms = build_comm_index(tables.communications, index.account_ids)
        return cls(tables=tables, config=config, spec=spec, index=index, comms=comms)

    def positions(self, account_ids: pd.Index | list[str]) -> np.ndarray:
        """Positions of ``account_ids`` in the accounts table; raises on unknown ids."""
        pos = self.index.account_ids.get_indexer(pd.Index(account_ids).astype(str))
        if (pos < 0).any():
            missing = pd.Index(account_ids)[pos < 0]
            raise KeyError(
                f"{len(missing)} account(s) not in the accounts table, e.g. {missing[0]!r}"
            )
        return pos

    def build(self, rows_acc: np.ndarray, as_of: np.ndarray) -> pd.DataFrame:
        """Feature rows for account positions ``rows_acc`` at ``as_of`` (int64 seconds).

        Returns a frame indexed by ``account_id`` with an ``as_of`` column and the
        feature columns, in a fixed order for a given config and spec.
        """
        rows_acc = np.asarray(rows_acc, dtype=np.int64)
        as_of = np.asarray(as_of, dtype=np.int64)
        inputs = FamilyInputs(
            tables=self.tables,
            config=self.config,
            spec=self.spec,
            index=self.index,
            cut=cut_events(self.index, rows_acc, as_of),
            comms=self.comms,
            rows_acc=rows_acc,
            as_of=as_of,
        )
        columns: dict[str, Any] = {}
        table_only = self.tables.features is not None and self.index.n_events == 0
        for family in FAMILIES:
            if table_only and (  # a feature table and no event log (nor communications)
                family.needs_events
                or (family.needs_communications and self.tables.communications is None)
            ):
                continue
            columns.update(family.compute(inputs, columns))
        frame = pd.DataFrame(
            {k: (v.to_numpy() if isinstance(v, pd.Series) else v) for k, v in columns.items()},
            index=pd.Index(self.index.account_ids[rows_acc], name="account_id"),
        )
        for col, values in columns.items():
            if isinstance(values, pd.Series) and isinstance(values.dtype, pd.CategoricalDtype):
                frame[col] = pd.Categorical(values.to_numpy(), dtype=values.dtype)
        frame.insert(0, "as_of", pd.to_datetime(as_of, unit="s"))
        return frame


def as_of_seconds(as_of: pd.Timestamp | str | pd.Series, account_ids: pd.Index) -> np.ndarray:
    """Cutoffs as int64 seconds aligned with ``account_ids``: one moment for all, or per account."""
    if isinstance(as_of, pd.Series):
        aligned = as_of.reindex(account_ids)
        if aligned.isna().any():
            raise ValueError("as_of is missing for some accounts; give one cutoff per account")
        return to_seconds(pd.to_datetime(aligned).to_numpy())
    moment = pd.Timestamp(as_of)
    if moment.tzinfo is not None:
        moment = moment.tz_convert("UTC").tz_localize(None)
    return np.full(len(account_ids), timestamp_seconds(moment), dtype=np.int64)


def build_features(
    tables: Tables,
    config: CompanyConfig,
    as_of: pd.Timestamp | str | pd.Series,
    *,
    spec: FeatureSpec | None = None,
    account_ids: list[str] | pd.Index | None = None,
) -> pd.DataFrame:
    """Features of each account from its data strictly before ``as_of``.

    Args:
        tables: validated input tables.
        config: the company config.
        as_of: one cutoff for every account, or a Series of cutoffs indexed by
            ``account_id``.
        spec: the feature spec to build against (fitted on ``tables`` if omitted).
        account_ids: which accounts (default: those in ``as_of`` if it is a Series,
            else every account).

    Returns:
        One row per account, indexed by ``account_id``.
    """
    builder = FeatureBuilder.from_tables(tables, config, spec)
    if account_ids is None:
        account_ids = as_of.index if isinstance(as_of, pd.Series) else builder.index.account_ids
    ids = pd.Index(account_ids).astype(str)
    return builder.build(builder.positions(ids), as_of_seconds(as_of, ids))


def feature_columns(frame: pd.DataFrame, *, customer: bool = False) -> list[str]:
    """Model input columns of a feature frame (trial model unless ``customer``)."""
    skip = set(META_COLUMNS)
    cols = [c for c in frame.columns if c not in skip]
    return cols if customer else [c for c in cols if c not in CUSTOMER_COLUMNS]
