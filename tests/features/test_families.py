"""Feature families are declarations: building and reason texts both loop over them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from factories import START, make_config, make_tables

from features import build, families
from features.build import build_features
from features.families import FAMILIES, FamilyInputs, FeatureFamily, family_of
from features.spec import fit_feature_spec
from serving.reasons import build_reason_context, describe_feature


def _weekend_events(x: FamilyInputs, _: object) -> dict[str, np.ndarray]:
    """``weekend_events_all``: events on Saturdays and Sundays before ``as_of`` (events)."""
    day = (x.cut.ts // 86_400 + 3) % 7  # 1970-01-01 was a Thursday: 5, 6 = Sat, Sun
    weekend = (day >= 5).astype(np.float64)
    return {"weekend_events_all": np.bincount(x.cut.row, weekend, minlength=len(x.rows_acc))}


def _describe_weekend(name: str, value: object, _f: object, _c: object) -> str | None:
    return None if value is None else f"{value:g} events at the weekend"


EVENTS = [
    ("a0", "u1", "setup", "2026-01-01 10:00"),  # Thursday
    ("a0", "u1", "core_a", "2026-01-03 10:00"),  # Saturday
    ("a0", "u2", "core_b", "2026-01-04 11:00"),  # Sunday
    ("a1", "u3", "invite", "2026-01-05 09:00"),  # Monday
    ("a1", "u3", "core_a", "2026-01-10 09:00"),  # Saturday
    ("a1", "u3", "core_a", "2026-02-10 09:00"),  # after as_of
]


def test_every_built_column_belongs_to_exactly_one_family() -> None:
    config = make_config()
    tables = make_tables(EVENTS)
    frame = build_features(tables, config, START + pd.Timedelta(days=10))
    for column in frame.columns.drop("as_of"):
        owners = [f.name for f in FAMILIES if f.owns(column)]
        assert len(owners) == 1, (column, owners)
        assert family_of(column) is not None


def test_a_new_family_is_one_declaration(monkeypatch: pytest.MonkeyPatch) -> None:
    family = FeatureFamily(
        "weekend", _weekend_events, prefixes=("weekend_",), describe=_describe_weekend
    )
    extended = (*FAMILIES, family)
    monkeypatch.setattr(families, "FAMILIES", extended)
    monkeypatch.setattr(build, "FAMILIES", extended)
    config = make_config()
    tables = make_tables(EVENTS)
    events = tables.events
    as_of = START + pd.Timedelta(days=30)
    frame = build_features(tables, config, as_of)
    # oracle: weekend events per account, counted with pandas
    ts = pd.to_datetime(events["timestamp"])
    expected = (
        events.assign(weekend=ts.dt.day_of_week >= 5)[ts < as_of]
        .groupby("account_id")["weekend"]
        .sum()
        .reindex(frame.index, fill_value=0)
    )
    np.testing.assert_array_equal(frame["weekend_events_all"].to_numpy(), expected.to_numpy())
    context = build_reason_context(config, fit_feature_spec(tables, config))
    row = frame.iloc[0].to_dict()
    text = describe_feature("weekend_events_all", row, context)
    assert text == f"{row['weekend_events_all']:g} events at the weekend"
