"""PQL rule proposed from data: it flags the true driver; an empty rule flags nobody."""

from __future__ import annotations

import dataclasses
import tomllib

import numpy as np
import pandas as pd
import pytest
from factories import make_config

from features.build import FeatureBuilder
from features.config import PqlCondition, parse_config
from features.demo.driver_company import CLINIC, FREIGHT, generate_driver_company
from features.personas import compute_pql
from features.snapshots import build_trial_training_set
from training.milestones import discover_milestones
from training.persona_rates import reference_rows
from training.pql_rule import propose_pql_for_company


@pytest.mark.parametrize("spec", [CLINIC, FREIGHT], ids=lambda s: s.company)
def test_proposed_rule_flags_the_driver_and_its_numbers_are_true(spec):
    company = generate_driver_company(dataclasses.replace(spec, n_accounts=1500))
    config = company.config()
    assert config.pql.conditions == []
    builder = FeatureBuilder.from_tables(company.tables, config)
    found = discover_milestones(config, builder, now=company.now)
    proposal = propose_pql_for_company(builder, found)
    slug = builder.spec.event_slugs[builder.spec.top_event_types.index(spec.driver_event)]
    assert f"count_{slug}_all" in {c.feature for c in proposal.conditions}
    assert 0.05 <= proposal.share <= 0.5
    assert proposal.low > 1.5 * proposal.base_rate
    # The TOML is valid config, and re-applying it reproduces the stated share and rate.
    pasted = parse_config({**tomllib.loads(proposal.toml()), "company": "x"})
    trials = reference_rows(build_trial_training_set(builder, export_time=company.now))
    flags = compute_pql(trials, pasted).to_numpy()
    assert flags.mean() == pytest.approx(proposal.share)
    assert trials["label"].to_numpy()[flags].mean() == pytest.approx(proposal.rate)
    assert "of them converted" in proposal.toml()


def test_an_empty_rule_means_no_pqls():
    config = make_config(pql={"conditions": []})
    features = pd.DataFrame({"activation_rate_all": np.linspace(0, 1, 11)})
    assert not compute_pql(features, config).any()


def _no_signal_driver_company():
    spec = dataclasses.replace(FREIGHT, n_accounts=1500, driver_rate=FREIGHT.base_rate, seed=5)
    company = generate_driver_company(spec)
    return company.tables, company.config(), company.now


def _renamed_demo(*, signal: bool):
    """The demo company at 2,000 trials of 21 days, a 14-day window and neutral event
    names; with ``signal=False`` its outcomes are shuffled across accounts."""
    from features.config import load_demo_config
    from features.demo.generator import generate_demo_data
    from features.demo.variants import event_mapping, no_signal, rename_config_events, rename_events

    demo = generate_demo_data(2000, seed=5, trial_days=(21,), conversion_window_days=14)
    mapping = event_mapping(demo, prefix="ev_")
    company = rename_events(demo if signal else no_signal(demo, seed=1), prefix="ev_")
    config = rename_config_events(load_demo_config(), mapping)
    config = config.model_copy(
        update={
            "pql": config.pql.model_copy(update={"conditions": []}),
            "trial": config.trial.model_copy(update={"conversion_window_days": 14}),
        }
    )
    return company.tables, config, None, mapping


def _no_signal_renamed_demo():
    return _renamed_demo(signal=False)[:3]


def test_on_a_renamed_demo_the_rule_holds_its_aha_moment():
    """The demo's aha (10 successful runs, features.demo.aha) under a neutral name, at
    another trial length and scale: discovery proposes it and the rule requires it."""
    tables, config, now, mapping = _renamed_demo(signal=True)
    builder = FeatureBuilder.from_tables(tables, config)
    found = discover_milestones(config, builder, now=now)
    aha = mapping["Pipeline Run Succeeded"]
    assert [(m.events, m.min_count) for m in found.checklist][-1] == ([aha], 10)
    proposal = propose_pql_for_company(builder, found)
    slug = builder.spec.event_slugs[builder.spec.top_event_types.index(aha)]
    assert PqlCondition(feature=f"count_{slug}_all", op=">=", value=10.0) in proposal.conditions
    assert proposal.low > 2 * proposal.base_rate


@pytest.mark.parametrize(
    "make", [_no_signal_driver_company, _no_signal_renamed_demo], ids=["freight", "demo-renamed"]
)
def test_no_rule_is_proposed_when_nothing_predicts_paying(make):
    """Dozens of activity flags and their pairs are tried: on a company whose outcomes
    are independent of behaviour the luckiest of them must not become a PQL rule."""
    tables, config, now = make()
    builder = FeatureBuilder.from_tables(tables, config)
    found = discover_milestones(config, builder, now=now)
    assert found.checklist == []
    proposal = propose_pql_for_company(builder, found)
    assert proposal.conditions == [], proposal.reason
    assert "No rule means no PQLs" in proposal.reason


def test_a_hindsight_event_never_enters_the_proposed_rule():
    from features.demo.generator import DemoData
    from features.demo.variants import hindsight_event

    company = generate_driver_company(dataclasses.replace(CLINIC, n_accounts=1500))
    leaky = hindsight_event(DemoData(company.tables, company.truth), "Plan Upgraded")
    config = company.config()
    builder = FeatureBuilder.from_tables(leaky.tables, config)
    assert "Plan Upgraded" in builder.spec.excluded_events  # the leak scan caught it
    found = discover_milestones(config, builder, now=company.now)
    proposal = propose_pql_for_company(builder, found)
    assert proposal.conditions
    assert not any("plan_upgraded" in c.feature for c in proposal.conditions)
    slug = builder.spec.event_slugs[builder.spec.top_event_types.index(CLINIC.driver_event)]
    assert f"count_{slug}_all" in {c.feature for c in proposal.conditions}
