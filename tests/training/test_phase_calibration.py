"""Calibration per trial phase: right level in every phase, reasons still add up.

Two generated companies unlike the demo (a one-week trial decided within 12
days, a three-week trial decided over 45 days, renamed vocabulary).
"""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
from company_factory import SHAPES, make_company
from scipy.special import expit, logit

from features.build import FeatureBuilder
from models.artifact import TrialcastModel
from models.phases import PHASE_NAMES, cell_codes, cell_name, offsets_of, phase_codes
from serving.batch import predict_open_trials
from training.calibration import MIN_PHASE_ROWS, fit_calibration, phase_inputs
from trialcast.backtest import fit_cohort_model, truncate_tables

COMPANIES = {
    "short": dict(n_accounts=1500, seed=21, **SHAPES["short"]),
    "long": dict(n_accounts=1200, seed=22, **SHAPES["long"]),
}
ORIGIN = pd.Timestamp("2026-03-01")


def test_fit_calibration_recovers_phase_offsets():
    rng = np.random.default_rng(0)
    n = 20_000
    margin = rng.normal(-1.0, 1.0, n)
    elapsed = rng.uniform(0, 40, n)
    length = np.full(n, 20.0)
    phases = phase_codes(elapsed, length)
    true_offsets = np.array([0.0, 0.4, -0.3, 0.2, -0.5])
    y = (rng.random(n) < expit(0.8 * margin + 0.1 + true_offsets[phases])).astype(int)
    fitted = fit_calibration(margin, y, phases)
    assert fitted.a == pytest.approx(0.8, abs=0.08)
    got = np.array([fitted.phase_offsets[name] for name in PHASE_NAMES])
    # Offsets are identified up to the shared intercept.
    assert np.allclose(got + fitted.b, true_offsets + 0.1, atol=0.12)
    # Without phases: one Platt map, no offsets.
    assert fit_calibration(margin, y).phase_offsets == {}


def test_fit_calibration_gives_each_trial_length_its_level_in_a_phase():
    """Trials of 7 and 21 days at the same share of their trial sit at different
    levels: each phase x length cell gets an offset on top of its phase's."""
    rng = np.random.default_rng(2)
    n = 40_000
    margin = rng.normal(-1.0, 1.0, n)
    length = rng.choice([7.0, 21.0], n)
    elapsed = rng.uniform(0, 1.5, n) * length
    codes = cell_codes(elapsed, length)
    phase = codes % len(PHASE_NAMES)
    shift = np.where((length == 21) & (phase < 2), -0.4, 0.0) + 0.3 * (phase == 4)
    y = (rng.random(n) < expit(0.8 * margin + 0.1 + shift)).astype(int)
    fitted = fit_calibration(margin, y, codes)
    assert "21d 0-25%" in fitted.phase_offsets and "7d past end" in fitted.phase_offsets
    z = fitted.a * margin + fitted.b + offsets_of(fitted.phase_offsets, codes)
    for code in np.unique(codes):
        rows = codes == code
        assert expit(z[rows]).mean() == pytest.approx(y[rows].mean(), abs=0.015), code
    # One length only: phase offsets alone (a cell would repeat its phase).
    one = fit_calibration(margin, y, phase_codes(elapsed, np.full(n, 7.0)))
    assert set(one.phase_offsets) <= set(PHASE_NAMES)


def test_thin_phases_get_no_offset():
    rng = np.random.default_rng(1)
    n = MIN_PHASE_ROWS - 1
    margin = rng.normal(size=n)
    y = (rng.random(n) < 0.3).astype(int)
    phases = np.zeros(n, dtype=np.int64)
    assert fit_calibration(margin, y, phases).phase_offsets == {}


@pytest.fixture(scope="module", params=sorted(COMPANIES))
def fitted(request, tmp_path_factory):
    company = make_company(tmp_path_factory.mktemp(request.param), **COMPANIES[request.param])
    known = truncate_tables(company.tables, ORIGIN)
    builder = FeatureBuilder.from_tables(known, company.config)
    model, valid, _ = fit_cohort_model(builder, company.config, ORIGIN)
    return builder, model, valid


def test_each_phase_is_calibrated_on_the_validation_part(fitted):
    _builder, model, valid = fitted
    assert model.phase_offsets, "a conversion model with trial-phase inputs gets offsets"
    codes = phase_inputs(model, valid)
    assert codes is not None
    p, y = model.predict_proba(valid), valid["label"].to_numpy()
    for k, name in enumerate(PHASE_NAMES):
        rows = (codes >= 0) & (codes % len(PHASE_NAMES) == k)
        if name in model.phase_offsets:
            # Maximum likelihood with a free level per phase: mean p = label rate
            # (up to the shrinkage towards the shared map).
            assert p[rows].mean() == pytest.approx(y[rows].mean(), abs=0.02)


def test_reasons_add_up_to_the_served_score_with_phase_offsets(fitted, tmp_path):
    builder, model, _valid = fitted
    scored = predict_open_trials(builder, model, ORIGIN)
    frame = scored.features
    assert len(frame) > 50 and scored.past_end.any() and (~scored.past_end).any()
    served_logit = logit(scored.p_convert)
    contrib = model.contributions(frame)
    assert np.allclose(contrib.logit(), served_logit, atol=1e-8)
    values, base = model.explain_matrix(model.matrix_from_frame(frame))
    assert np.allclose(base + values.sum(axis=1), served_logit, atol=1e-8)
    records = frame[model.features].to_dict("records")
    values, base = model.explain_matrix(model.matrix(records))
    assert np.allclose(base + values.sum(axis=1), served_logit, atol=1e-8)
    # The offsets differ between phases (a phase without one has 0, the shared map),
    # so the served scores depend on them.
    offsets = [model.phase_offsets.get(name, 0.0) for name in PHASE_NAMES]
    assert len(set(np.round(offsets, 6))) > 1
    # They travel with the saved artifact.
    loaded = TrialcastModel.load(model.save(tmp_path / "m"))
    assert loaded.phase_offsets == model.phase_offsets
    assert np.allclose(loaded.predict_proba(frame), scored.p_convert)


def test_a_length_cell_offset_reaches_the_served_score_and_the_reasons(fitted, tmp_path):
    """A phase x length offset (``"7d past end"``) moves exactly the trials of that
    length in that phase, the reasons still add up, and it travels with the artifact."""
    builder, model, _valid = fitted
    frame = predict_open_trials(builder, model, ORIGIN).features
    codes = phase_inputs(model, frame)
    assert codes is not None
    cell = int(np.bincount(codes[codes >= 0]).argmax())
    key = cell_name(cell)
    before = model.predict_proba(frame)
    shifted = copy.copy(model)
    shifted.phase_offsets = {**model.phase_offsets, key: 0.7}
    moved = logit(shifted.predict_proba(frame)) - logit(before)
    assert np.allclose(moved[codes == cell], 0.7) and np.allclose(moved[codes != cell], 0.0)
    contrib = shifted.contributions(frame)
    assert np.allclose(contrib.logit(), logit(shifted.predict_proba(frame)), atol=1e-8)
    loaded = TrialcastModel.load(shifted.save(tmp_path / "m"))
    assert np.allclose(loaded.predict_proba(frame), shifted.predict_proba(frame))
