"""Persona rules and the PQL flag on hand-made feature rows."""

import dataclasses

import pandas as pd
import pytest
from factories import make_config

from features.build import FeatureBuilder
from features.config import ConfigError
from features.demo.driver_company import CLINIC, FREIGHT, generate_driver_company
from features.personas import (
    PERSONAS,
    PersonaLevels,
    assign_personas,
    compute_pql,
    fit_persona_levels,
    persona_chance,
    persona_playbook,
)
from features.pipeline import build_account_view
from features.tables import Tables

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
    """Feature rows at trial end (day 14) with 7 events in the last week."""
    frame = pd.DataFrame(
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
    return frame.assign(engagement_events_7d=7.0, trial_days_elapsed=14.0)


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


def _scaled(tables: Tables, factor: int) -> Tables:
    """Every event and message repeated ``factor`` times (same moments): 10x the activity."""
    comms = tables.communications
    return Tables(
        events=tables.events.loc[tables.events.index.repeat(factor)].reset_index(drop=True),
        accounts=tables.accounts,
        communications=None if comms is None else comms.loc[comms.index.repeat(factor)],
    )


@pytest.mark.parametrize("spec", [CLINIC, FREIGHT], ids=lambda s: s.company)
def test_scaling_all_activity_by_ten_leaves_every_lead_type_unchanged(spec):
    company = generate_driver_company(dataclasses.replace(spec, n_accounts=600))
    config = company.config(
        activation={
            "milestones": [
                {"name": "opened", "events": [spec.universal_event], "stage": "setup"},
                {"name": "browsed", "events": [spec.noise_events[-1]], "deadline_days": 3},
                {"name": "success", "events": [spec.driver_event], "stage": "aha"},
            ]
        }
    )
    views = [
        build_account_view(FeatureBuilder.from_tables(t, config), company.now)
        for t in (company.tables, _scaled(company.tables, 10))
    ]
    base, big = views
    assert base.index.equals(big.index)
    # the features did change scale ...
    ratio = (
        big["engagement_events_per_active_day_all"] / base["engagement_events_per_active_day_all"]
    )
    assert ratio.dropna().round(9).eq(10).all()
    # ... the company-relative lead types did not, and they are not trivial
    assert (base["persona"].astype(str) == big["persona"].astype(str)).all()
    assert base["persona"].nunique() >= 4
    levels = [PersonaLevels.from_dict(v.attrs["persona_levels"]) for v in views]
    assert levels[1].depth_high == pytest.approx(10 * levels[0].depth_high)
    assert levels[0].source == "quantiles"
    # the seed's absolute thresholds are not scale-free: the same trials change type
    fixed = [assign_personas(v, PersonaLevels()).astype(str) for v in views]
    assert (fixed[0] != fixed[1]).any()


def test_levels_pinned_in_the_config_win_over_quantiles():
    frame = _frame(CASES)
    fitted = fit_persona_levels(frame)
    assert fitted.source == "quantiles" and fitted.talk_min >= 1
    pinned = fit_persona_levels(frame, {"talk_min": 100.0})
    assert pinned.talk_min == 100.0 and pinned.source == "config"
    assert set(assign_personas(frame, pinned).astype(str)).isdisjoint(
        {
            "Golden Leads",
            "Contrary Converters",
            "Incompatible Ignoramus",
            "Positive Procrastinators",
        }
    )
    with pytest.raises(ConfigError, match="unknown level"):
        make_config(personas={"levels": {"talks": 3}})
    assert PersonaLevels.from_dict(pinned.to_dict()) == pinned
