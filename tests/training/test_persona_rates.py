"""Observed chances per lead type: intervals cover the generator's truth; contradictions said."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from features.build import FeatureBuilder
from features.demo.driver_company import CLINIC, FREIGHT, generate_driver_company
from features.personas import PERSONAS, assign_personas, fit_persona_levels
from features.snapshots import build_trial_training_set
from training.persona_rates import (
    build_observed_persona_baseline,
    compute_observed_persona_rates,
    compute_persona_rates,
    last_snapshot_rows,
    persona_rate_table,
    rates_to_dict,
    reference_rows,
)


@pytest.fixture(scope="module", params=[CLINIC, FREIGHT], ids=lambda s: s.company)
def trials(request):
    company = generate_driver_company(dataclasses.replace(request.param, n_accounts=1500))
    config = company.config()
    frame = build_trial_training_set(
        FeatureBuilder.from_tables(company.tables, config), export_time=company.now
    )
    return company, frame


def test_observed_rate_intervals_cover_the_generators_truth(trials):
    company, frame = trials
    last = last_snapshot_rows(frame)
    assert last["account_id"].is_unique and len(last) == frame["account_id"].nunique()
    levels = fit_persona_levels(last)
    last = reference_rows(frame)  # typed before conversions start: no label-driven selection
    assert last.attrs["snapshot"] == ("d7" if company.spec.trial_days == 14 else "d14")
    assert last["account_id"].is_unique
    # all seven intervals must cover at once: a joint 95% level (Bonferroni over the
    # seven types), or one 95% interval in ten would miss by design
    rates = compute_persona_rates(last, levels, confidence=1 - 0.05 / 7).set_index("persona")
    personas = assign_personas(last, levels).astype(str)
    truth = company.truth.set_index("account_id")["p_convert"]
    true_rate = truth.reindex(last["account_id"]).groupby(personas.to_numpy()).mean()
    checked = 0
    for name, row in rates.iterrows():
        if row["trials"] < 30:
            continue
        assert row["low"] <= true_rate[name] <= row["high"], (name, row.to_dict())
        checked += 1
    assert checked >= 3
    assert rates["trials"].sum() == len(last)
    assert (rates["stated"] == [p.stated_chance for p in PERSONAS.values()]).all()
    stored = rates_to_dict(rates.reset_index())
    assert set(stored) == set(rates.index[rates["trials"] > 0])


def test_observed_baseline_is_calibrated_in_the_large_where_stated_chances_are_not(trials):
    _, frame = trials
    accounts = frame["account_id"].unique()
    train_ids = set(accounts[: len(accounts) // 2])
    train = frame[frame["account_id"].isin(train_ids)]
    test = frame[~frame["account_id"].isin(train_ids)]
    levels = fit_persona_levels(last_snapshot_rows(train))
    p = build_observed_persona_baseline(train, test, levels)
    assert abs(p.mean() - test["label"].mean()) < 0.03
    stated = (
        assign_personas(test, levels)
        .astype(str)
        .map({n: x.stated_chance for n, x in PERSONAS.items()})
    )
    assert abs(stated.mean() - test["label"].mean()) > abs(p.mean() - test["label"].mean())


def test_a_let_go_type_converting_above_average_is_called_out():
    personas = np.array(["Heartbreakers"] * 200 + ["Golden Leads"] * 200 + ["Fizzlers"] * 200)
    labels = np.r_[
        np.ones(120), np.zeros(80), np.ones(40), np.zeros(160), np.ones(20), np.zeros(180)
    ]
    table = persona_rate_table(personas, labels).set_index("persona")
    assert table.loc["Heartbreakers", "note"].startswith("contradicts its playbook: converts above")
    assert table.loc["Golden Leads", "note"].startswith("contradicts its playbook: converts below")
    assert table.loc["Fizzlers", "note"] == ""  # 10% stated, 10% observed
    assert table.loc["Silent Successes", "trials"] == 0
    assert table.loc["Heartbreakers", "observed"] == pytest.approx(0.6)
    assert table.loc["Heartbreakers", "low"] < 0.6 < table.loc["Heartbreakers", "high"]
    assert isinstance(table, pd.DataFrame)


def test_fizzlers_untypable_at_a_day_seven_reference_are_said_to_be(trials):
    """Fading compares the last seven days with the week before: at a day-7 reference
    snapshot nobody can be a Fizzler, and the table must say why, not "no trial"."""
    _, frame = trials
    reference = reference_rows(frame)
    rates = compute_persona_rates(reference, fit_persona_levels(last_snapshot_rows(frame)))
    fizzlers = rates.set_index("persona").loc["Fizzlers"]
    observed = compute_observed_persona_rates(
        frame, fit_persona_levels(last_snapshot_rows(frame))
    ).set_index("persona")
    if reference["snapshot_day"].max() <= 7:
        assert fizzlers["trials"] == 0
        assert "fading needs 8+ days" in fizzlers["note"]
        # ... so their rate is measured at the first snapshot where fading is defined,
        # among the trials still open there, and the note says where
        later = observed.loc["Fizzlers"]
        assert later["trials"] > 0 and later["note"].startswith("typed at ")
        assert later["low"] <= later["observed"] <= later["high"]
        others = observed.drop(index="Fizzlers")
        pd.testing.assert_frame_equal(others, rates.set_index("persona").drop(index="Fizzlers"))
    else:  # a later reference: fading is defined, the ordinary table applies
        assert "fading needs" not in fizzlers["note"]
        pd.testing.assert_frame_equal(observed, rates.set_index("persona"))
