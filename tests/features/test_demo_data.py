"""Tests of the demo data generator: contract shape, time invariants, and the truth.

One 4,000-account data set (seed 7) is generated once and shared; the determinism
tests use 500 accounts. The statistical checks use tolerances of about 3.5 standard
errors, so with the fixed seeds they pass deterministically but a broken model
(wrong calibration, leaked timestamps, wrong conditional formula) fails them.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from features.config import CONTRACT_COLUMNS, load_demo_config
from features.demo import latent as dl
from features.demo.generator import DemoData, generate_demo_data, write_demo_data

EXPORT = pd.Timestamp("2026-11-01")
WINDOW = pd.Timedelta(days=30)


@cache
def _demo() -> DemoData:
    return generate_demo_data(4_000, seed=7)


def _resolved(demo: DemoData) -> np.ndarray:
    """Accounts whose conversion window closed before the export (outcome known)."""
    return (demo.tables.accounts["trial_end"] + WINDOW < EXPORT).to_numpy()


def _per_account(demo: DemoData, column: str) -> np.ndarray:
    """Each event's account's ``column`` value from the accounts table."""
    accounts = demo.tables.accounts.set_index("account_id")[column]
    codes = demo.tables.events["account_id"].astype(str)
    return accounts.reindex(codes).to_numpy()


def test_same_seed_gives_identical_frames_and_other_seed_differs() -> None:
    a = generate_demo_data(500, seed=11)
    b = generate_demo_data(500, seed=11)
    c = generate_demo_data(500, seed=12)
    for name in ("events", "accounts", "communications"):
        pd.testing.assert_frame_equal(getattr(a.tables, name), getattr(b.tables, name))
    pd.testing.assert_frame_equal(a.truth, b.truth)
    # A different seed must change outcomes and timestamps, not only row order.
    assert not a.truth["p_convert"].equals(c.truth["p_convert"])
    assert not a.tables.accounts["trial_start"].equals(c.tables.accounts["trial_start"])


def test_tables_have_contract_columns_and_canonical_dtypes() -> None:
    t = _demo().tables
    assert t.communications is not None
    frames = {"events": t.events, "accounts": t.accounts, "communications": t.communications}
    for name, frame in frames.items():
        expected = [c for c in CONTRACT_COLUMNS[name] if c != "properties"]
        assert set(expected) <= set(frame.columns), name
        for col in frame.columns:
            if col in ("timestamp", "trial_start", "trial_end", "converted_at", "churned_at"):
                assert frame[col].dtype == np.dtype("datetime64[ns]"), (name, col)
    for col in ("account_id", "user_id", "event"):
        assert isinstance(t.events[col].dtype, pd.CategoricalDtype), col
    acc = t.accounts
    assert acc["account_id"].is_unique and acc["account_id"].str.match(r"^acc_\d{6}$").all()
    # A deal's value is known once won; open trials carry a CRM quote (or none).
    paying = acc["converted_at"].notna()
    assert acc["deal_value"].dtype == np.float64 and (acc.loc[paying, "deal_value"] > 0).all()
    assert acc.loc[~paying, "deal_value"].isna().all()
    assert 0.7 < acc["quote"].notna().mean() < 0.9 and (acc["quote"].dropna() > 0).all()
    # mrr is known exactly for accounts the export sees as converted.
    np.testing.assert_allclose(
        acc.loc[paying, "mrr"], acc.loc[paying, "deal_value"] / 12, atol=0.01
    )
    assert acc.loc[~paying, "mrr"].isna().all()
    assert set(acc["plan"]) == set(dl.PLANS)
    assert acc["industry"].nunique() == 8 and acc["country"].nunique() == 6
    assert acc["company_size"].dtype == np.int64 and acc["company_size"].max() >= 1000
    com = t.communications
    assert set(com["direction"]) == {"inbound", "outbound"}
    assert set(com["channel"]) <= {"email", "chat", "call", "meeting", "ticket", "in_app"}
    assert com["sentiment"].between(-1, 1).all() and com["text"].notna().all()
    assert com["user_id"].isna().any() and com["user_id"].notna().any()


def test_no_row_at_or_after_export_time() -> None:
    t = _demo().tables
    assert t.communications is not None
    assert t.events["timestamp"].max() < EXPORT
    assert t.communications["timestamp"].max() < EXPORT
    for col in ("trial_start", "converted_at", "churned_at"):
        assert t.accounts[col].max() < EXPORT, col
    # Some trials are still open at export: trial_end may lie after it.
    assert (t.accounts["trial_end"] > EXPORT).any()


def test_no_event_before_trial_start_or_after_churn() -> None:
    demo = _demo()
    ts = demo.tables.events["timestamp"].to_numpy()
    assert (ts >= _per_account(demo, "trial_start")).all()
    churned = _per_account(demo, "churned_at")
    has_churn = ~pd.isna(churned)
    assert has_churn.any()
    assert (ts[has_churn] < churned[has_churn]).all()
    com = demo.tables.communications
    assert com is not None
    starts = demo.tables.accounts.set_index("account_id")["trial_start"]
    assert (com["timestamp"].to_numpy() >= starts.reindex(com["account_id"]).to_numpy()).all()


def test_users_only_act_after_joining() -> None:
    ev = _demo().tables.events
    joined = (
        ev[ev["event"] == "Teammate Joined"].groupby("user_id", observed=True)["timestamp"].min()
    )
    first = ev.dropna(subset=["user_id"]).groupby("user_id", observed=True)["timestamp"].min()
    both = pd.concat([joined.rename("joined"), first.rename("first")], axis=1, join="inner")
    assert len(both) > 100
    assert (both["first"] >= both["joined"]).all()


def test_vocabulary_covers_demo_config_milestones_and_core_events() -> None:
    cfg = load_demo_config()
    seen = set(_demo().tables.events["event"].unique().astype(str))
    wanted = {e for m in cfg.activation.milestones for e in m.events}
    wanted |= set(cfg.engagement.core_events) | set(cfg.engagement.invite_events)
    assert wanted <= seen
    counts = _demo().tables.events["event"].value_counts()
    # Long-tailed: at least 30 event types, the top one far above the median one.
    assert len(counts[counts > 0]) >= 30
    assert counts.iloc[0] > 10 * counts.median()


def test_all_seven_types_present() -> None:
    truth = generate_demo_data(2_000, seed=3).truth
    assert set(truth["persona"]) == set(dl.PERSONAS)


def test_type_conversion_rates_near_stated_chance() -> None:
    truth = _demo().truth
    for persona, chance in dl.STATED_CHANCE.items():
        rows = truth[truth["persona"] == persona]
        se = np.sqrt(chance * (1 - chance) / len(rows))
        # Observed outcomes: sampling error plus a small calibration allowance.
        assert abs(rows["converted"].mean() - chance) < 3.5 * se + 0.02, persona
        # The truth itself is calibrated per type.
        assert abs(rows["p_convert"].mean() - chance) < 0.04, persona
    assert 0.2 <= truth["converted"].mean() <= 0.33


def test_conversions_fall_inside_the_window_and_export_hides_later_ones() -> None:
    demo = _demo()
    acc, truth = demo.tables.accounts, demo.truth
    conv = truth["converted_at_true"]
    assert truth["converted"].equals(conv.notna())
    assert (conv[truth["converted"]] < (acc["trial_end"] + WINDOW)[truth["converted"]]).all()
    assert (conv[truth["converted"]] > acc["trial_start"][truth["converted"]]).all()
    # Both in-trial and post-trial conversions happen.
    in_trial = (conv < acc["trial_end"])[truth["converted"]]
    assert 0.2 < in_trial.mean() < 0.5
    known = conv < EXPORT
    pd.testing.assert_series_equal(acc["converted_at"][known], conv[known], check_names=False)
    assert acc["converted_at"][~known].isna().all()
    assert (truth["churned_at_true"].notna() <= truth["converted"]).all()
    churn = truth["churned_at_true"].notna()
    assert (truth["churned_at_true"][churn] > conv[churn]).all()


def test_write_demo_data_round_trips(tmp_path: Path) -> None:
    demo = generate_demo_data(300, seed=5)
    paths = write_demo_data(demo, tmp_path)
    assert {"events", "accounts", "communications", "truth", "meta"} <= set(paths)
    for name in ("events", "accounts", "communications"):
        back = pd.read_parquet(paths[name])
        pd.testing.assert_frame_equal(back, getattr(demo.tables, name))
    pd.testing.assert_frame_equal(pd.read_parquet(paths["truth"]), demo.truth)
    meta = pd.read_json(paths["meta"], typ="series")
    assert meta["seed"] == 5 and meta["n_accounts"] == 300


def test_open_probabilities_bounded_and_non_increasing() -> None:
    truth = _demo().truth
    cols = ["p_convert"] + [f"p_convert_open_d{d}" for d in (1, 3, 7, 14)]
    values = truth[cols].to_numpy()
    assert ((values >= 0) & (values <= 1)).all()
    assert (np.diff(values, axis=1) <= 1e-12).all()
    # 14-day trials: day 14 is the trial end; 30-day trials: the end is later.
    end = truth["p_convert_open_end"]
    short = truth["trial_days"] == 14
    np.testing.assert_allclose(end[short], truth.loc[short, "p_convert_open_d14"])
    assert (end[~short] <= truth.loc[~short, "p_convert_open_d14"] + 1e-12).all()
    assert (end[~short] < truth.loc[~short, "p_convert_open_d14"]).any()


def test_open_probability_matches_outcomes_of_still_open_accounts() -> None:
    # Among accounts not converted before trial end, the observed conversion rate
    # must match the mean of p_convert_open_end (the exact conditional formula).
    truth = _demo().truth
    accounts = _demo().tables.accounts
    open_at_end = ~(truth["converted_at_true"] < accounts["trial_end"])
    p = truth.loc[open_at_end, "p_convert_open_end"]
    observed = truth.loc[open_at_end, "converted"].mean()
    se = np.sqrt((p * (1 - p)).sum()) / len(p)
    assert abs(observed - p.mean()) < 3.5 * se
    # ... and differs clearly from the unconditional p_convert.
    assert truth.loc[open_at_end, "p_convert"].mean() - observed > 5 * se


def test_higher_p_convert_converts_more() -> None:
    truth = _demo().truth
    low, high = truth["p_convert"].quantile([1 / 3, 2 / 3])
    rate_low = truth.loc[truth["p_convert"] <= low, "converted"].mean()
    rate_high = truth.loc[truth["p_convert"] >= high, "converted"].mean()
    assert rate_high > rate_low + 0.3
    assert roc_auc_score(truth["converted"], truth["p_convert"]) > 0.8


def test_successful_runs_predict_conversion_better_than_creating_pipelines() -> None:
    # The discoverable driver: a successful pipeline, not setting one up.
    demo = _demo()
    ev = demo.tables.events
    in_trial = ev["timestamp"].to_numpy() < _per_account(demo, "trial_end")
    n = len(demo.tables.accounts)

    def count(name: str) -> np.ndarray:
        rows = in_trial & (ev["event"] == name).to_numpy()
        return np.bincount(ev["account_id"].cat.codes.to_numpy()[rows], minlength=n)

    done = _resolved(demo)
    y = demo.truth["converted"].to_numpy()[done]
    auc_runs = roc_auc_score(y, count("Pipeline Run Succeeded")[done])
    auc_created = roc_auc_score(y, count("Pipeline Created")[done])
    assert auc_runs > auc_created + 0.1


def test_aha_burst_is_in_the_events_and_raises_conversion_among_equal_types() -> None:
    """The aha moment (features.demo.aha) leaves its burst of 10 successful runs in
    the log at the recorded time, and reaching it converts more within each lead type
    (the causal effect milestone discovery must find beyond activity)."""
    from features.demo.aha import BURST_HOURS, BURST_RUNS

    demo = _demo()
    truth, ev = demo.truth, demo.tables.events
    aha = truth.set_index("account_id")["aha_at_true"]
    reached = aha.notna()
    assert 0.15 < reached.mean() < 0.45
    runs = ev[ev["event"] == "Pipeline Run Succeeded"]
    at = aha.reindex(runs["account_id"].astype(str)).to_numpy()
    in_burst = (runs["timestamp"].to_numpy() >= at) & (
        runs["timestamp"].to_numpy() < at + pd.Timedelta(hours=BURST_HOURS)
    )
    per_account = pd.Series(in_burst).groupby(runs["account_id"].astype(str).to_numpy()).sum()
    seen = reached & (aha + pd.Timedelta(hours=BURST_HOURS) < EXPORT)  # burst before the export
    assert seen.sum() > 0.9 * reached.sum()
    assert (per_account.reindex(aha.index[seen]).fillna(0) >= BURST_RUNS).all()
    # every aha happens in the trial, after the first pipeline
    acc = demo.tables.accounts.set_index("account_id")
    assert (aha[reached] < acc.loc[reached[reached].index, "trial_end"]).all()
    done = pd.Series(_resolved(demo), index=acc.index)
    closed = truth.assign(reached=reached.to_numpy())[done.to_numpy()]
    gaps = []
    for _, rows in closed.groupby("persona"):
        if rows["reached"].sum() >= 30 and (~rows["reached"]).sum() >= 30:
            gaps.append(
                rows.loc[rows["reached"], "converted"].mean()
                - rows.loc[~rows["reached"], "converted"].mean()
            )
    assert len(gaps) >= 4 and min(gaps) > 0.05 and np.mean(gaps) > 0.15


def test_invalid_arguments_are_rejected() -> None:
    with pytest.raises(ValueError):
        generate_demo_data(0)
    with pytest.raises(ValueError):
        generate_demo_data(10, trial_days=())
    with pytest.raises(ValueError):
        generate_demo_data(10, start="2026-10-31", export_time="2026-11-01")
