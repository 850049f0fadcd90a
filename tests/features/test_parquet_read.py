"""Parquet sources are read with ``ParquetFile.read`` (a chunk per row group); the frame
must be the one ``pq.read_table`` (the dataset scanner, 128K-row batches) gave before."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from features.loaders import CATEGORY_COLUMNS, _read_parquet


def _old_read(path: Path, dict_cols: set[str]) -> pd.DataFrame:
    """How the loader read a Parquet file before (then ``to_pandas`` as it still does)."""
    schema = pq.read_schema(path)
    textual = [
        f.name for f in schema
        if f.name in dict_cols and (pa.types.is_string(f.type) or pa.types.is_large_string(f.type))
    ]  # fmt: skip
    table = pq.read_table(path, read_dictionary=textual)
    return table.to_pandas(self_destruct=True, split_blocks=True)


def _assert_same_frame(got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert list(got.columns) == list(want.columns)
    pd.testing.assert_index_equal(got.index, want.index)
    for col in want.columns:
        assert got[col].dtype == want[col].dtype, col
        if isinstance(want[col].dtype, pd.CategoricalDtype):  # same categories, same order
            assert list(got[col].cat.categories) == list(want[col].cat.categories), col
            np.testing.assert_array_equal(got[col].array.codes, want[col].array.codes)
        else:
            pd.testing.assert_series_equal(got[col], want[col])


def _events(n: int, seed: int) -> pd.DataFrame:
    """Ids whose set and first-seen order change from one part of the file to the next."""
    rng = np.random.default_rng(seed)
    part = np.arange(n) * 6 // n  # six parts, each with its own ids
    accounts = np.array([f"acc_{i:05d}" for i in range(3000)], dtype=object)
    account = accounts[(rng.integers(0, 400, n) + part * 450) % 3000]
    user = np.array([f"u{rng.integers(0, 20_000)}" for _ in range(n)], dtype=object)
    user[rng.random(n) < 0.05] = None
    events = np.array(["Login", "Query Run", "Report Shared", "Pipeline Created"], dtype=object)
    return pd.DataFrame(
        {
            "account_id": pd.array(account, dtype="str"),
            "user_id": pd.array(user, dtype="str"),
            "event": pd.array(events[rng.integers(0, 3, n) + (part % 2)], dtype="str"),
            "timestamp": pd.Timestamp("2024-01-01")
            + pd.to_timedelta(rng.integers(0, 10**7, n), unit="s"),
            "properties": pd.array(np.where(rng.random(n) < 0.5, "{}", None), dtype="str"),
        }
    )


@pytest.mark.parametrize(
    ("row_group_size", "dictionary_pagesize_limit"),
    [(None, None), (70_000, None), (40_000, 2_000), (300_001, None)],
    ids=["one-group", "groups-over-batch-size", "dictionary-fallback", "groups-of-2.3-batches"],
)
def test_parquet_read_equals_the_dataset_scanner(
    tmp_path: Path, row_group_size: int | None, dictionary_pagesize_limit: int | None
) -> None:
    frame = _events(320_000, seed=row_group_size or 0)
    path = tmp_path / "events.parquet"
    options = {} if dictionary_pagesize_limit is None else {"dictionary_pagesize_limit": 2_000}
    pq.write_table(
        pa.Table.from_pandas(frame, preserve_index=False),
        path,
        row_group_size=row_group_size,
        **options,  # type: ignore[arg-type]
    )
    dict_cols = set(CATEGORY_COLUMNS["events"])
    want = _old_read(path, dict_cols)
    # the case this guards: per-batch chunks whose dictionaries differ
    assert pq.read_table(path, read_dictionary=["account_id"]).column(0).num_chunks > 1
    got = _read_parquet(path, dict_cols).to_pandas(self_destruct=True, split_blocks=True)
    _assert_same_frame(got, want)
    assert isinstance(got["account_id"].dtype, pd.CategoricalDtype)


def test_parquet_read_keeps_pandas_metadata_and_empty_files(tmp_path: Path) -> None:
    frame = _events(1_000, seed=3).set_index(pd.Index(np.arange(5, 1_005), name="row"))
    frame.to_parquet(tmp_path / "indexed.parquet")  # index stored as a column + metadata
    frame.iloc[:0].to_parquet(tmp_path / "empty.parquet", index=False)
    for name in ("indexed", "empty"):
        path = tmp_path / f"{name}.parquet"
        for dict_cols in (set(CATEGORY_COLUMNS["events"]), set()):
            got = _read_parquet(path, dict_cols).to_pandas(self_destruct=True, split_blocks=True)
            _assert_same_frame(got, _old_read(path, dict_cols))
