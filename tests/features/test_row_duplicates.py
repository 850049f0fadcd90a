"""Exact duplicate rows on large frames: hashed, sorted in blocks on threads, merged.

Every case compares with ``DataFrame.duplicated`` on the considered rows, for one
thread and for several blocks (so repeats across blocks need the merge).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.quarantine import RowLedger
from features.row_duplicates import (
    _DUP_HASH_MIN_ROWS,
    duplicate_mask,
    flag_duplicates,
    hashes_and_repeats,
    row_hashes,
)

_GOLDEN = 0x9E3779B97F4A7C15
N = _DUP_HASH_MIN_ROWS + 10_000  # above the size where rows are hashed first


def _expected(frame: pd.DataFrame, consider: np.ndarray) -> np.ndarray:
    return frame[consider].duplicated().reindex(frame.index, fill_value=False).to_numpy()


def _mixed_frame(n: int, seed: int) -> pd.DataFrame:
    """Categories, timestamps, text with gaps, floats with NaN, nullable ints, an extra
    object column: few distinct values each, so rows differ mostly by the timestamp."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "account_id": pd.Categorical.from_codes(rng.integers(-1, 40, n), categories=[f"a{i}" for i in range(40)]),
            "event": pd.Categorical.from_codes(rng.integers(0, 4, n), categories=list("wxyz")),
            "timestamp": np.datetime64("2024-01-01", "ns") + rng.integers(0, 10**6, n).astype("timedelta64[s]"),
            "text": pd.Series(rng.choice(["p", "q", None], n), dtype="str"),
            "score": np.where(rng.random(n) < 0.3, np.nan, rng.integers(0, 3, n).astype(float)),
            "nullable": pd.array(rng.choice([1, 2, None], n), dtype="Int64"),
            "extra": pd.Series(rng.choice(["u", 7, None], n), dtype=object),
        }
    )  # fmt: skip


def _with_copies(frame: pd.DataFrame, rows: list[int]) -> pd.DataFrame:
    return pd.concat([frame, frame.iloc[rows]], ignore_index=True)


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("n_copies", [3, 400])  # few repeated hashes / many (the bitmap path)
def test_large_frame_with_repeats_matches_pandas(threads: int, n_copies: int) -> None:
    frame = _mixed_frame(N, seed=n_copies)
    rng = np.random.default_rng(threads)
    # copies of rows of the first block appended at the end (last block): only the
    # merge of the sorted blocks brings them together; some rows copied twice
    rows = [int(r) for r in rng.integers(0, N // 4, n_copies)] + [5, 5]
    frame = _with_copies(frame, rows)
    consider = rng.random(len(frame)) > 0.05  # set-aside rows do not make copies repeats
    consider[5] = False
    got = duplicate_mask(frame, consider, threads=threads)
    expected = _expected(frame, consider)
    assert expected.sum() >= 0.8 * n_copies  # the planted copies are there to be found
    assert not got[5]
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("threads", [1, 2, 5])
def test_hashes_and_repeats_are_the_row_hashes_and_their_repeats(threads: int) -> None:
    frame = _with_copies(_mixed_frame(N, seed=1), list(range(0, 3000, 7)))
    consider = np.random.default_rng(2).random(len(frame)) > 0.2
    hashes, repeated = hashes_and_repeats(frame, consider, threads=threads)
    np.testing.assert_array_equal(hashes, row_hashes(frame))
    values, counts = np.unique(hashes[consider], return_counts=True)
    np.testing.assert_array_equal(repeated, values[counts > 1])
    assert len(repeated) > 100


def _colliding_frame(n_pairs: int) -> pd.DataFrame:
    """Distinct rows in pairs whose 64-bit hashes are equal, plus true copies.

    For two int64 columns the hash is ``a * G + b`` (mod 2**64, after ``0 * G + a``),
    so ``(a + 1, b - G)`` hashes like ``(a, b)`` and differs from it."""
    rng = np.random.default_rng(3)
    a = rng.integers(0, 10**12, N, dtype=np.int64)
    b = rng.integers(0, 10**12, N, dtype=np.int64)
    a[-n_pairs:] = a[:n_pairs] + 1
    b[-n_pairs:] = (b[:n_pairs].astype(np.uint64) - np.uint64(_GOLDEN)).view(np.int64)
    frame = pd.DataFrame({"a": a, "b": b})
    return _with_copies(frame, [10_000, 10_001, 10_001])  # three true copies


@pytest.mark.parametrize("n_pairs", [2, 500])  # few repeated hashes / many
@pytest.mark.parametrize("threads", [1, 2])
def test_hash_collisions_are_not_duplicates(n_pairs: int, threads: int) -> None:
    frame = _colliding_frame(n_pairs)
    hashes = row_hashes(frame)
    assert (hashes[:n_pairs] == hashes[N - n_pairs : N]).all()  # the collisions happen
    consider = np.ones(len(frame), dtype=bool)
    got = duplicate_mask(frame, consider, threads=threads)
    np.testing.assert_array_equal(got, _expected(frame, consider))
    assert got.sum() == 3 and not got[:N].any()


def test_nothing_considered_and_no_repeats() -> None:
    frame = _mixed_frame(N, seed=4)
    frame["timestamp"] = np.datetime64("2024-01-01", "ns") + np.arange(N).astype("timedelta64[s]")
    assert not duplicate_mask(frame, np.ones(N, dtype=bool), threads=2).any()
    copied = _with_copies(frame, [1, 2])
    assert not duplicate_mask(copied, np.zeros(len(copied), dtype=bool), threads=2).any()


def test_unhashable_cells_are_compared_as_text() -> None:
    frame = _mixed_frame(N, seed=5)
    frame["extra"] = pd.Series([[i % 3] for i in range(N)], dtype=object)
    frame = _with_copies(frame, [7, 8])
    ledger = RowLedger("events", frame)
    flag_duplicates(ledger, frame)
    expected = frame.astype({"extra": "str"}).duplicated().to_numpy()
    assert expected.sum() >= 2
    np.testing.assert_array_equal(~ledger.ok, expected)
