"""Leak detection, the one "now" and label edges, on companies that differ from the demo."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import raw_accounts, raw_communications, raw_events
from factories import make_config

from features.build import FeatureBuilder, feature_columns
from features.config import ValidationRules, load_demo_config
from features.demo import variants
from features.demo.generator import DemoData, generate_demo_data
from features.leaks import is_outcome_name, scan_leaks
from features.pipeline import lifecycle_stage
from features.snapshots import build_churn_training_set, build_trial_training_set
from features.tables import Tables
from features.validation import validate_tables

T = pd.Timestamp


@pytest.fixture(scope="module")
def other_company() -> DemoData:
    """Not the demo: 21-day trials, a 10-day window, renamed vocabulary, half the activity."""
    demo = generate_demo_data(1200, seed=11, trial_days=(21,), conversion_window_days=10)
    return variants.rename_events(variants.scale_activity(demo, 0.5, seed=1), prefix="act_")


def _config_for(demo: DemoData, **leakage: object):
    base = load_demo_config()
    raw = base.model_dump(mode="json")
    raw["trial"]["conversion_window_days"] = 10
    raw["leakage"] = {**raw["leakage"], **leakage}
    raw["firmographics"]["categorical"] = ["industry", "plan_tier"]
    from features.config import parse_config

    return parse_config(raw)


@pytest.mark.parametrize("seed,scale,vocab", [(11, 0.5, "act_"), (23, 2.0, "e")])
def test_hindsight_event_is_named_and_removed_from_every_feature(
    seed: int, scale: float, vocab: str
) -> None:
    demo = generate_demo_data(900, seed=seed, trial_days=(10, 21), conversion_window_days=5)
    company = variants.rename_events(variants.scale_activity(demo, scale, seed=seed), prefix=vocab)
    leaking = variants.hindsight_event(company, name="Plan Activated", seed=seed)
    cfg = _config_for(leaking)
    scan = scan_leaks(leaking.tables, cfg)
    assert [leak.event for leak in scan.events] == ["Plan Activated"]
    assert scan.excluded_events == ["Plan Activated"]
    assert "Plan Activated" in scan.message() and "EXCLUDED" in scan.message()

    with_leak = FeatureBuilder.from_tables(leaking.tables, cfg)
    clean = FeatureBuilder.from_tables(company.tables, cfg, spec=with_leak.spec)
    assert "Plan Activated" not in with_leak.spec.top_event_types
    a = build_trial_training_set(with_leak)
    b = build_trial_training_set(clean)
    cols = feature_columns(a)
    # Aggregates (totals, active days, distinct types) equal the leak-free company's.
    pd.testing.assert_frame_equal(a[cols], b[cols])


def test_clean_companies_flag_nothing(other_company: DemoData) -> None:
    scan = scan_leaks(other_company.tables, _config_for(other_company))
    assert scan.events == [] and scan.attributes == []
    assert scan.labelled_accounts > 500 and scan.converters > 50


def test_configured_exclusion_and_allow_list(other_company: DemoData) -> None:
    leaking = variants.hindsight_event(other_company, name="Seat Bought")
    allowed = scan_leaks(leaking.tables, _config_for(leaking, allow_events=["Seat Bought"]))
    assert allowed.excluded_events == [] and "kept (allow_events)" in allowed.message()
    forced = scan_leaks(other_company.tables, _config_for(other_company, exclude_events=["act_3"]))
    assert forced.excluded_events == ["act_3"]
    builder = FeatureBuilder.from_tables(
        other_company.tables, _config_for(other_company, exclude_events=["act_3"])
    )
    assert "act_3" not in set(builder.tables.events["event"].astype(str))


def test_attribute_filled_for_converters_is_not_a_feature(other_company: DemoData) -> None:
    company = variants.attribute_for_converters(other_company, "plan_tier", seed=2)
    cfg = _config_for(company)
    scan = scan_leaks(company.tables, cfg)
    assert scan.excluded_attributes == ["plan_tier"]
    frame = FeatureBuilder.from_tables(company.tables, cfg).build(np.arange(5), np.full(5, 2**40))
    assert "firmo_plan_tier" not in frame.columns and "firmo_industry" in frame.columns
    # Declared known at signup: the user's word wins; declared current: never a feature.
    raw = cfg.model_dump(mode="json")
    raw["firmographics"]["known_at"] = {"plan_tier": "signup", "industry": "current"}
    from features.config import parse_config

    scan2 = scan_leaks(company.tables, parse_config(raw))
    assert scan2.excluded_attributes == ["industry"]


@pytest.mark.parametrize("value", [0.0, np.nan], ids=["zeroed", "emptied"])
@pytest.mark.parametrize("company_kind", ["other", "busy-14-day"])
def test_mrr_rewritten_at_churn_is_named_and_never_a_feature(
    other_company: DemoData, company_kind: str, value: float
) -> None:
    """An export that zeroes (or empties) churned accounts' MRR would tell the churn
    model who churned through customer_mrr; the scan names it and the feature is
    empty everywhere. The same companies as exported by the generator flag nothing."""
    company = (
        other_company
        if company_kind == "other"
        else variants.rename_events(
            variants.scale_activity(
                generate_demo_data(1500, seed=4, trial_days=(14,), conversion_window_days=20),
                2.0,
                seed=4,
            ),
            prefix="e",
        )
    )
    cfg = _config_for(company)
    assert "mrr" not in scan_leaks(company.tables, cfg).excluded_attributes
    rewritten = variants.mrr_rewritten_at_churn(company, value)
    scan = scan_leaks(rewritten.tables, cfg)
    assert scan.excluded_attributes == ["mrr"]
    assert "account column 'mrr'" in scan.message() and "churn" in scan.message()
    builder = FeatureBuilder.from_tables(rewritten.tables, cfg)
    churn = build_churn_training_set(builder)
    assert len(churn) > 100 and churn["customer_mrr"].isna().all()
    clean = build_churn_training_set(FeatureBuilder.from_tables(company.tables, cfg))
    assert clean["customer_mrr"].notna().mean() > 0.9


def test_outcome_names() -> None:
    assert is_outcome_name("Subscription Started") and is_outcome_name("invoice.paid")
    assert not is_outcome_name("Billing Page Viewed") and not is_outcome_name("Pipeline Created")


# ----------------------------------------------------------------------------- one "now"


def _frames() -> dict[str, pd.DataFrame]:
    return {
        "events": raw_events(),
        "accounts": raw_accounts(),
        "communications": raw_communications(),
    }


def test_message_dated_2099_is_quarantined_and_does_not_move_now() -> None:
    f = _frames()
    extra = f["communications"].iloc[[0]].assign(timestamp="2099-01-01T00:00:00")
    comms = pd.concat([f["communications"], extra], ignore_index=True)
    tables, report = validate_tables(f["events"], f["accounts"], comms, rules=ValidationRules())
    assert report.rows_kept["communications"] == len(comms) - 1
    assert set(report.quarantine["communications"]["_reason"].astype(str)) == {
        "communications.timestamp: after export"
    }
    assert tables.export_time() == T("2024-03-20")  # the latest account date, not 2099


def test_message_long_before_trial_and_account_dates_after_export() -> None:
    f = _frames()
    comms = f["communications"].copy()
    comms.loc[2, "timestamp"] = "2023-01-01T00:00:00"  # a2, a year before its trial
    acc = f["accounts"].copy()
    acc.loc[0, "converted_at"] = "2099-01-01T00:00:00"
    tables, report = validate_tables(f["events"], acc, comms, rules=ValidationRules())
    reasons = set(report.quarantine["communications"]["_reason"].astype(str))
    assert "communications.timestamp: before trial" in reasons
    # A 2099 conversion is not known at the export: emptied and reported, not a label.
    assert tables.accounts["converted_at"].isna().all()
    assert any(p.check == "after_export" and p.column == "converted_at" for p in report.problems)


def test_configured_export_time_is_the_now_of_labels() -> None:
    f = _frames()
    rules = ValidationRules(export_time="2024-05-01T00:00:00Z")
    tables, _ = validate_tables(f["events"], f["accounts"], f["communications"], rules=rules)
    assert tables.export_time() == T("2024-05-01")
    cfg = make_config(trial={"conversion_window_days": 30}, firmographics={})
    builder = FeatureBuilder.from_tables(tables, cfg)
    # Latest event is 2024-03-06: without the configured now, no window would be closed.
    train = build_trial_training_set(builder)
    assert set(train["account_id"]) == {"a1", "a2"}
    assert train.groupby("account_id")["label"].max().to_dict() == {"a1": 1, "a2": 0}


# ----------------------------------------------------------------------------- label edges


def _edge_tables(conv: list[str | None]) -> Tables:
    n = len(conv)
    acc = pd.DataFrame(
        {
            "account_id": [f"a{i}" for i in range(n)],
            "trial_start": [T("2024-01-01")] * n,
            "trial_end": [T("2024-01-15")] * n,
            "converted_at": pd.to_datetime(pd.Series(conv, dtype=object)).astype("datetime64[ns]"),
            "churned_at": pd.Series([pd.NaT] * n, dtype="datetime64[ns]"),
        }
    )
    ev = pd.DataFrame(
        {
            "account_id": [f"a{i}" for i in range(n)],
            "user_id": ["u"] * n,
            "event": ["login"] * n,
            "timestamp": [T("2024-01-02")] * n,
        }
    )
    return Tables(events=ev, accounts=acc, export_at=T("2024-06-01"))


@pytest.mark.parametrize(
    "window,conv,label",
    [
        (0, "2024-01-15", 1),  # window 0, conversion exactly at trial end
        (0, "2024-01-15 00:00:01", 0),
        (5, "2024-01-20", 1),  # exactly at window end
        (5, "2024-01-20 00:00:01", 0),
        (5, None, 0),
    ],
)
def test_window_edges_one_rule_for_label_and_lifecycle(
    window: int, conv: str | None, label: int
) -> None:
    cfg = make_config(trial={"conversion_window_days": window, "snapshot_days": [3]})
    builder = FeatureBuilder.from_tables(_edge_tables([conv]), cfg)
    train = build_trial_training_set(builder)
    assert set(train["label"]) == {label}
    if label:  # a labelled converter is a customer right after it converted
        moment = int((T(conv) + pd.Timedelta(seconds=1)).value // 10**9)
        assert lifecycle_stage(builder, np.array([0]), moment).iloc[0] == "customer"


def test_window_not_closed_at_now_is_censored() -> None:
    cfg = make_config(trial={"conversion_window_days": 5, "snapshot_days": [3]})
    tables = _edge_tables([None, "2024-01-20"])
    at_end = Tables(tables.events, tables.accounts, export_at=T("2024-01-20"))
    with pytest.raises(ValueError, match="closed label window"):
        build_trial_training_set(FeatureBuilder.from_tables(at_end, cfg))
    builder = FeatureBuilder.from_tables(at_end, cfg)
    # At the window's last moment the unconverted account is still deciding.
    assert (
        lifecycle_stage(builder, np.array([0]), int(T("2024-01-20").value // 10**9)).iloc[0]
        == "deciding"
    )
