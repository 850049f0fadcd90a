"""Exports: CSV / Parquet / PostgreSQL, atomic and idempotent."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from serving.forecast import exports
from serving.forecast.exports import (
    build_export_frame,
    read_sql_export,
    write_csv,
    write_parquet,
    write_sql,
)

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _accounts(n: int = 50, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    p = rng.random(n)
    value = rng.uniform(100, 5000, n).round(2)
    return pd.DataFrame(
        {
            "account_id": [f"acc_{i:04d}" for i in range(n)],
            "p_convert": p,
            "deal_value": value,
            "expected_value": p * value,
            "expected_month": pd.Timestamp("2026-03-01"),
            "persona": rng.choice(["Golden Leads", "Fizzlers"], n),
            "plan": rng.choice(["team", "starter"], n),
            "company_size_band": rng.choice(["1-10", "1000+"], n),
        }
    )


def _frame(as_of: str = "2026-02-15", version: str = "v1", seed: int = 0) -> pd.DataFrame:
    return build_export_frame(
        _accounts(seed=seed),
        model_version=version,
        as_of=pd.Timestamp(as_of),
        segments=("persona", "plan", "company_size_band"),
    )


def test_files_round_trip_and_replace(tmp_path):
    frame = _frame()
    write_csv(frame, tmp_path / "a.csv")
    write_parquet(frame, tmp_path / "a.parquet")
    back = pd.read_parquet(tmp_path / "a.parquet")
    pd.testing.assert_frame_equal(back, frame, check_dtype=False)
    csv = pd.read_csv(tmp_path / "a.csv")
    assert len(csv) == len(frame) and set(csv["as_of"]) == {"2026-02-15T00:00:00"}
    write_csv(frame, tmp_path / "a.csv")  # same as_of again: replaced, not appended
    assert len(pd.read_csv(tmp_path / "a.csv")) == len(frame)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv", "a.parquet"]


def test_failure_mid_write_keeps_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "a.parquet"
    write_parquet(_frame(version="old"), path)
    before = path.read_bytes()

    def broken(self, target, *args, **kwargs):
        Path(target).write_bytes(b"PAR1 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", broken)
    with pytest.raises(OSError):
        write_parquet(_frame(version="new"), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["a.parquet"]  # temp file removed


KILL_SCRIPT = """
import os, sys, time
import numpy as np, pandas as pd
from serving.forecast import exports
real_replace = os.replace
def slow_replace(src, dst):  # the export is killed before it can publish
    time.sleep(60)
    real_replace(src, dst)
os.replace = slow_replace
n = 200_000
frame = pd.DataFrame({"account_id": [f"x{i}" for i in range(n)], "p_convert": np.random.rand(n)})
exports.write_csv(frame, sys.argv[1])
"""


def test_killed_export_leaves_previous_file_intact(tmp_path):
    path = tmp_path / "accounts.csv"
    write_csv(_frame(version="previous"), path)
    before = path.read_bytes()
    proc = subprocess.Popen(
        [sys.executable, "-c", KILL_SCRIPT, str(path)], cwd=Path(__file__).parents[2]
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            temps = [p for p in tmp_path.iterdir() if p.name.startswith(".accounts.csv.")]
            if temps and temps[0].stat().st_size > 0:
                break
            assert proc.poll() is None, "export process ended before it could be killed"
            time.sleep(0.02)
        else:
            pytest.fail("the export never started writing")
    finally:
        proc.kill()
        proc.wait()
    assert path.read_bytes() == before
    assert pd.read_csv(path)["model_version"].unique().tolist() == ["previous"]


@pytest.fixture
def pg_table():
    name = f"trialcast_test_export_{uuid.uuid4().hex[:10]}"
    yield name
    engine = sa.create_engine(PG_URL)
    with engine.begin() as conn:
        conn.execute(sa.text(f'DROP TABLE IF EXISTS "{name}"'))
    engine.dispose()


@pytest.mark.postgres
def test_postgres_round_trip_idempotent_and_atomic(pg_table, monkeypatch):
    first = _frame("2026-02-15", "v1")
    other = _frame("2026-03-15", "v1", seed=1)
    assert write_sql(first, PG_URL, table=pg_table) == len(first)
    write_sql(other, PG_URL, table=pg_table)
    back = read_sql_export(PG_URL, table=pg_table, as_of=pd.Timestamp("2026-02-15"))
    back = back.sort_values("account_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(back, first, check_dtype=False)

    # Same as_of again (a re-run with a new model): replaced, never duplicated.
    rerun = _frame("2026-02-15", "v2")
    write_sql(rerun, PG_URL, table=pg_table)
    everything = read_sql_export(PG_URL, table=pg_table)
    assert len(everything) == len(first) + len(other)
    feb = everything[everything["as_of"] == pd.Timestamp("2026-02-15")]
    assert feb["model_version"].unique().tolist() == ["v2"]
    assert feb["account_id"].is_unique

    # A failure in the middle of the insert rolls the whole export back.
    real_records = exports._records

    def failing_records(frame):
        records = real_records(frame)
        records[len(records) // 2]["p_convert"] = "not a number"
        return records

    monkeypatch.setattr(exports, "_records", failing_records)
    with pytest.raises(sa.exc.DBAPIError):
        write_sql(_frame("2026-02-15", "v3"), PG_URL, table=pg_table)
    after = read_sql_export(PG_URL, table=pg_table)
    assert len(after) == len(everything)
    feb = after[after["as_of"] == pd.Timestamp("2026-02-15")]
    assert feb["model_version"].unique().tolist() == ["v2"]


def test_export_columns_follow_the_configured_segments():
    accounts = _accounts().drop(columns=["plan", "company_size_band"])
    accounts["region"] = "EMEA"
    frame = build_export_frame(
        accounts, model_version="v2", as_of=pd.Timestamp("2026-02-15"), segments=("region", "tier")
    )
    assert list(frame.columns) == [
        "account_id", "p_convert", "deal_value", "expected_value", "expected_month",
        "region", "tier", "model_version", "as_of",
    ]  # fmt: skip
    assert (frame["region"] == "EMEA").all() and frame["tier"].isna().all()
    assert "plan" not in frame.columns  # nothing assumed about the company's columns
