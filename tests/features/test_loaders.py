"""Loaders: the same small tables round-trip through every source kind, and the
real Planday export loads through configuration alone."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pandas as pd
import pytest
import sqlalchemy as sa
from conftest import raw_accounts, raw_communications, raw_events

from features.config import SourceConfig, ValidationRules, load_config, parse_config
from features.loaders import load_table, load_tables
from features.validation import InputError, validate_tables

REPO = Path(__file__).resolve().parents[2]
PLANDAY = REPO / "docs" / "examples" / "planday.toml"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _typed(frames: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """The sample tables with native types: zone-aware UTC timestamps, numbers."""
    out = {}
    for name, frame in frames.items():
        frame = frame.copy()
        for col in ("timestamp", "trial_start", "trial_end", "converted_at", "churned_at"):
            if col in frame:
                frame[col] = pd.to_datetime(frame[col], utc=True, format="ISO8601")
        out[name] = frame
    return out


def _samples() -> dict[str, pd.DataFrame]:
    return _typed(
        {"events": raw_events(), "accounts": raw_accounts(), "communications": raw_communications()}
    )


def _expected():
    s = _samples()
    return validate_tables(
        s["events"], s["accounts"], s["communications"], rules=ValidationRules()
    )[0]


def _assert_same_tables(got, expected) -> None:
    """Same rows and values in canonical form (str vs category ids are both fine)."""
    for name in ("events", "accounts", "communications"):
        a, b = getattr(got, name), getattr(expected, name)
        for col in (c for c in b.columns if c in a or not c.startswith("company")):
            left, right = a[col], b[col]
            if left.dtype.kind == "M" or right.dtype.kind == "M":
                assert left.dtype == "datetime64[ns]", (name, col, left.dtype)
                pd.testing.assert_series_equal(left, right, check_names=False)
            elif col in ("deal_value", "mrr", "sentiment", "company_size"):
                pd.testing.assert_series_equal(left.astype("float64"), right.astype("float64"))
            else:
                assert (
                    left.astype(object).where(left.notna(), None).tolist()
                    == right.astype(object).where(right.notna(), None).tolist()
                ), (name, col)


def _config(tmp_path: Path, sources: dict, **extra: object):
    return parse_config({"sources": sources, **extra}, base_dir=tmp_path)


# ------------------------------------------------------------------ round trips
def test_csv_round_trip_with_separator_format_and_mapping(tmp_path: Path) -> None:
    fmt = "%d.%m.%Y %H:%M:%S"
    sources = {}
    for name, frame in _samples().items():
        frame = frame.copy()
        for col in frame.columns:
            if frame[col].dtype.kind == "M":
                frame[col] = frame[col].dt.strftime(fmt)
        renamed = {c: f"Src {c.upper()}" for c in frame.columns}
        frame.rename(columns=renamed).to_csv(tmp_path / f"{name}.csv", sep="|", index=False)
        sources[name] = {"path": f"{name}.csv", "separator": "|", "timestamp_format": fmt,
                         "columns": {c: s for c, s in renamed.items() if c != "company_size"}}  # fmt: skip
    result = load_tables(_config(tmp_path, sources))
    assert result.report.problems == []
    assert isinstance(result.tables.events["account_id"].dtype, pd.CategoricalDtype)
    # unmapped extra column kept, as a number again
    assert result.tables.accounts["Src COMPANY_SIZE"].tolist() == [50, 7]
    expected = _expected()
    _assert_same_tables(result.tables, expected)


def test_parquet_round_trip_reads_ids_as_categories(tmp_path: Path) -> None:
    sources = {}
    for name, frame in _samples().items():
        frame.to_parquet(tmp_path / f"{name}.parquet", index=False)
        sources[name] = {"path": f"{name}.parquet"}
    raw = load_table(SourceConfig(path="events.parquet"), "events", base_dir=tmp_path)
    assert isinstance(raw["account_id"].dtype, pd.CategoricalDtype)
    assert isinstance(raw["event"].dtype, pd.CategoricalDtype)
    result = load_tables(_config(tmp_path, sources))
    assert result.report.problems == []
    _assert_same_tables(result.tables, _expected())


def test_duckdb_round_trip_by_table_and_by_query(tmp_path: Path) -> None:
    db = tmp_path / "company.duckdb"
    con = duckdb.connect(str(db))
    for name, frame in _samples().items():
        con.register("frame", frame)
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM frame")
        con.unregister("frame")
    con.close()
    sources = {
        "events": {"path": "company.duckdb", "query": "SELECT * FROM events ORDER BY timestamp"},
        "accounts": {"path": "company.duckdb", "table": "accounts"},
        "communications": {"path": "company.duckdb", "table": "communications"},
    }
    result = load_tables(_config(tmp_path, sources))
    assert result.report.problems == []
    expected = _expected()
    expected_events = expected.events.sort_values("timestamp", ignore_index=True)
    _assert_same_tables(
        result.tables,
        type(expected)(expected_events, expected.accounts, expected.communications),
    )


@pytest.fixture
def pg_tables() -> Iterator[dict[str, str]]:
    """The sample tables in PostgreSQL under unique names, dropped afterwards."""
    engine = sa.create_engine(PG_URL)
    names = {
        name: f"tc_{name}_{uuid.uuid4().hex[:10]}"
        for name in ("events", "accounts", "communications")
    }
    try:
        with engine.begin() as conn:
            for name, frame in _samples().items():
                frame.to_sql(names[name], conn, index=False)
        yield names
    finally:
        with engine.begin() as conn:
            for table in names.values():
                conn.execute(sa.text(f'DROP TABLE IF EXISTS "{table}"'))
        engine.dispose()


@pytest.mark.postgres
def test_postgres_round_trip_by_table_and_by_query(
    tmp_path: Path, pg_tables: dict[str, str]
) -> None:
    sources = {
        "events": {"url": PG_URL, "query": f'SELECT * FROM "{pg_tables["events"]}"'},
        "accounts": {"url": PG_URL, "table": pg_tables["accounts"]},
        "communications": {"url": PG_URL, "table": f"public.{pg_tables['communications']}"},
    }
    result = load_tables(_config(tmp_path, sources))
    assert result.report.problems == []
    _assert_same_tables(result.tables, _expected())


@pytest.mark.postgres
def test_postgres_zone_aware_text_and_missing_table(pg_tables: dict[str, str]) -> None:
    engine = sa.create_engine(PG_URL)
    try:
        with engine.connect() as conn:
            offset = conn.execute(sa.text(
                f'SELECT "timestamp" FROM "{pg_tables["events"]}" ORDER BY "timestamp" LIMIT 1'
            )).scalar_one()  # fmt: skip
        assert offset.tzinfo is not None  # stored as timestamptz
    finally:
        engine.dispose()
    raw = load_table(
        SourceConfig(url=PG_URL, query=f'SELECT * FROM "{pg_tables["events"]}"'),
        "events",
        base_dir=Path("."),
    )
    result = validate_tables(raw, _samples()["accounts"], None, rules=ValidationRules())[0]
    assert result.events["timestamp"].iloc[3] == pd.Timestamp("2024-03-03 06:00:00")
    with pytest.raises(InputError, match=r"accounts: .*no_such_table.*sources\.accounts\.table"):
        load_table(SourceConfig(url=PG_URL, table="no_such_table"), "accounts", base_dir=Path("."))


# ------------------------------------------------------------------ fatal input
def test_missing_file_names_path_and_config_key(tmp_path: Path) -> None:
    cfg = _config(tmp_path, {"events": {"path": "nope/events.csv"}})
    with pytest.raises(
        InputError,
        match=r"events: file '.*nope/events\.csv' not found \(config key sources\.events\.path",
    ):
        load_tables(cfg)


def test_no_events_source_is_fatal(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"no events source configured"):
        load_tables(_config(tmp_path, {}))


@pytest.mark.parametrize(
    ("content", "source", "pattern"),
    [
        (b"PAR1 not really parquet", {"path": "t.parquet"}, r"events: cannot read t\.parquet as parquet \(sources\.events\.path\)"),
        (b"a;b\n1;2;3\n", {"path": "t.csv", "separator": ";"}, r"events: cannot read t\.csv as csv .*Expected 2 columns, got 3"),
        (b"account_id,event,timestamp\n1,x,2024-01-01\n", {"path": "t.csv", "columns": {"event": "EVENT"}},
         r"events: config maps 'event' to source column 'EVENT' \(sources\.events\.columns\.event\).*Columns found: account_id, event, timestamp"),
        (b"ORG,event,timestamp\n1,x,2024-01-01\n", {"path": "t.csv"},
         r"events: required column 'account_id' not found\. Columns found: ORG, event, timestamp.*\[sources\.events\.columns\]"),
    ],
    ids=["corrupt parquet", "ragged csv", "mapping to a missing column", "unmapped column"],
)  # fmt: skip
def test_unreadable_sources_are_fatal_with_a_clear_message(
    tmp_path: Path, content: bytes, source: dict, pattern: str
) -> None:
    (tmp_path / source["path"]).write_bytes(content)
    with pytest.raises(InputError, match=pattern):
        load_tables(_config(tmp_path, {"events": source}))


def test_csv_extra_columns_become_numbers_only_when_all_values_are(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text(
        "account_id,trial_start,trial_end,seats,zip,tier,deal_value\n"
        "a1,2024-01-01,2024-01-15,5,01234,gold,100\n"
        "a2,2024-01-02,2024-01-16,,98000,7,abc\n"
    )
    raw = load_table(SourceConfig(path="a.csv"), "accounts", base_dir=tmp_path)
    assert raw["seats"].tolist()[0] == 5 and pd.isna(raw["seats"].iloc[1])
    assert raw["zip"].tolist() == ["01234", "98000"]
    assert raw["tier"].tolist() == ["gold", "7"]
    assert raw["deal_value"].tolist() == ["100", "abc"]  # contract columns stay raw text


def test_duckdb_missing_table_lists_the_tables_there(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "x.duckdb"))
    con.execute("CREATE TABLE events_2024 (a INT)")
    con.close()
    with pytest.raises(
        InputError, match=r"table 'events' \(sources\.events\.table\) not found .*events_2024"
    ):
        load_table(SourceConfig(path="x.duckdb", table="events"), "events", base_dir=tmp_path)


# ------------------------------------------------------------------ real data
def test_planday_export_loads_by_config_alone() -> None:
    config = load_config(PLANDAY)
    result = load_tables(config)
    report, tables = result.report, result.tables
    for name, n_in in report.rows_in.items():
        assert n_in == report.rows_kept[name] + len(report.quarantine[name])
    assert report.rows_in["events"] == 1981
    assert report.rows_kept["events"] == 42
    # the export pads itself with 1,939 ';;;' lines: set aside, named, not dropped
    assert report.quarantine["events"]["_reason"].unique().tolist() == ["events: empty row"]
    assert "1,939 rows that are entirely empty" in report.summary()
    assert len(tables.accounts) == 17 and tables.accounts["account_id"].is_unique
    assert tables.accounts["converted_at"].isna().all()
    assert (
        (tables.accounts["trial_end"] - tables.accounts["trial_start"])
        .eq(pd.Timedelta(days=14))
        .all()
    )
    events = tables.events
    assert events["timestamp"].dtype == "datetime64[ns]"
    assert events["timestamp"].min() == pd.Timestamp("2024-02-20 16:58:48")
    assert events["timestamp"].max() == pd.Timestamp("2024-04-25 21:36:22.513")
    assert "ACTIVITY_DETAIL" in events
    vocabulary = set(events["event"])
    for milestone in config.activation.milestones:
        assert set(milestone.events) <= vocabulary
    assert set(config.engagement.core_events) <= vocabulary
