"""Real-export shapes through the loader: clear errors with the real cause, and the
config options for them (a yes/no conversion flag, excluded feature-table columns).

Every case runs on two generated feature-table companies that differ from the demo
and from each other (trial length, size, column vocabulary).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from table_companies import ACCOUNT_COLUMNS, write_company

from features.config import ConfigError
from features.demo.table_company import TableCompany, generate_table_company
from features.feature_table import fit_table_columns
from features.loaders import load_tables
from features.quarantine import InputError

COMPANIES = [
    TableCompany(n_trials=220, seed=31, trial_days=10, lag_days=(0.0, 9.0), leaks=False),
    TableCompany(
        n_trials=160, seed=32, trial_days=21, lag_days=(2.0, 30.0), leaks=False,
        names={"pipelines_run": "jobs_launched"},
    ),
]  # fmt: skip
COLUMNS = {"hours_to_first_report": {"label": "hours to first report"}}


def _flagged(company: TableCompany, words: tuple[str, str]) -> pd.DataFrame:
    """The company's table with converted_at replaced by a yes/no column ``converted``."""
    table = generate_table_company(company)
    yes, no = words
    table["converted"] = np.where(table["converted_at"].notna(), yes, no)
    return table.drop(columns="converted_at")


def _config(root, company: TableCompany, table: pd.DataFrame, extra: dict):
    return write_company(root, company, columns=COLUMNS, frame=table, extra=extra)[0]


@pytest.mark.parametrize("company", COMPANIES)
def test_missing_account_column_is_named_not_a_key_error(tmp_path, company):
    table = generate_table_company(company).drop(columns="converted_at")
    config, _ = write_company(tmp_path, company, columns=COLUMNS, frame=table)
    with pytest.raises(InputError, match="account column 'converted_at'") as exc:
        load_tables(config)
    assert "conversion_flag" in str(exc.value) and "Columns found" in str(exc.value)


@pytest.mark.parametrize("company", COMPANIES)
def test_flag_mapped_as_a_date_shows_the_cause_and_writes_the_quarantine(tmp_path, company):
    table = _flagged(company, ("1", "0"))
    mapping = {"path": "trials.csv", "columns": {"converted_at": "converted"}}
    config = _config(tmp_path, company, table, {"sources": {"features": mapping}})
    with pytest.raises(InputError) as exc:
        load_tables(config, quarantine_dir=tmp_path / "q")
    text = str(exc.value)
    assert f"all {len(table):,} rows were set aside" in text
    assert "unparsable timestamps" in text and "accounts.converted_at" in text
    assert "[trial].conversion_flag" in text and "trial_start is empty" not in text
    quarantined = pd.read_csv(tmp_path / "q" / "accounts.csv")
    assert len(quarantined) == len(table)  # rows in = 0 kept + every row set aside
    assert quarantined["_reason"].str.contains("unparsable timestamp").all()


@pytest.mark.parametrize("company", COMPANIES)
@pytest.mark.parametrize("words", [("1", "0"), ("true", "false"), ("Yes", "no")])
def test_conversion_flag_gives_the_labels_at_trial_end(tmp_path, company, words):
    table = _flagged(company, words)
    no_date = {"account_columns": ["trial_start", "trial_end", "deal_value"]}
    config = _config(
        tmp_path, company, table,
        {"feature_table": no_date, "trial": {"conversion_flag": "converted"}},
    )  # fmt: skip
    loaded = load_tables(config)
    acc = loaded.tables.accounts.set_index("account_id")
    flagged = table.set_index("account_id")["converted"].str.lower().isin(["1", "true", "yes"])
    converted = acc["converted_at"].notna()
    assert converted.sum() == flagged.sum() > 10
    assert (acc.loc[converted, "converted_at"] == acc.loc[converted, "trial_end"]).all()
    assert any("conversion_flag" in n for n in loaded.report.notes)
    names = [c.source for c in fit_table_columns(loaded.tables.features, config)]
    assert "converted" not in names and "converted" not in loaded.tables.features.columns
    assert config.trial.post_trial_days() == []  # a flag has no timing after trial end


@pytest.mark.parametrize("company", COMPANIES)
def test_flag_and_a_date_column_together_are_refused(tmp_path, company):
    table = generate_table_company(company)
    table["converted"] = table["converted_at"].notna().astype(int)
    config, _ = write_company(
        tmp_path, company, columns=COLUMNS, frame=table,
        extra={"trial": {"conversion_flag": "converted"}},
    )  # fmt: skip
    with pytest.raises(InputError, match="use one"):
        load_tables(config)


