"""Bookkeeping of bad input: problems, the quarantine and the validation report.

The data contract promises that no row is silently dropped: every row a loader
reads is either kept (possibly repaired) or set aside in the quarantine with its
reason. ``RowLedger`` tracks that per table with one small integer per row (so a
20M-row events table costs 20 MB, not 20M reason strings), and
``ValidationReport`` carries the result plus the human-readable problems.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

Action = Literal["quarantined", "repaired", "fatal"]

#: What each check found, phrased to follow "<n> rows ...".
CHECK_TEXT: dict[str, str] = {
    "empty_row": "that are entirely empty",
    "missing_value": "with no value in a required column",
    "unparsable_timestamp": "with unparsable timestamps",
    "duplicate_row": "that exactly repeat an earlier row",
    "duplicate_account_id": "repeating an account_id already seen in an earlier row",
    "duplicate_key": "repeating the key (account_id, as_of) of an earlier row with other values",
    "not_a_boolean": "with a value that is not true/false, yes/no or 1/0 (set to empty)",
    "trial_end_before_start": "where trial_end is before trial_start",
    "unknown_account": "for accounts not in the accounts table",
    "account_quarantined": "for accounts whose accounts row was quarantined",
    "before_trial": "too long before their account's trial_start",
    "after_export": "later than the export time",
    "invalid_value": "with a value outside the allowed set",
    "not_a_number": "with a non-numeric value (set to empty)",
    "number_format": "with numbers written with a decimal comma, thousands separators or "
    "currency marks (read as numbers)",
    "negative_money": "with negative money (set to empty)",
    "out_of_range": "with a value outside [-1, 1] (set to empty)",
    "normalised_case": "with values normalised to lower case without spaces",
    "missing_column": "missing a required column",
    "unreadable": "that could not be read",
}

#: Row label used in messages: the same 0-based position as the ``_row`` column.
ROW_WORD = "row"


class InputError(ValueError):
    """Input that cannot be used at all (a fatal problem).

    Raised for a missing required column, a missing or unreadable source file, or
    a misconfigured source. The message names the table, the column or config key,
    and what to do about it.
    """


@dataclass
class Problem:
    """One kind of bad input found in one table column.

    Attributes:
        table: contract table name (``events``, ``accounts``, ``communications``).
        column: contract column concerned, or ``None`` for whole-row checks.
        check: short machine name of the check (a key of ``CHECK_TEXT``).
        rows: how many rows it affected.
        example: one affected row and its original value, e.g. ``row 17: '2024-13-45'``.
        action: what was done with those rows.
    """

    table: str
    column: str | None
    check: str
    rows: int
    example: str
    action: Action

    def message(self) -> str:
        """One line a person can act on: table, column, count, example, action."""
        where = f"{self.table}.{self.column}" if self.column else self.table
        noun = "row" if self.rows == 1 else "rows"
        what = CHECK_TEXT.get(self.check, f"failing check '{self.check}'")
        return f"{where}: {self.rows:,} {noun} {what} (e.g. {self.example}); {self.action}"


def _empty_quarantine() -> pd.DataFrame:
    return pd.DataFrame(
        {"_row": pd.Series([], dtype="int64"), "_reason": pd.Series([], dtype="str")}
    )


@dataclass
class ValidationReport:
    """What validation found, kept and set aside.

    Attributes:
        problems: every problem found, in the order the checks ran.
        rows_in: rows read per table.
        rows_kept: rows in the validated tables per table.
        quarantine: per table, the set-aside rows with their original values (as
            loaded, contract column names) plus ``_row`` (0-based position in the
            source) and ``_reason``.
        notes: facts worth knowing that are not problems (derived accounts, the
            export time used).
    """

    problems: list[Problem]
    rows_in: dict[str, int]
    rows_kept: dict[str, int]
    quarantine: dict[str, pd.DataFrame]
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.check_balance()

    def check_balance(self) -> None:
        """Raise if any table lost or invented rows (rows in != kept + quarantined)."""
        for table, n_in in self.rows_in.items():
            n_q = len(self.quarantine.get(table, _empty_quarantine()))
            if n_in != self.rows_kept.get(table, 0) + n_q:
                raise AssertionError(
                    f"{table}: {n_in} rows in but {self.rows_kept.get(table, 0)} kept "
                    f"+ {n_q} quarantined; rows were lost"
                )

    @property
    def n_quarantined(self) -> int:
        """Total quarantined rows over all tables."""
        return sum(len(q) for q in self.quarantine.values())

    def summary(self) -> str:
        """A short multi-line text: row balance per table, then every problem."""
        lines = []
        for table, n_in in self.rows_in.items():
            n_q = len(self.quarantine.get(table, _empty_quarantine()))
            lines.append(
                f"{table}: {n_in:,} rows in, {self.rows_kept.get(table, 0):,} kept, "
                f"{n_q:,} quarantined"
            )
        lines.extend(f"  - {p.message()}" for p in self.problems)
        if not self.problems:
            lines.append("  no problems found")
        lines.extend(f"  note: {n}" for n in self.notes)
        return "\n".join(lines)

    def write_quarantine(
        self, out_dir: Path, *, format: Literal["csv", "parquet"] = "csv"
    ) -> list[Path]:
        """Write each non-empty quarantine table to ``out_dir`` so people can fix the source.

        Args:
            out_dir: folder to write into (created if missing).
            format: ``csv`` (readable in any spreadsheet) or ``parquet`` (large tables).

        Returns:
            The written files, one per table with quarantined rows.
        """
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        written = []
        for table, frame in self.quarantine.items():
            if frame.empty:
                continue
            path = out_dir / f"{table}.{format}"
            if format == "csv":
                frame.to_csv(path, index=False)
            else:
                frame.to_parquet(path, index=False)
            written.append(path)
        return written


def describe_value(value: object) -> str:
    """A short printable form of an original value for messages."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):  # type: ignore[call-overload]
        return "empty"
    text = repr(value.item() if isinstance(value, np.generic) else value)
    if isinstance(value, pd.Timestamp):
        text = f"'{value}'"
    return text if len(text) <= 80 else text[:77] + "..."


