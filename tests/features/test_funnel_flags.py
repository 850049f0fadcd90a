"""Change flags of the funnel on two generated companies with weekly cohorts of 150+
trials: a 15-point drop of one stage in one cohort is flagged; without changes at
most 5% of the tested cohort-stage cells are. Also the statistics' building blocks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from company_factory import SHAPES, make_company

from features.build import FeatureBuilder
from features.funnel_segments import trial_segments
from features.funnel_stages import funnel_stages, trial_stage_days
from features.funnel_stats import benjamini_hochberg, two_proportion_p, wilson_interval
from features.funnel_table import cohort_labels, funnel_table

COMPANIES = {
    "short": dict(n_accounts=6000, seed=51, **SHAPES["short"]),
    "long": dict(n_accounts=5500, seed=52, **SHAPES["long"]),
}


def test_wilson_interval_matches_the_textbook_values():
    low, high = wilson_interval(np.array([0, 5, 10]), np.array([10, 10, 10]))
    # Wilson (1927) / Agresti & Coull (1998): 0/10 -> [0, 0.2775], 5/10 -> [0.2366, 0.7634]
    assert low[0] == 0 and high[0] == pytest.approx(0.27753, abs=1e-4)
    assert (low[1], high[1]) == pytest.approx((0.23659, 0.76341), abs=1e-4)
    assert (low[2], high[2]) == pytest.approx((1 - 0.27753, 1.0), abs=1e-4)
    assert np.isnan(wilson_interval(np.array([0]), np.array([0]))[0][0])


def test_two_proportion_test_and_benjamini_hochberg():
    p = two_proportion_p(np.array([50, 50, 0]), np.array([100, 100, 10]),
                         np.array([50, 30, 0]), np.array([100, 100, 10]))  # fmt: skip
    assert p[0] == pytest.approx(1.0) and p[2] == 1.0
    assert p[1] == pytest.approx(0.00374, abs=2e-4)  # z = 2.9 on the pooled rate 0.4
    # Benjamini & Hochberg's worked example (1995): 15 p-values, q = 0.05 rejects 4
    ps = np.array([0.0001, 0.0004, 0.0019, 0.0095, 0.0201, 0.0278, 0.0298, 0.0344,
                   0.0459, 0.3240, 0.4262, 0.5719, 0.6528, 0.7590, 1.0])  # fmt: skip
    rejected = benjamini_hochberg(ps[::-1], 0.05)[::-1]
    assert rejected.sum() == 4 and rejected[:4].all()
    assert not benjamini_hochberg(np.array([np.nan, 0.5]), 0.05).any()


@pytest.fixture(scope="module", params=sorted(COMPANIES))
def trials(request, tmp_path_factory):
    """Per-trial stage days and segments of a generated company with big weekly cohorts."""
    company = make_company(
        tmp_path_factory.mktemp(f"flags-{request.param}"), **COMPANIES[request.param]
    )
    builder = FeatureBuilder.from_tables(company.tables, company.config)
    as_of = company.tables.export_time()
    stages = funnel_stages(company.config)
    days = trial_stage_days(builder, as_of, stages)
    segments = trial_segments(company.tables, days, company.config, as_of)
    return company.config, stages, days, segments, as_of


def _table(trials, days):
    config, stages, _, segments, as_of = trials
    return funnel_table(days, segments, stages, as_of=as_of, by="week", settings=config.funnel)


@pytest.mark.slow  # two 6,000-trial companies
def test_no_change_flags_at_most_five_percent_of_cells(trials):
    table = _table(trials, trials[2])
    tested = table["p_value"].notna()
    assert tested.sum() > 300
    assert table.loc[tested, "flagged"].mean() <= 0.05
    assert not table.loc[~tested, "flagged"].any()


def _drop(days: pd.DataFrame, cohort_mask: np.ndarray, stage: str, rng) -> pd.DataFrame:
    """15 points fewer of the cohort's trials reach ``stage`` (they stop before it)."""
    out = days.copy()
    reached = np.flatnonzero(cohort_mask & out[stage].notna().to_numpy())
    kill = rng.choice(reached, round(0.15 * cohort_mask.sum()), replace=False)
    out.iloc[kill, out.columns.get_loc(stage)] = np.nan
    return out


@pytest.mark.slow  # two 6,000-trial companies
def test_a_15_point_stage_drop_in_one_weekly_cohort_is_flagged(trials):
    _, stages, days, _, as_of = trials
    cohort = cohort_labels(days["trial_start"], "week")
    sizes = cohort[days["window_end"] < as_of].value_counts().sort_index()
    big = sizes[sizes >= 150].index[len(sizes) // 2 :]  # finished, with history before them
    rng = np.random.default_rng(7)
    hits = []
    for stage in stages[1:-1]:  # every checklist stage and PQL
        for week in rng.choice(big, 3, replace=False):
            mask = (cohort == week).to_numpy()
            table = _table(trials, _drop(days, mask, stage.name, rng))
            row = table[(table["dimension"] == "total") & (table["cohort"] == week)
                        & (table["stage"] == stage.name)].iloc[0]  # fmt: skip
            assert row["trials"] >= 150
            hits.append(bool(row["flagged"]))
    # about 3.7 standard errors at a 50% rate: flagged in most draws, not all
    assert np.mean(hits) >= 0.8, hits
