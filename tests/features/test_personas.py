"""Persona rules and the PQL flag on hand-made feature rows."""

import pandas as pd
import pytest
from factories import make_config

from features.config import ConfigError
from features.personas import (
    PERSONAS,
    assign_personas,
    compute_pql,
    persona_chance,
    persona_playbook,
)

# (activation rate, active-day share, events per active day, trend, inbound, tone) -> type
CASES = [
    ((0.9, 0.9, 10.0, 0.0, 8, 0.3), "Golden Leads"),
    ((0.9, 0.9, 10.0, 0.0, 0, float("nan")), "Silent Successes"),
    ((0.7, 0.7, 5.0, 0.0, 9, -0.6), "Contrary Converters"),
    ((0.2, 0.4, 2.0, 0.0, 7, 0.6), "Positive Procrastinators"),
    ((0.6, 0.5, 3.0, -0.8, 1, float("nan")), "Fizzlers"),
    ((0.3, 0.4, 2.0, 0.0, 9, -0.2), "Incompatible Ignoramus"),
    ((0.2, 0.3, 1.5, 0.0, 1, float("nan")), "Heartbreakers"),
]


def _frame(rows):
    return pd.DataFrame(
        [r for r, _ in rows],
        columns=[
            "activation_rate_all",
            "engagement_active_day_share_all",
            "engagement_events_per_active_day_all",
            "engagement_trend_7d",
            "comm_inbound_all",
            "comm_sentiment_mean_all",
        ],
        index=[f"a{i}" for i in range(len(rows))],
    )


def test_each_profile_gets_its_type():
    got = assign_personas(_frame(CASES))
    assert list(got.astype(str)) == [name for _, name in CASES]


def test_every_row_gets_a_type_with_chance_and_playbook():
    grid = [
        ((a / 4, s / 4, d, t, c, tone), "")
        for a in range(5)
        for s in range(5)
        for d in (1.0, 8.0)
        for t in (-2.0, 0.0)
        for c in (0, 6)
        for tone in (-0.5, 0.5)
    ]
    frame = _frame(grid)
    personas = assign_personas(frame)
    assert personas.notna().all() and set(personas.astype(str)) <= set(PERSONAS)
    chances = persona_chance(personas)
    assert chances.between(0.05, 0.9).all()
    assert persona_playbook(personas).str.len().gt(10).all()


def test_stated_chances_follow_the_seed():
    assert [p.stated_chance for p in PERSONAS.values()] == [0.9, 0.75, 0.6, 0.3, 0.1, 0.05, 0.05]


def test_pql_flag_needs_every_condition():
    cfg = make_config(
        pql={
            "conditions": [
                {"feature": "activation_rate_all", "op": ">=", "value": 0.5},
                {"feature": "comm_inbound_all", "op": ">", "value": 1},
            ]
        }
    )
    frame = _frame(CASES)
    pql = compute_pql(frame, cfg)
    expected = (frame["activation_rate_all"] >= 0.5) & (frame["comm_inbound_all"] > 1)
    assert pql.tolist() == expected.tolist()


def test_pql_on_unknown_feature_is_a_clear_error():
    cfg = make_config(pql={"conditions": [{"feature": "nope", "op": ">=", "value": 1}]})
    with pytest.raises(ConfigError, match="'nope' is not a built feature"):
        compute_pql(_frame(CASES), cfg)
