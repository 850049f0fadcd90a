"""Time units of the demo generators (int64 nanoseconds since the epoch) and their row collector."""

from __future__ import annotations

import numpy as np

DAY = 86_400 * 10**9  # one day in ns
HOUR = 3_600 * 10**9
MS = 10**6
NEVER = np.iinfo(np.int64).max  # "no such moment" for int64 ns times


def days_to_ns(days: np.ndarray) -> np.ndarray:
    """Float days to int64 ns, rounded down to the millisecond."""
    return (np.asarray(days) * 86_400_000).astype(np.int64) * MS


class RowsInLife:
    """Collects table rows stream by stream, dropping those outside an account's life."""

    def __init__(self, lower: np.ndarray, upper: np.ndarray) -> None:
        self.lower, self.upper = lower, upper
        self.parts: list[tuple[np.ndarray, ...]] = []

    def add(self, acc: np.ndarray, t: np.ndarray, *cols: np.ndarray | int | float) -> None:
        keep = (t >= self.lower[acc]) & (t < self.upper[acc])
        full = [np.broadcast_to(np.asarray(c), acc.shape) for c in cols]
        self.parts.append((acc[keep], t[keep], *(c[keep] for c in full)))

    def concat(self) -> list[np.ndarray]:
        return [np.concatenate(cols) for cols in zip(*self.parts, strict=True)]