class RowLedger:
    """Tracks, for one table, the first reason each row was set aside.

    Each row carries a small code: 0 means kept, ``k`` means quarantined for the
    ``k``-th reason. Checks only flag rows that are still kept, so a row is
    counted once, under the first check that failed it.
    """

    def __init__(self, table: str, raw: pd.DataFrame) -> None:
        self.table = table
        self.raw = raw
        self.codes = np.zeros(len(raw), dtype=np.int16)
        self.reasons: list[str] = [""]
        self.problems: list[Problem] = []

    @property
    def ok(self) -> np.ndarray:
        """Boolean mask of rows still kept."""
        return self.codes == 0

    def example(self, mask: np.ndarray, column: str | None) -> str:
        """``row <n>: <original value>`` for the first flagged row."""
        pos = int(np.flatnonzero(mask)[0])
        if column is not None and column in self.raw.columns:
            return f"{ROW_WORD} {pos}: {describe_value(self.raw[column].iloc[pos])}"
        return f"{ROW_WORD} {pos}"

    def quarantine(
        self, mask: np.ndarray, check: str, column: str | None, *, example: str | None = None
    ) -> int:
        """Set aside the still-kept rows in ``mask`` for ``check``; record the problem."""
        new = np.asarray(mask, dtype=bool) & self.ok
        n = int(new.sum())
        if n == 0:
            return 0
        if example is None:
            example = self.example(new, column)
        where = f"{self.table}.{column}" if column else self.table
        reason = f"{where}: {check.replace('_', ' ')}"
        if reason not in self.reasons:
            self.reasons.append(reason)
        self.codes[new] = self.reasons.index(reason)
        self.problems.append(Problem(self.table, column, check, n, example, "quarantined"))
        return n

    def repaired(self, mask: np.ndarray, check: str, column: str) -> None:
        """Record that the kept rows in ``mask`` had ``column`` repaired (nulled)."""
        new = np.asarray(mask, dtype=bool) & self.ok
        if new.any():
            self.problems.append(
                Problem(
                    self.table, column, check, int(new.sum()), self.example(new, column), "repaired"
                )
            )

    def quarantined_frame(self) -> pd.DataFrame:
        """The set-aside rows: original values plus ``_row`` and ``_reason``."""
        bad = np.flatnonzero(self.codes)
        frame = self.raw.iloc[bad].reset_index(drop=True)
        frame["_row"] = bad.astype("int64")
        frame["_reason"] = pd.Categorical.from_codes(
            self.codes[bad] - 1, categories=pd.Index(self.reasons[1:], dtype="str")
        )
        return frame