@pytest.mark.parametrize("company", COMPANIES)
def test_excluded_columns_never_become_features(tmp_path, company):
    table = generate_table_company(company)
    table["days_to_convert"] = (
        pd.to_datetime(table["converted_at"]) - pd.to_datetime(table["trial_start"])
    ).dt.days
    config, _ = write_company(
        tmp_path, company, columns={}, frame=table,
        extra={"feature_table": {"account_columns": ACCOUNT_COLUMNS, "columns": {},
                                 "exclude_columns": ["days_to_convert"]}},
    )  # fmt: skip
    loaded = load_tables(config)
    names = [c.source for c in fit_table_columns(loaded.tables.features, config)]
    assert "days_to_convert" not in names and "seats" in names
    missing = config.model_copy(
        update={
            "feature_table": config.feature_table.model_copy(
                update={"exclude_columns": ["days_to_close"]}
            )
        }
    )
    with pytest.raises(InputError, match="exclude_columns is not in the feature table"):
        load_tables(missing)


def test_excluding_a_declared_column_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="keep one"):
        write_company(
            tmp_path, COMPANIES[0], columns=COLUMNS,
            extra={"feature_table": {"exclude_columns": ["hours_to_first_report"]}},
        )  # fmt: skip


def test_flag_cannot_also_be_a_feature(tmp_path):
    with pytest.raises(ConfigError, match="is the label"):
        write_company(
            tmp_path, COMPANIES[1], columns={**COLUMNS, "converted": {"type": "boolean"}},
            extra={"trial": {"conversion_flag": "converted"}},
        )  # fmt: skip


@pytest.mark.parametrize("company", COMPANIES)
def test_dask_partition_reads_the_flag_like_the_loader(tmp_path, company):
    """The Dask job validates each partition with the same flag rule (per row)."""
    from features.distributed_partition import SEQ_COLUMN, validate_partition
    from features.feature_table_load import no_events

    table = _flagged(company, ("yes", "no"))
    accounts = table[["account_id", "trial_start", "trial_end", "deal_value", "converted"]]
    accounts.to_csv(tmp_path / "accounts.csv", index=False)
    no_date = {"account_columns": ["trial_start", "trial_end", "deal_value"]}
    config = _config(
        tmp_path, company, table,
        {"feature_table": no_date, "trial": {"conversion_flag": "converted"}},
    )  # fmt: skip
    raw = pd.read_csv(tmp_path / "accounts.csv", dtype=str)
    raw[SEQ_COLUMN] = range(len(raw))  # the shuffle's source order
    events = no_events().assign(**{SEQ_COLUMN: pd.Series([], dtype="int64")})
    part = validate_partition(events, raw, None, config).tables.accounts
    loaded = load_tables(config).tables.accounts
    pd.testing.assert_series_equal(
        part.set_index("account_id")["converted_at"].sort_index(),
        loaded.set_index("account_id")["converted_at"].sort_index(),
        check_dtype=False,
    )


@pytest.mark.parametrize("company", COMPANIES)
def test_epoch_numbers_as_dates_stop_with_the_hint(tmp_path, company):
    """Every row unparsable (Unix epoch milliseconds): the cause, the hint, the quarantine."""
    table = generate_table_company(company)
    table["trial_start"] = pd.to_datetime(table["trial_start"]).astype("int64") // 10**6
    config = _config(tmp_path, company, table, {})
    with pytest.raises(InputError, match="Unix epoch times") as exc:
        load_tables(config, quarantine_dir=tmp_path / "q")
    assert "accounts.trial_start" in str(exc.value)
    assert 'timestamp_format = "unix_ms"' in str(exc.value)  # the option that reads them
    assert len(pd.read_csv(tmp_path / "q" / "accounts.csv")) == len(table)


