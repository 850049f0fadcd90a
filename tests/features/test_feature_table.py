"""The feature table source: validation and quarantine, point-in-time lookup, snapshots, leaks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from table_companies import write_company

from features.build import FeatureBuilder
from features.demo.table_company import TableCompany, generate_table_company
from features.feature_table import table_rows, trial_end_only
from features.loaders import load_tables
from features.quarantine import InputError
from features.snapshots import build_trial_training_set
from features.table_leaks import check_table_leaks


def test_table_alone_loads_with_accounts_from_its_columns(tmp_path):
    company = TableCompany(n_trials=120, seed=3, trial_days=21)
    config, _ = write_company(tmp_path, company)
    loaded = load_tables(config)
    t = loaded.tables
    assert len(t.events) == 0 and t.features is not None
    assert len(t.accounts) == 120 and t.accounts["converted_at"].notna().sum() > 10
    assert (t.accounts["trial_end"] - t.accounts["trial_start"]).dt.days.eq(21).all()
    assert t.export_time() == company.export
    assert loaded.report.rows_in["features"] == 120 == loaded.report.rows_kept["features"]
    # the table's typed columns: boolean as 1/0, categorical as text
    assert set(t.features["sso_enabled"].dropna().unique()) <= {0.0, 1.0}
    assert t.features["plan_interest"].dropna().isin(["starter", "team", "business"]).all()
    assert "trial-end model" in loaded.report.summary()


def test_bad_rows_are_quarantined_and_counted(tmp_path):
    company = TableCompany(n_trials=60, seed=4, leaks=False)
    frame = generate_table_company(company).astype({"seats": object, "sso_enabled": object})
    bad = pd.concat(
        [
            frame,
            frame.iloc[[0]],  # exact repeat
            frame.iloc[[1]].assign(seats=99),  # same key, other values
            frame.iloc[[2]].assign(account_id=None),  # no id
        ],
        ignore_index=True,
    )
    bad.loc[5, "seats"] = "many"  # not a number: emptied, row kept
    bad.loc[6, "sso_enabled"] = "perhaps"
    config, _ = write_company(tmp_path, company, frame=bad)
    loaded = load_tables(config)
    report = loaded.report
    assert report.rows_in["features"] == 63
    assert report.rows_kept["features"] == 60
    reasons = report.quarantine["features"]["_reason"].astype(str).tolist()
    assert sorted(reasons) == sorted(
        ["features: duplicate row", "features.account_id: duplicate key",
         "features.account_id: missing value"]
    )  # fmt: skip
    text = report.summary()
    assert "features.seats: 1 row with a non-numeric value" in text and "'many'" in text
    assert "features.sso_enabled: 1 row with a value that is not true/false" in text
    kept = loaded.tables.features.set_index("account_id")
    assert np.isnan(kept.loc[frame.loc[5, "account_id"], "seats"])
    written = report.write_quarantine(tmp_path / "q")
    assert [p.name for p in written] == ["features.csv"]


def test_unknown_accounts_and_missing_declared_column(tmp_path):
    company = TableCompany(n_trials=40, seed=5, leaks=False)
    config, table = write_company(tmp_path / "a", company)
    accounts = table[["account_id", "trial_start", "trial_end", "converted_at"]].iloc[:30]
    accounts.to_csv(tmp_path / "a" / "accounts.csv", index=False)
    from features.config import parse_config

    raw = config.model_dump(mode="json", exclude={"base_dir"})
    raw["sources"]["accounts"] = {"path": "accounts.csv"}
    with_accounts = parse_config(raw, base_dir=tmp_path / "a")
    report = load_tables(with_accounts).report
    assert report.rows_kept["features"] == 30
    assert "10 rows for accounts not in the accounts table" in report.summary()

    raw["feature_table"]["columns"]["hours_to_first_reprot"] = {"label": "typo"}
    with pytest.raises(InputError, match=r"hours_to_first_reprot.*declared in"):
        load_tables(parse_config(raw, base_dir=tmp_path / "a"))


def test_as_of_lookup_never_reads_a_later_row():
    table = pd.DataFrame(
        {
            "account_id": ["a", "a", "a", "b"],
            "as_of": pd.to_datetime(["2025-01-02", "2025-01-04", "2025-01-08", "2025-01-03"]),
        }
    )
    ids = pd.Index(["a", "b", "c"])
    day = 86_400
    t0 = int(pd.Timestamp("2025-01-01").value // 10**9)
    acc = np.array([0, 0, 0, 0, 0, 1, 1, 2])
    at = t0 + (day * np.array([0.5, 1, 3, 5, 30, 1, 2, 5])).astype(np.int64)
    rows = table_rows(table, ids, acc, at)
    # a row counts from its own as_of on (<=), never before; the latest such row wins
    assert rows.tolist() == [-1, 0, 1, 1, 2, -1, 3, -1]
    assert table_rows(table, ids, acc, at - 1).tolist() == [-1, -1, 0, 1, 2, -1, -1, -1]


def test_as_of_company_snapshots_come_from_its_rows(tmp_path):
    company = TableCompany(n_trials=150, seed=6, trial_days=10, as_of_every_days=2, leaks=False)
    config, table = write_company(tmp_path, company)
    tables = load_tables(config).tables
    builder = FeatureBuilder.from_tables(tables, config)
    assert not trial_end_only(builder.spec)
    train = build_trial_training_set(builder)
    assert set(train["snapshot"]) <= {"d1", "d3", "d7", "end"}
    assert "end" in set(train["snapshot"]) and "d3" in set(train["snapshot"])
    # every snapshot's value is the table's row at exactly that moment
    merged = train.merge(
        table.assign(as_of=pd.to_datetime(table["as_of"])),
        on=["account_id", "as_of"],
        how="left",
    )
    assert merged["pipelines_run"].notna().all()
    assert np.array_equal(merged["table_pipelines_run"], merged["pipelines_run"].astype(float))
    # no event log: no event families, timing still there
    assert not any(c.startswith(("activation_", "engagement_", "count_")) for c in train.columns)
    assert "trial_days_elapsed" in train.columns


def test_trial_end_company_trains_at_trial_end_only(tmp_path):
    config, _ = write_company(tmp_path, TableCompany(n_trials=100, seed=8))
    builder = FeatureBuilder.from_tables(load_tables(config).tables, config)
    assert trial_end_only(builder.spec)
    train = build_trial_training_set(builder)
    assert set(train["snapshot"]) == {"end"}
    assert (train["as_of"] == train["trial_start"] + pd.Timedelta(days=14)).all()


def test_leak_checks_name_both_columns_and_spare_honest_ones(tmp_path):
    config, _ = write_company(tmp_path, TableCompany(n_trials=250, seed=9))
    builder = FeatureBuilder.from_tables(load_tables(config).tables, config)
    train = build_trial_training_set(builder)
    cols = [c for c in train.columns if c.startswith("table_") and c != "table_plan_interest"]
    leaks = {x.column: x for x in check_table_leaks(train, cols)}
    assert set(leaks) == {"table_first_invoice_amount", "table_days_to_convert"}
    assert (
        "filled for 100% of positive rows and 0% of the others"
        in leaks["table_first_invoice_amount"].message()
    )
    # a label-like name with a value (not missingness) leak is caught by name + AUC
    frame = train.assign(table_days_to_convert=train["table_days_to_convert"].fillna(60.0))
    named = check_table_leaks(frame, ["table_days_to_convert", "table_seats"])
    assert [(x.column, x.check) for x in named] == [("table_days_to_convert", "label_like_name")]


def test_committed_readme_example_is_what_the_generator_writes(tmp_path):
    from pathlib import Path

    from features.config import load_config
    from features.demo.table_company import write_example

    committed = Path(__file__).resolve().parents[2] / "docs" / "examples" / "feature_table"
    fresh = write_example(tmp_path)
    for path in fresh:
        assert (committed / path.name).read_text() == path.read_text(), path.name
    config = load_config(committed / "feature_table.toml")
    loaded = load_tables(config)
    assert loaded.report.rows_in["features"] == 1500 == loaded.report.rows_kept["features"]


def test_library_api_carries_the_table(tmp_path):
    from features.transformer import PointInTimeFeatures

    company = TableCompany(n_trials=80, seed=10, as_of_every_days=3, leaks=False)
    config, table = write_company(tmp_path, company)
    tables = load_tables(config).tables
    features = PointInTimeFeatures(config).fit(tables)
    assert {"table_seats", "table_plan_interest"} <= set(features.feature_names_out_)
    acc = tables.accounts.iloc[10]
    now = features.transform(tables, as_of=acc["trial_start"] + pd.Timedelta(days=4))
    expected = table[
        (table["account_id"] == acc["account_id"])
        & (table["as_of"] == acc["trial_start"] + pd.Timedelta(days=3))
    ]["pipelines_run"]
    assert now.loc[acc["account_id"], "table_pipelines_run"] == float(expected.iloc[0])
