"""Validation: every bad-input class gets its message and no row is lost."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import raw_accounts, raw_communications, raw_events

from features.config import ValidationRules
from features.quarantine import Problem, ValidationReport
from features.row_duplicates import duplicate_mask
from features.validation import (
    CANONICAL_SCHEMAS,
    InputError,
    _kept_rows,
    derive_accounts_from_events,
    validate_tables,
)

Frames = dict[str, pd.DataFrame]


def _run(frames: Frames, rules: ValidationRules | None = None, **kw: object):
    return validate_tables(
        frames["events"],
        frames["accounts"],
        frames.get("communications"),
        rules=rules or ValidationRules(),
        **kw,  # type: ignore[arg-type]
    )


def _frames() -> Frames:
    return {
        "events": raw_events(),
        "accounts": raw_accounts(),
        "communications": raw_communications(),
    }


def _set(table: str, row: int, column: str, value: object) -> Callable[[Frames], None]:
    def mutate(f: Frames) -> None:
        frame = f[table].astype({column: object})
        frame.loc[row, column] = value
        f[table] = frame

    return mutate


def _append_copy(table: str, row: int, **changes: object) -> Callable[[Frames], None]:
    def mutate(f: Frames) -> None:
        extra = f[table].iloc[[row]].assign(**changes)
        f[table] = pd.concat([f[table], extra], ignore_index=True)

    return mutate


def _blank_row(table: str) -> Callable[[Frames], None]:
    def mutate(f: Frames) -> None:
        blank = pd.DataFrame({c: [None] for c in f[table].columns})
        f[table] = pd.concat([f[table], blank], ignore_index=True)

    return mutate


# (id, mutation, table, check, message pattern, action, affected source row)
BAD_INPUT = [
    ("unparsable timestamp", _set("events", 2, "timestamp", "2024-13-45 99:00"), "events",
     "unparsable_timestamp",
     r"^events\.timestamp: 1 row with unparsable timestamps \(e\.g\. row 2: '2024-13-45 99:00'\); quarantined$",
     "quarantined", 2),
    ("number as timestamp", _set("events", 1, "timestamp", 1709280000), "events",
     "unparsable_timestamp", r"events\.timestamp: 1 row .*row 1: 1709280000", "quarantined", 1),
    ("null event name", _set("events", 1, "event", None), "events", "missing_value",
     r"^events\.event: 1 row with no value in a required column \(e\.g\. row 1: empty\); quarantined$",
     "quarantined", 1),
    ("blank account id", _set("events", 3, "account_id", "  "), "events", "missing_value",
     r"events\.account_id: 1 row with no value .*row 3: '  '", "quarantined", 3),
    ("empty row", _blank_row("events"), "events", "empty_row",
     r"^events: 1 row that are entirely empty \(e\.g\. row 6\); quarantined$", "quarantined", 6),
    ("unknown account", _set("events", 0, "account_id", "zz"), "events", "unknown_account",
     r"^events\.account_id: 1 row for accounts not in the accounts table \(e\.g\. row 0: 'zz'\); quarantined$",
     "quarantined", 0),
    ("event long before trial", _set("events", 0, "timestamp", "2024-02-01T00:00:00"), "events",
     "before_trial", r"events\.timestamp: 1 row too long before .*row 0: '2024-02-01T00:00:00'",
     "quarantined", 0),
    ("event in the future", _set("events", 4, "timestamp", "2099-01-01T00:00:00"), "events",
     "after_export", r"events\.timestamp: 1 row later than the export time .*row 4: '2099-01-01",
     "quarantined", 4),
    ("duplicate event", _append_copy("events", 1), "events", "duplicate_row",
     r"^events: 1 row that exactly repeat an earlier row \(e\.g\. row 6\); quarantined$",
     "quarantined", 6),
    ("same event, other spelling of time", _append_copy("events", 3, timestamp="2024-03-03T06:00:00Z"),
     "events", "duplicate_row", r"events: 1 row that exactly repeat", "quarantined", 6),
    ("duplicate account id", _append_copy("accounts", 0, deal_value=5.0), "accounts",
     "duplicate_account_id", r"accounts\.account_id: 1 row repeating an account_id .*row 2: 'a1'",
     "quarantined", 2),
    ("duplicate account row", _append_copy("accounts", 1), "accounts", "duplicate_row",
     r"accounts: 1 row that exactly repeat", "quarantined", 2),
    ("trial end before start", _set("accounts", 1, "trial_end", "2024-03-01T00:00:00"), "accounts",
     "trial_end_before_start",
     r"accounts\.trial_end: 1 row where trial_end is before trial_start \(e\.g\. row 1: trial_start '2024-03-03T00:00:00', trial_end '2024-03-01T00:00:00'\)",
     "quarantined", 1),
    ("unparsable conversion date", _set("accounts", 0, "converted_at", "soon"), "accounts",
     "unparsable_timestamp", r"accounts\.converted_at: 1 row .*row 0: 'soon'", "quarantined", 0),
    ("null trial start", _set("accounts", 0, "trial_start", None), "accounts", "missing_value",
     r"accounts\.trial_start: 1 row with no value", "quarantined", 0),
    ("negative deal value", _set("accounts", 0, "deal_value", -1200.0), "accounts", "negative_money",
     r"^accounts\.deal_value: 1 row with negative money \(set to empty\) \(e\.g\. row 0: -1200\.0\); repaired$",
     "repaired", 0),
    ("negative mrr", _set("accounts", 0, "mrr", -3), "accounts", "negative_money",
     r"accounts\.mrr: 1 row with negative money .*row 0: -3\)", "repaired", 0),
    ("text as money", _set("accounts", 1, "deal_value", "lots"), "accounts", "not_a_number",
     r"accounts\.deal_value: 1 row with a non-numeric value .*row 1: 'lots'", "repaired", 1),
    ("unknown direction", _set("communications", 1, "direction", "sideways"), "communications",
     "invalid_value",
     r"communications\.direction: 1 row with a value outside the allowed set \(e\.g\. row 1: 'sideways'; allowed: inbound, outbound\); quarantined",
     "quarantined", 1),
    ("unknown channel", _set("communications", 2, "channel", "fax"), "communications",
     "invalid_value", r"communications\.channel: 1 row .*'fax'; allowed: email, chat", "quarantined", 2),
    ("direction in odd case", _set("communications", 0, "direction", " Outbound"), "communications",
     "normalised_case", r"communications\.direction: 1 row with values normalised", "repaired", 0),
    ("sentiment out of range", _set("communications", 1, "sentiment", 3.5), "communications",
     "out_of_range", r"communications\.sentiment: 1 row with a value outside \[-1, 1\] .*row 1: 3\.5",
     "repaired", 1),
    ("touch of unknown account", _set("communications", 2, "account_id", "nobody"), "communications",
     "unknown_account", r"communications\.account_id: 1 row for accounts not in", "quarantined", 2),
]  # fmt: skip


@pytest.mark.parametrize(
    ("mutate", "table", "check", "pattern", "action", "row"),
    [pytest.param(*case[1:], id=case[0]) for case in BAD_INPUT],
)
def test_bad_input_is_reported_and_nothing_is_lost(
    mutate: Callable[[Frames], None], table: str, check: str, pattern: str, action: str, row: int
) -> None:
    frames = _frames()
    mutate(frames)
    tables, report = _run(frames)

    found = [p for p in report.problems if p.check == check and p.table == table]
    assert len(found) == 1, report.summary()
    assert found[0].action == action
    assert re.search(pattern, found[0].message()), found[0].message()
    for name, n_in in report.rows_in.items():
        assert n_in == report.rows_kept[name] + len(report.quarantine[name])
    assert report.rows_in[table] == len(frames[table])
    quarantine = report.quarantine[table]
    if action == "quarantined":
        hit = quarantine[quarantine["_row"] == row]
        assert len(hit) == 1
        assert check.replace("_", " ") in hit["_reason"].iloc[0]
        # original values survive in the quarantine, as loaded
        original = frames[table].iloc[row]
        for col in frames[table].columns:
            a, b = hit[col].iloc[0], original[col]
            assert (pd.isna(a) and pd.isna(b)) or a == b
    else:
        assert row not in set(quarantine["_row"])
        kept = getattr(tables, table)
        column = found[0].column
        assert column is not None and len(kept) == len(frames[table])  # nothing else was lost
        if check == "normalised_case":
            assert kept[column].iloc[row] == "outbound"
        else:  # bad number: row kept, value emptied, original value in the message
            assert pd.isna(kept[column].iloc[row])
            assert (
                kept[column].drop(index=row).notna().sum()
                == frames[table][column].drop(index=row).notna().sum()
            )


@pytest.mark.parametrize(
    ("table", "column"),
    [("events", "account_id"), ("events", "event"), ("events", "timestamp"),
     ("accounts", "account_id"), ("accounts", "trial_start"), ("accounts", "trial_end"),
     ("communications", "direction"), ("communications", "channel")],
)  # fmt: skip
def test_missing_required_column_is_fatal_and_names_table_column_and_mapping(
    table: str, column: str
) -> None:
    frames = _frames()
    frames[table] = frames[table].drop(columns=[column])
    with pytest.raises(InputError, match=rf"^{table}: required column '{column}' not found") as err:
        _run(frames)
    assert "Columns found: " in str(err.value)
    assert f"[sources.{table}.columns]" in str(err.value)


def test_missing_column_suggests_a_close_source_column() -> None:
    frames = _frames()
    frames["events"] = frames["events"].rename(
        columns={"account_id": "ACCOUNT_ID", "event": "EVENT"}
    )
    with pytest.raises(
        InputError, match=r"'account_id', 'event' not found.*account_id = \"ACCOUNT_ID\""
    ):
        _run(frames)


def test_clean_tables_pass_in_canonical_form() -> None:
    tables, report = _run(_frames())
    assert report.problems == []
    assert report.rows_in == report.rows_kept == {"events": 6, "accounts": 2, "communications": 3}
    for name in ("events", "accounts", "communications"):
        frame = getattr(tables, name)
        CANONICAL_SCHEMAS[name].validate(frame)
        assert frame["timestamp" if name != "accounts" else "trial_start"].dtype == "datetime64[ns]"
    assert list(tables.events.columns[:3]) == ["account_id", "event", "timestamp"]
    assert tables.accounts["company_size"].tolist() == [50, 7]  # extra columns kept
    assert "properties" in tables.events  # optional contract columns always present
    assert "no problems found" in report.summary()


def test_zone_aware_timestamps_become_naive_utc() -> None:
    frames = _frames()
    frames["events"]["timestamp"] = pd.to_datetime(
        frames["events"]["timestamp"].str[:19]
    ).dt.tz_localize("Europe/Copenhagen")
    tables, _ = _run(frames)
    # 09:00 in Copenhagen (CET, +01:00) is 08:00 UTC
    assert tables.events["timestamp"].iloc[0] == pd.Timestamp("2024-03-01 08:00:00")
    assert tables.events["timestamp"].dtype == "datetime64[ns]"
    # text with an offset: 08:00+02:00 is 06:00 UTC
    tables, _ = _run(_frames())
    assert tables.events["timestamp"].iloc[3] == pd.Timestamp("2024-03-03 06:00:00")


def test_timestamp_format_is_applied_per_table_and_failures_quarantined() -> None:
    frames = _frames()
    ts = pd.to_datetime(frames["events"]["timestamp"], utc=True, format="ISO8601")
    frames["events"]["timestamp"] = ts.dt.strftime("%d/%m/%Y %H.%M.%S")
    frames["events"].loc[5, "timestamp"] = "2024-03-06T18:45:10"  # ISO, but not the format
    tables, report = _run(frames, timestamp_format={"events": "%d/%m/%Y %H.%M.%S"})
    assert tables.events["timestamp"].tolist() == list(ts.dt.tz_localize(None).iloc[:5])
    assert [p.check for p in report.problems] == ["unparsable_timestamp"]


def test_events_of_a_quarantined_account_say_so() -> None:
    frames = _frames()
    _set("accounts", 1, "trial_end", "2024-01-01")(frames)
    tables, report = _run(frames)
    q = report.quarantine["events"]
    assert sorted(q["_row"]) == [3, 4, 5]
    assert set(q["_reason"]) == {"events.account_id: account quarantined"}
    assert set(tables.events["account_id"]) == {"a1"}
    assert any("whose accounts row was quarantined" in p.message() for p in report.problems)


def test_first_reason_wins_and_each_row_is_counted_once() -> None:
    frames = _frames()
    _set("events", 0, "account_id", "zz")(frames)
    _set("events", 0, "timestamp", "garbage")(frames)
    _, report = _run(frames)
    assert [(p.check, p.rows) for p in report.problems] == [("unparsable_timestamp", 1)]
    assert len(report.quarantine["events"]) == 1


def test_export_time_from_rules_bounds_events() -> None:
    rules = ValidationRules(export_time="2024-03-05T00:00:00Z", max_days_after_export=1)
    _, report = _run(_frames(), rules)
    assert report.quarantine["events"]["_row"].tolist() == [5]  # 2024-03-06 18:45 > 03-06 00:00
    assert "from validation.export_time" in report.summary()
    with pytest.raises(InputError, match=r"validation\.export_time"):
        _run(_frames(), ValidationRules(export_time="yesterday-ish"))


def test_max_days_before_trial_is_a_strict_limit() -> None:
    frames = _frames()
    _set("events", 0, "timestamp", "2024-02-29T08:00:00")(frames)  # exactly 1 day before a1's start
    _, report = _run(frames, ValidationRules(max_days_before_trial=1))
    assert report.problems == []
    _, report = _run(frames, ValidationRules(max_days_before_trial=0.5))
    assert [p.check for p in report.problems] == ["before_trial"]


def test_category_ids_stay_category_and_unused_categories_go() -> None:
    frames = _frames()
    _set("events", 2, "timestamp", "bad")(frames)  # the only 'Report Shared' event
    frames["events"] = frames["events"].astype({"account_id": "category", "event": "category"})
    tables, _ = _run(frames)
    assert isinstance(tables.events["account_id"].dtype, pd.CategoricalDtype)
    assert isinstance(tables.events["event"].dtype, pd.CategoricalDtype)
    assert list(tables.events["event"].cat.categories) == [
        "Project Created", "Scheduling.Shift.Approved", "User Invited"
    ]  # fmt: skip
    assert tables.events["event"].tolist()[:2] == ["Project Created", "User Invited"]


def test_unused_categories_go_when_many_rows_are_set_aside() -> None:
    """More rows set aside than are looked at one by one: the same categories go."""
    frames = _frames()
    events = pd.concat([frames["events"]] * 40, ignore_index=True)
    events["user_id"] = [f"u{i}" for i in range(len(events))]  # copies, not duplicate rows
    shared = events["event"] == "Report Shared"  # 40 rows, all set aside
    created = np.flatnonzero(events["event"] == "Project Created")[:50]  # 50 of 120
    events.loc[shared, "timestamp"] = "bad"
    events.loc[created, "timestamp"] = "bad"
    frames["events"] = events.astype({"account_id": "category", "event": "category"})
    tables, report = _run(frames)
    assert report.rows_in["events"] - report.rows_kept["events"] >= 90
    assert list(tables.events["event"].cat.categories) == [
        "Project Created", "Scheduling.Shift.Approved", "User Invited"
    ]  # fmt: skip
    assert (tables.events["event"] == "Project Created").sum() == 70


def test_numeric_ids_become_text_and_still_match() -> None:
    frames = _frames()
    frames["accounts"]["account_id"] = [101, 102]
    frames["events"]["account_id"] = [101.0, 101.0, 101.0, 102.0, 102.0, 102.0]
    tables, report = _run({"events": frames["events"], "accounts": frames["accounts"]})
    assert report.problems == []
    assert tables.accounts["account_id"].tolist() == ["101", "102"]
    assert set(tables.events["account_id"]) == {"101", "102"}


def test_derive_accounts_from_events() -> None:
    events = pd.DataFrame(
        {
            "account_id": pd.Categorical(["b", "a", "b", "a"]),
            "event": ["x", "y", "z", "x"],
            "timestamp": pd.to_datetime(["2024-01-03", "2024-01-05", "2024-01-01", "2024-01-02"]),
        }
    )
    acc = derive_accounts_from_events(events, trial_days=14)
    assert acc["account_id"].tolist() == ["a", "b"]
    assert acc["trial_start"].tolist() == [pd.Timestamp("2024-01-02"), pd.Timestamp("2024-01-01")]
    assert (acc["trial_end"] - acc["trial_start"]).eq(pd.Timedelta(days=14)).all()
    assert acc["converted_at"].isna().all() and acc["deal_value"].isna().all()


@pytest.mark.parametrize("extra_copies", [0, 20])  # few repeated hashes / many
def test_duplicate_detection_on_large_frames_matches_pandas(extra_copies: int) -> None:
    n = 250_000  # above the size where rows are hashed first
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(
        {
            "account_id": pd.Categorical.from_codes(rng.integers(0, 50, n), categories=[f"a{i}" for i in range(50)]),
            "event": pd.Categorical.from_codes(rng.integers(0, 5, n), categories=list("vwxyz")),
            "timestamp": np.datetime64("2024-01-01", "ns") + rng.integers(0, 10**6, n).astype("timedelta64[s]"),
            "props": rng.choice(["p", "q", None], n),
            "count": rng.integers(0, 3, n).astype(np.int8),
            "nullable": pd.array(rng.choice([1, 2, None], n), dtype="Int64"),
        }
    )  # fmt: skip
    copies = [5, 17, 17, *range(100, 100 + extra_copies)]
    frame = pd.concat([frame, frame.iloc[copies]], ignore_index=True)
    consider = np.ones(len(frame), dtype=bool)
    consider[17] = False  # a quarantined row does not make later copies duplicates
    got = duplicate_mask(frame, consider)
    expected = frame[consider].duplicated().reindex(frame.index, fill_value=False).to_numpy()
    assert got.sum() >= 2  # the planted copies (row 17 itself is not considered)
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("threads", [None, 1, 3])  # columns masked on threads or not
def test_kept_rows_equal_a_boolean_mask_on_every_dtype(threads: int | None) -> None:
    rng = np.random.default_rng(2)
    n = 500
    frame = pd.DataFrame(
        {
            "account_id": pd.Categorical(rng.choice(["a", "b", None], n)),
            "timestamp": pd.to_datetime(rng.integers(0, 10**12, n)),
            "text": pd.Series(rng.choice(["p", None], n), dtype="str"),
            "count": rng.integers(0, 5, n),
            "nullable": pd.array(rng.choice([1, None], n), dtype="Int64"),
            "mixed": pd.Series([None, 1, "x", 2.5] * (n // 4), dtype=object),
        },
        index=pd.RangeIndex(7, 7 + n),
    )
    edges = ~np.isin(np.arange(n), [0, 1, 2, 250, n - 2, n - 1])  # runs at both ends
    some = np.ones(n, dtype=bool)
    some[rng.choice(n, 64, replace=False)] = False  # the most still copied run by run
    for ok in (rng.random(n) > 0.2, np.arange(n) != 3, np.zeros(n, dtype=bool), edges, some):
        got = _kept_rows(frame, ok, threads).reset_index(drop=True)
        pd.testing.assert_frame_equal(got, frame[ok].reset_index(drop=True), check_exact=True)


def test_report_refuses_to_lose_rows() -> None:
    with pytest.raises(AssertionError, match="rows were lost"):
        ValidationReport(problems=[], rows_in={"events": 3}, rows_kept={"events": 1},
                         quarantine={"events": pd.DataFrame({"_row": [0], "_reason": ["x"]})})  # fmt: skip


def test_problem_message_format() -> None:
    p = Problem(
        "events",
        "timestamp",
        "unparsable_timestamp",
        3,
        "row 17: '2024-13-45 99:00'",
        "quarantined",
    )
    assert p.message() == (
        "events.timestamp: 3 rows with unparsable timestamps (e.g. row 17: '2024-13-45 99:00'); quarantined"
    )


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_write_quarantine_round_trips(tmp_path: Path, fmt: str) -> None:
    frames = _frames()
    _set("events", 2, "timestamp", "2024-13-45 99:00")(frames)
    _, report = _run(frames)
    paths = report.write_quarantine(tmp_path / "q", format=fmt)  # type: ignore[arg-type]
    assert [p.name for p in paths] == [f"events.{fmt}"]
    back = pd.read_csv(paths[0]) if fmt == "csv" else pd.read_parquet(paths[0])
    assert back["_row"].tolist() == [2]
    assert back["timestamp"].tolist() == ["2024-13-45 99:00"]
    assert back["_reason"].tolist() == ["events.timestamp: unparsable timestamp"]


def test_schema_post_check_samples_only_very_large_tables():
    from features import validation

    small = pd.DataFrame({"x": range(10)})
    assert validation._schema_sample(small) is small
    big = pd.DataFrame({"x": range(validation.SCHEMA_CHECK_FULL_ROWS + 1)})
    sample = validation._schema_sample(big)
    # evenly spaced, first and last row included
    assert len(sample) == validation.SCHEMA_CHECK_SAMPLE_ROWS
    assert sample["x"].iloc[0] == 0 and sample["x"].iloc[-1] == len(big) - 1
