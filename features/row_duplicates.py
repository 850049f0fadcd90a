"""Exact duplicate rows, found fast enough for 20M events, and quarantined."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from features.parallel import MAX_THREADS, thread_map, usable_cores
from features.quarantine import RowLedger

#: Below this many rows ``DataFrame.duplicated`` is used directly.
_DUP_HASH_MIN_ROWS = 200_000
#: Up to this many repeated hashes, rows are matched to them by direct comparison.
_FEW_REPEATS = 8
#: Bits of the bitmap that finds rows with a repeated hash (2**24: 16 MB; with
#: thousands of repeats, a few rows in a thousand share low bits by chance).
_BITMAP_SIZE = 1 << 24
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _hash_inputs(frame: pd.DataFrame) -> list[np.ndarray]:
    """Per column, the integers that go into the row hash (views where possible).

    Integer codes, integers and timestamps are used as they are (no int64 copy per
    column): on 20M events the copies were most of the cost of hashing.
    """
    inputs = []
    for col in frame.columns:
        s = frame[col]
        if isinstance(s.dtype, pd.CategoricalDtype):
            inputs.append(np.asarray(s.array.codes))
        elif pd.api.types.is_datetime64_dtype(s.dtype):
            inputs.append(np.asarray(s.to_numpy()).view(np.int64))
        elif pd.api.types.is_integer_dtype(s.dtype) and isinstance(s.dtype, np.dtype):
            inputs.append(s.to_numpy())
        else:  # text, floats (NaN payloads differ), objects, nullable: pandas' value hash
            inputs.append(pd.util.hash_pandas_object(s, index=False).to_numpy())
    return inputs


def _mix_into(out: np.ndarray, inputs: list[np.ndarray], lo: int) -> None:
    """Hash rows ``lo .. lo + len(out)`` into ``out`` (multiply-add, wrapping mod 2**64)."""
    out[:] = 0
    hi = lo + len(out)
    for values in inputs:
        np.multiply(out, _GOLDEN, out=out)
        np.add(out, values[lo:hi], out=out, dtype=np.uint64, casting="unsafe")


def row_hashes(frame: pd.DataFrame) -> np.ndarray:
    """A 64-bit hash per row: equal rows always hash equal (collisions are possible)."""
    mixed = np.empty(len(frame), dtype=np.uint64)
    _mix_into(mixed, _hash_inputs(frame), 0)
    return mixed


def _block_bounds(n: int, blocks: int) -> list[tuple[int, int]]:
    edges = [n * i // blocks for i in range(blocks + 1)]
    return list(itertools.pairwise(edges))


def hashes_and_repeats(
    frame: pd.DataFrame, consider: np.ndarray, *, threads: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Every row's ``row_hashes`` value, and the hashes that occur more than once
    among the rows of ``consider`` (sorted, each once).

    The rows are cut into one block per thread; each thread hashes its block and
    sorts the block's considered hashes into its own slice of one array (numpy
    releases the GIL in both), and one stable sort then merges the sorted runs
    (timsort finds the runs and merges them: 0.13 s at 20M). At 20M rows on 2 cores:
    0.87 s instead of 1.56 s for hashing, copying and sorting on one thread.
    """
    n = len(frame)
    inputs = _hash_inputs(frame)
    blocks = max(1, min(threads or usable_cores(), MAX_THREADS, n))
    bounds = _block_bounds(n, blocks)
    every = bool(consider.all())
    counts = [hi - lo if every else int(np.count_nonzero(consider[lo:hi])) for lo, hi in bounds]
    starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    hashes = np.empty(n, dtype=np.uint64)
    ordered = np.empty(int(starts[-1]), dtype=np.uint64)

    def hash_and_sort(block: int) -> None:
        lo, hi = bounds[block]
        part = hashes[lo:hi]
        _mix_into(part, inputs, lo)
        run = ordered[starts[block] : starts[block + 1]]
        if every:
            run[:] = part
        else:
            np.compress(consider[lo:hi], part, out=run)
        run.sort()

    thread_map(hash_and_sort, range(blocks), blocks)
    if blocks > 1:
        ordered.sort(kind="stable")  # merges the sorted runs
    same = ordered[1:] == ordered[:-1]
    return hashes, np.unique(ordered[1:][same])


def duplicate_mask(
    frame: pd.DataFrame, consider: np.ndarray, *, threads: int | None = None
) -> np.ndarray:
    """Rows among ``consider`` that exactly repeat an earlier such row (first one not flagged).

    Large frames are hashed and the hashes sorted (on ``threads`` threads, default
    one per usable core); only rows whose hash occurs twice are compared exactly.
    ``DataFrame.duplicated`` alone takes ~14 s on 20M events, this under a second.
    """
    out = np.zeros(len(frame), dtype=bool)
    if len(frame) < _DUP_HASH_MIN_ROWS:
        candidates = consider
    else:
        hashes, repeated = hashes_and_repeats(frame, consider, threads=threads)
        if not len(repeated):
            return out
        if len(repeated) <= _FEW_REPEATS:  # one comparison pass per repeat (20M: ~0.1 s)
            candidates = consider & np.isin(hashes, repeated)
        else:  # many: a bitmap of the repeated hashes' low bits, one gather per row
            # (a binary search per row took ~1 s at 20M); rows that share only the
            # low bits are candidates too and are told apart by the exact comparison
            low = np.uint64(_BITMAP_SIZE - 1)
            bitmap = np.zeros(_BITMAP_SIZE, dtype=bool)
            bitmap[repeated & low] = True
            candidates = consider & bitmap[hashes & low]
    if candidates.any():
        out[candidates] = frame[candidates].duplicated().to_numpy()
    return out


def flag_duplicates(ledger: RowLedger, canon: pd.DataFrame) -> None:
    """Quarantine rows that repeat an earlier kept row of the same table."""
    try:
        dup = duplicate_mask(canon, ledger.ok)
    except TypeError:  # unhashable cells (lists, dicts) in extra columns: compare as text
        objects = {c: "str" for c in canon.columns if canon[c].dtype == object}
        dup = duplicate_mask(canon.astype(objects), ledger.ok)
    ledger.quarantine(dup, "duplicate_row", None)