@pytest.mark.parametrize("company", COMPANIES)
@pytest.mark.parametrize(("unit", "scale"), [("unix_s", 10**9), ("unix_ms", 10**6)])
def test_epoch_numbers_load_with_their_timestamp_format(tmp_path, company, unit, scale):
    """An export of Unix epoch numbers (empty where there is no date) reads as the same
    dates with ``timestamp_format = "unix_s"`` / ``"unix_ms"``."""
    table = generate_table_company(company)
    want = load_tables(_config(tmp_path / "dates", company, table, {})).tables.accounts
    epoch = table.copy()
    for col in ("trial_start", "trial_end", "converted_at"):
        when = pd.to_datetime(epoch[col]).dt.floor("s")
        epoch[col] = (when.astype("int64") // scale).where(when.notna())
    source = {"path": "trials.csv", "timestamp_format": unit}
    got = load_tables(
        _config(tmp_path / "epoch", company, epoch, {"sources": {"features": source}})
    ).tables.accounts
    assert len(got) == len(want) == len(table)  # nothing set aside
    for col in ("trial_start", "trial_end", "converted_at"):
        pd.testing.assert_series_equal(
            got.set_index("account_id")[col].sort_index(),
            want.set_index("account_id")[col].dt.floor("s").sort_index(),
            check_dtype=False,
        )


def test_epoch_parsing_refuses_what_is_not_a_time() -> None:
    from features.value_parsing import parse_timestamps

    raw = pd.Series(["1756719333", "1756719333.5", "soon", None, "1e30"], dtype="str")
    parsed, bad = parse_timestamps(raw, "unix_s")
    assert parsed.iloc[0] == pd.Timestamp("2025-09-01 09:35:33")
    assert parsed.iloc[1] == pd.Timestamp("2025-09-01 09:35:33.5")  # fractions are fine
    assert parsed.iloc[2:].isna().all()  # text, empty, out of range
    assert bad.tolist() == [False, False, True, False, True]  # empty is missing, not bad


@pytest.mark.parametrize("trial_days", [7, 21])
def test_no_trial_end_column_gives_trials_of_the_configured_length(tmp_path, trial_days):
    """A one-plan export with a start date and a yes/no flag, and no trial end: each
    trial lasts [trial].default_trial_days, and a flagged trial converts at its end.
    Two generated companies unlike the demo (one-week and three-week trials)."""
    from features.config import demo_config_text, load_config
    from features.demo.generator import generate_demo_data, write_demo_data

    demo = generate_demo_data(
        300, seed=40 + trial_days, trial_days=(trial_days,), export_time="2026-05-01"
    )
    write_demo_data(demo, tmp_path)
    acc = pd.read_parquet(tmp_path / "accounts.parquet")
    acc["converted"] = acc["converted_at"].notna().astype(int)  # a 0/1 flag, no dates
    acc = acc.drop(columns=["trial_end", "converted_at", "churned_at", "mrr"])
    acc.to_parquet(tmp_path / "accounts.parquet")
    text = demo_config_text().replace(
        "default_trial_days = 14",
        f'default_trial_days = {trial_days}\nconversion_flag = "converted"',
    )
    (tmp_path / "trialcast.toml").write_text(text)
    loaded = load_tables(load_config(tmp_path / "trialcast.toml"))
    got = loaded.tables.accounts.set_index("account_id")
    assert len(got) == len(acc)  # nothing set aside
    length = (got["trial_end"] - got["trial_start"]).dt.total_seconds() / 86400
    assert (length == trial_days).all()
    flagged = acc.set_index("account_id")["converted"] == 1
    converted = got["converted_at"].notna()
    assert converted.sum() == flagged.sum() > 10
    assert (got.loc[converted, "converted_at"] == got.loc[converted, "trial_end"]).all()
    assert any(f"trial_start + {trial_days} days" in n for n in loaded.report.notes)


def test_no_trial_end_and_no_flag_still_loads_with_the_configured_length(tmp_path):
    from features.config import demo_config_text, load_config
    from features.demo.generator import generate_demo_data, write_demo_data

    demo = generate_demo_data(200, seed=44, trial_days=(10,), export_time="2026-05-01")
    write_demo_data(demo, tmp_path)
    acc = pd.read_parquet(tmp_path / "accounts.parquet").drop(columns=["trial_end"])
    acc.to_parquet(tmp_path / "accounts.parquet")
    text = demo_config_text().replace("default_trial_days = 14", "default_trial_days = 10")
    (tmp_path / "trialcast.toml").write_text(text)
    loaded = load_tables(load_config(tmp_path / "trialcast.toml"))
    got = loaded.tables.accounts
    assert len(got) == len(acc)
    assert ((got["trial_end"] - got["trial_start"]) == pd.Timedelta(days=10)).all()
    assert any("no trial_end column" in n for n in loaded.report.notes)
