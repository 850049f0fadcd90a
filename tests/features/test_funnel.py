"""The trial funnel's counts against a brute-force count from the raw tables, on two
generated companies unlike the demo (renamed vocabulary, 7- and 21-day trials,
12- and 45-day windows), at an ``as_of`` inside the data (point in time)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from company_factory import SHAPES, make_company

from features.build import build_features
from features.config import CompanyConfig
from features.personas import compute_pql
from features.tables import Tables
from trialcast.funnel_job import run_funnel

DAY = pd.Timedelta(days=1)
COMPANIES = {
    "short": dict(n_accounts=700, seed=41, **SHAPES["short"]),
    "long": dict(n_accounts=600, seed=42, **SHAPES["long"]),
}


@pytest.fixture(scope="module", params=sorted(COMPANIES))
def company(request, tmp_path_factory):
    return make_company(
        tmp_path_factory.mktemp(f"funnel-{request.param}"), **COMPANIES[request.param]
    )


def _monday(ts: pd.Series) -> pd.Series:
    day = ts.dt.normalize()
    return (day - pd.to_timedelta(day.dt.day_of_week, unit="D")).dt.strftime("%Y-%m-%d")


def _nth_event_days(
    events: pd.DataFrame, trials: pd.DataFrame, names: list[str], n: int
) -> pd.Series:
    """Days from trial start to the n-th event named ``names`` before the trial's cutoff."""
    e = events[events["event"].isin(names)].merge(trials[["cutoff", "trial_start"]],
                                                  left_on="account_id", right_index=True)  # fmt: skip
    e = e[e["timestamp"] < e["cutoff"]].sort_values(["account_id", "timestamp"])
    nth = e.groupby("account_id").nth(n - 1).set_index("account_id")
    days = (nth["timestamp"] - nth["trial_start"]) / DAY
    return days.clip(lower=0).reindex(trials.index)


def _pql_days(tables: Tables, config: CompanyConfig, trials: pd.DataFrame) -> pd.Series:
    """First checkpoint (snapshot days, then the trial's cutoff) where the PQL rule holds."""
    found = pd.Series(np.nan, index=trials.index)
    moments = [trials["trial_start"] + d * DAY for d in config.trial.snapshot_days]
    for moment in [*moments, trials["cutoff"]]:
        todo = found.isna() & (moment <= trials["cutoff"])
        if not todo.any():
            continue
        cut = moment[todo]
        flag = compute_pql(build_features(tables, config, cut), config).reindex(cut.index)
        hit = flag[flag].index
        found[hit] = (cut[hit] - trials.loc[hit, "trial_start"]) / DAY
    return found


def brute_force(tables: Tables, config: CompanyConfig, as_of: pd.Timestamp) -> pd.DataFrame:
    """Per trial: weekly cohort, motion and days to each stage, straight from the tables."""
    acc = tables.accounts.set_index("account_id")
    trials = acc[acc["trial_start"] < as_of].copy()
    trials["cutoff"] = trials["trial_end"].clip(upper=as_of)
    events = tables.events[tables.events["timestamp"] < as_of]
    out = pd.DataFrame({"cohort": _monday(trials["trial_start"]), "signup": 0.0})
    for m in config.activation.milestones:
        days = _nth_event_days(events, trials, m.events, m.min_count)
        if m.deadline_days is not None:
            days = days.where(days <= m.deadline_days)
        out[m.name] = days
    out["PQL"] = _pql_days(tables, config, trials)
    window_end = trials["trial_end"] + config.trial.conversion_window_days * DAY
    paid = (trials["converted_at"] < as_of) & (trials["converted_at"] <= window_end)
    out["paid"] = ((trials["converted_at"] - trials["trial_start"]) / DAY).clip(lower=0).where(paid)
    c = tables.communications
    touch = c[(c["direction"] == "outbound") & c["channel"].isin(["call", "meeting"])]
    touch = touch.merge(trials[["trial_start", "cutoff"]], left_on="account_id", right_index=True)
    inside = touch[
        (touch["timestamp"] >= touch["trial_start"]) & (touch["timestamp"] < touch["cutoff"])
    ]
    out["motion"] = np.where(out.index.isin(inside["account_id"]), "sales-assisted", "self-serve")
    return out


def test_every_stage_share_equals_a_brute_force_count(company, tmp_path):
    as_of = company.tables.export_time().normalize() - 40 * DAY
    result = run_funnel(company.config, company.tables, as_of=as_of, folder=tmp_path)
    truth = brute_force(company.tables, company.config, as_of)
    stages = [s.name for s in result.stages]
    assert stages[0] == "signup" and stages[-2:] == ["PQL", "paid"]
    assert set(stages[1:-2]) == {m.name for m in company.config.activation.milestones}
    truth["all"] = "all"
    table = result.table
    checked = 0
    for dimension, column in (("total", "all"), ("motion", "motion")):
        for (cohort, segment), part in truth.groupby(["cohort", column]):
            rows = table[(table["dimension"] == dimension) & (table["cohort"] == cohort)
                         & (table["segment"] == segment)].set_index("stage")  # fmt: skip
            assert list(rows.index) == stages
            for stage in stages:
                reached = part[stage].notna()
                row = rows.loc[stage]
                assert row["trials"] == len(part), (cohort, segment, stage)
                assert row["reached"] == reached.sum(), (cohort, segment, stage)
                assert row["share"] == pytest.approx(reached.mean())
                if reached.any():
                    # features count whole seconds, the raw events milliseconds
                    assert row["median_days"] == pytest.approx(part[stage].median(), abs=2e-5)
                checked += 1
    assert checked > 100
    assert (truth["PQL"].notna().sum(), truth["paid"].notna().sum()) > (0, 0)
    assert (truth["motion"] == "sales-assisted").any() and (truth["motion"] == "self-serve").any()
    # nothing at or after as_of counts: a later conversion is not paid yet
    late = company.tables.accounts["converted_at"] >= as_of
    assert late.any()
    assert (
        table.query("dimension == 'total' and stage == 'paid'")["reached"].sum()
        == truth["paid"].notna().sum()
    )
