"""Time units of the demo generators: int64 nanoseconds since the epoch."""

from __future__ import annotations

import numpy as np

DAY = 86_400 * 10**9  # one day in ns
HOUR = 3_600 * 10**9
MS = 10**6
NEVER = np.iinfo(np.int64).max  # "no such moment" for int64 ns times


def days_to_ns(days: np.ndarray) -> np.ndarray:
    """Float days to int64 ns, rounded down to the millisecond."""
    return (np.asarray(days) * 86_400_000).astype(np.int64) * MS
