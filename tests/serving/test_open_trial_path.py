"""The one scoring path for open trials, on two generated companies unlike the demo.

Company "short": 7-day trials, a 12-day window, most conversions after the trial
spread over the window. Company "long": 21-day trials, a 45-day window, half the
conversions inside the trial. Both use a renamed vocabulary.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from company_factory import SHAPES, Company, make_company

from features.build import FeatureBuilder
from features.demo.latent import open_probability
from features.snapshots import build_trial_training_set
from models.loader import LoadedModel
from serving.batch import predict_open_trials, score_and_close
from serving.forecast.revenue import forecast_new_revenue
from serving.forecast.timing import fit_conversion_timing
from serving.scoring import ScoringModels
from trialcast.backtest import fit_cohort_model

SPECS = {
    "short": dict(n_accounts=1500, seed=11, **SHAPES["short"]),
    "long": dict(n_accounts=1200, seed=12, **SHAPES["long"]),
}


@pytest.fixture(scope="module", params=sorted(SPECS))
def trained(request, tmp_path_factory):
    spec = SPECS[request.param]
    company = make_company(tmp_path_factory.mktemp(request.param), **spec)
    export = company.tables.export_time()
    builder = FeatureBuilder.from_tables(company.tables, company.config)
    model, _valid, _rows = fit_cohort_model(builder, company.config, export)
    return company, builder, model, spec


def _as_of(company: Company) -> pd.Timestamp:
    return company.tables.export_time().normalize()


def test_training_set_holds_post_trial_snapshots(trained):
    company, builder, _model, spec = trained
    frame = build_trial_training_set(builder)
    post = frame[frame["snapshot"].str.match(r"^end_\d+d$")]
    assert len(post) > 0
    days = sorted({int(s[4:-1]) for s in post["snapshot"]})
    window_days = spec["window_days"]
    tail = {window_days - d for d in (1, 3, 7) if window_days - d > 0}
    assert days == sorted({d for d in (1, 3, 7, 14, 21, 30) if d < window_days} | tail)
    assert (post["trial_days_remaining"] < 0).all()
    acc = company.tables.accounts.set_index(company.tables.accounts["account_id"].astype(str))
    end = acc.loc[post["account_id"].astype(str), "trial_end"].to_numpy()
    conv = acc.loc[post["account_id"].astype(str), "converted_at"].to_numpy()
    window = np.timedelta64(spec["window_days"], "D")
    as_of = post["as_of"].to_numpy()
    assert (as_of < end + window).all()
    # Still open at the snapshot; label = converts from now until the window closes.
    assert not (conv < as_of).any()
    label = ~pd.isna(conv) & (conv < end + window)
    assert (post["label"].to_numpy() == label.astype(np.int8)).all()
    assert post["label"].sum() > 0


def test_closed_trials_are_out_and_scores_are_at_as_of(trained):
    company, builder, model, spec = trained
    as_of = _as_of(company)
    scored = predict_open_trials(builder, model, as_of)
    idx = builder.index
    t = int(as_of.value // 10**9)
    window = spec["window_days"] * 86_400
    assert len(scored.closed) > 0 and len(np.intersect1d(scored.closed, scored.positions)) == 0
    assert (idx.trial_end[scored.closed] + window <= t).all()
    assert (idx.trial_end[scored.positions] + window > t).all()
    assert scored.past_end.any() and (~scored.past_end).any()
    # Every open trial is scored on features at as_of, not at its trial end.
    assert np.allclose(scored.features["trial_days_remaining"][scored.past_end] < 0, True)
    p = scored.p_convert
    assert ((p > 0) & (p < 1)).all()
    assert np.allclose(p, model.predict_proba(scored.features))


def _true_open(
    company: Company, spec: dict, ids: pd.Index, as_of: pd.Timestamp
) -> tuple[np.ndarray, np.ndarray]:
    """The generator's chance that each trial converts from ``as_of`` until its window
    closes, and the days left in that window."""
    truth = company.demo.truth.set_index("account_id").loc[ids]
    start = pd.to_datetime(company.tables.accounts.set_index("account_id").loc[ids, "trial_start"])
    day_now = ((as_of - start) / pd.Timedelta(days=1)).to_numpy()
    length = np.full(len(ids), float(spec["trial_days"]))
    window = float(spec["window_days"])
    survival = spec["lags"].survival(day_now, length, window)
    return open_probability(truth["p_convert"].to_numpy(), survival), length + window - day_now


def test_post_trial_probability_matches_the_truth(trained):
    company, builder, model, spec = trained
    as_of = _as_of(company)
    scored = predict_open_trials(builder, model, as_of)
    ids = scored.features.index.astype(str)[scored.past_end]
    true_open, _ = _true_open(company, spec, ids, as_of)
    predicted = scored.p_convert[scored.past_end].sum()
    assert abs(predicted / true_open.sum() - 1.0) < 0.35, (predicted, true_open.sum())


def test_trials_in_the_last_week_of_their_window_get_their_true_chance(trained):
    # As a trial's conversion window runs out its chance falls to nothing; training
    # snapshots stopped short of the window's end, so the model carried the last
    # snapshot's chance on (1.8-26x the truth 3-4 weeks past the end, docs/benchmarks.md).
    company, builder, model, spec = trained
    as_of = _as_of(company)
    scored = predict_open_trials(builder, model, as_of)
    true_open, days_left = _true_open(company, spec, scored.features.index.astype(str), as_of)
    last_week = scored.past_end & (days_left <= min(7.0, spec["window_days"] / 2))
    predicted, true_sum = scored.p_convert[last_week].sum(), true_open[last_week].sum()
    print(f"last week of the window: {last_week.sum()} trials, {predicted:.2f} vs {true_sum:.2f}")
    assert last_week.sum() >= 15
    assert predicted <= 1.5 * true_sum + 0.5, (predicted, true_sum)  # was 1.01 vs 0.02


def test_forecast_counts_add_up_and_leave_closed_trials_out(trained):
    company, builder, model, spec = trained
    as_of = _as_of(company)
    loaded = LoadedModel(
        model=model, kind="conversion", name="conv", version="7", alias="test", source="test"
    )
    models = ScoringModels(config=company.config, conversion=loaded)
    scores, listed = score_and_close(company.config, company.tables, models, as_of=as_of)
    assert (scores["model_version"] == "7").all()
    scores.to_parquet(company.root / "scores.parquet")  # a plain frame the service reads
    closed_ids = set(builder.index.account_ids[predict_open_trials(builder, model, as_of).closed])
    assert closed_ids and not closed_ids & set(scores["account_id"])
    assert set(listed["account_id"]) == closed_ids
    assert (listed["p_convert"] == 0).all() and (listed["lifecycle"] == "closed").all()
    assert (listed["window_closed_at"] <= as_of).all()
    assert scores["deal_value"].notna().all() and (scores["deal_value"] > 0).all()
    assert set(scores["deal_value_source"]) <= {"quote", "group", "all"}
    frame = scores.assign(
        trial_days_elapsed=(as_of - scores["trial_start"]) / pd.Timedelta(days=1),
        trial_length_days=float(spec["trial_days"]),
    )
    timing = fit_conversion_timing(
        company.tables.accounts, as_of=as_of, window_days=spec["window_days"]
    )
    breakdown = forecast_new_revenue(frame, timing, as_of=as_of)
    total = breakdown[breakdown["dimension"] == "total"].iloc[0]
    months = breakdown[breakdown["dimension"] == "month"]
    assert total["expected_count"] == pytest.approx(scores["p_convert"].sum())
    assert months["expected_count"].sum() == pytest.approx(total["expected_count"])
    assert months["expected"].sum() == pytest.approx(total["expected"])
    # Deal values are estimates: their spread widens the range beyond Bernoulli alone.
    assert total["p90"] > total["p10"]
