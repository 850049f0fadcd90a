"""The named feature set a model consumes, fitted once on training data.

Some features depend on the data, not only on the config: which event types are
frequent enough to get their own count, and which levels a categorical
firmographic can take. A ``FeatureSpec`` freezes those choices so that training,
batch scoring and the online service build exactly the same columns. It travels
with the model (as JSON) and is never re-fitted at scoring time.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace

import pandas as pd

from features.config import CompanyConfig
from features.event_index import EventIndex
from features.naming import unique_slugs
from features.tables import Tables

SPEC_VERSION = 1


@dataclass(frozen=True)
class FeatureSpec:
    """Data-dependent choices behind the feature columns.

    Attributes:
        top_event_types: event names that get a ``count_<slug>_all`` column, most
            frequent first.
        event_slugs: the column slug of each of ``top_event_types``.
        categorical_levels: allowed levels of each categorical firmographic.
        config_hash: hash of the company config the spec was fitted with.
        persona_levels: the company's lead-type levels (``PersonaLevels.to_dict``),
            fitted on the training window; empty: the seed's absolute defaults.
        persona_rates: observed conversion of each lead type in the training
            window (``training.persona_rates``): name -> {rate, low, high, trials}.
        table_columns: feature-table columns (``features.feature_table``): model
            column -> source column, type, reason label, unit and levels.
        table_as_of: whether the feature table had ``as_of`` (False: a
            trial-end model only); ``None`` without a feature table.
        excluded_events: events removed from every feature (detected outcome
            events plus ``[leakage].exclude_events``); scoring drops the same.
        excluded_attributes: account columns that never feed the models.
        leak_notes: what leak detection said, one line each (shown to the user).
        fitted_before: the moment the spec was fitted before (point in time), if any.
        activity_profile: the company's usual activity per hour of the week (168
            weights, mean 1, UTC; ``features.weekdays.activity_profile``) that the
            "per usual day" engagement rates are measured in; empty: calendar days.
    """

    top_event_types: list[str]
    event_slugs: list[str]
    categorical_levels: dict[str, list[str]] = field(default_factory=dict)
    config_hash: str = ""
    version: int = SPEC_VERSION
    persona_levels: dict[str, float | str] = field(default_factory=dict)
    persona_rates: dict[str, dict[str, float]] = field(default_factory=dict)
    table_columns: dict[str, dict] = field(default_factory=dict)
    table_as_of: bool | None = None
    excluded_events: list[str] = field(default_factory=list)
    excluded_attributes: list[str] = field(default_factory=list)
    leak_notes: list[str] = field(default_factory=list)
    fitted_before: str | None = None
    activity_profile: list[float] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> FeatureSpec:
        data = json.loads(text)
        if data.get("version") != SPEC_VERSION:
            raise ValueError(
                f"feature spec version {data.get('version')} is not {SPEC_VERSION}; retrain the model"
            )
        return cls(**data)


def fit_feature_spec(
    tables: Tables,
    config: CompanyConfig,
    *,
    before: pd.Timestamp | None = None,
    export_time: pd.Timestamp | None = None,
    index: EventIndex | None = None,
) -> FeatureSpec:
    """Scan for leaks, then choose the top-K event types and categorical levels.

    Fit on the training data only, then reuse the spec everywhere else. With
    ``before``, only accounts whose trial started before it and events before
    it are looked at (the training part of a time split), so the choices never
    see the test period. ``index``: the events of ``tables`` already indexed
    (``build_event_index``), read instead of the events table (ignored with ``before``).
    """
    from features.leak_stats import event_leak_stats_from_index
    from features.spec_stats import cut_tables, spec_from_stats, spec_stats

    export_time = pd.Timestamp(export_time) if export_time is not None else tables.export_time()
    events = None
    if before is not None:
        tables = cut_tables(tables, before, export_time)
    elif index is not None:
        events = event_leak_stats_from_index(index, tables, config, export_time)
    # The same statistics and judgement as the Dask feature job's (merged per partition).
    stats = spec_stats(tables, config, export_time, events=events)
    spec = spec_from_stats(stats, config, before=before)
    if tables.features is None:
        return spec
    from features.feature_table import fit_table_columns

    table = tables.features
    columns = fit_table_columns(table, config)
    return replace(
        spec,
        table_columns={c.feature: c.to_dict() for c in columns},
        table_as_of="as_of" in table.columns,
    )


def _text(col: pd.Series) -> pd.Series:
    """Ids as text; a categorical column (20M events) is matched on its categories."""
    return col if isinstance(col.dtype, pd.CategoricalDtype) else col.astype(str)


def feature_spec_from_counts(
    counts: pd.Series, levels: Mapping[str, Iterable[str]], config: CompanyConfig
) -> FeatureSpec:
    """The spec from event-type counts and the categorical values seen.

    The one place the spec's choices are made: ``fit_feature_spec`` calls it on
    one machine's tables, the distributed feature job on counts and levels
    gathered from every partition, so both paths choose identically.

    Args:
        counts: events per event-type name (any order; zero counts are ignored).
        levels: for each categorical firmographic present in the accounts, the
            values seen (any order, duplicates allowed); a configured column
            that is absent gets no levels.
        config: the company config (top-K and the categorical columns).
    """
    k = config.engagement.top_k_event_types
    counts = counts[counts > 0]
    # Most frequent first; ties broken by name so the spec is deterministic.
    order = sorted(counts.items(), key=lambda kv: (-int(kv[1]), str(kv[0])))
    top = [str(name) for name, _ in order[:k]]
    chosen = {
        col: sorted({str(v) for v in levels.get(col, ())})
        for col in config.firmographics.categorical
    }
    return FeatureSpec(
        top_event_types=top,
        event_slugs=unique_slugs(top),
        categorical_levels=chosen,
        config_hash=config.config_hash(),
    )
