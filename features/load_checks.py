"""Loads that kept nothing: the real cause, the quarantine on disk, then a clear stop.

When every row of a table is set aside (a date format that matches nothing, a
0/1 column mapped as a date), later steps would fail with a misleading symptom
("trial_start is empty", "0 of them converted"). This check runs right after
validation: it writes the quarantine files (rows in = kept + quarantined, so the
user can see each row's reason) and raises an ``InputError`` that quotes the
problems found in that table.
"""

from __future__ import annotations

from pathlib import Path

from features.quarantine import InputError, ValidationReport
from features.value_parsing import FALSE_WORDS, TRUE_WORDS

#: Values that mean a yes/no flag, not a date (a 0/1 column mapped as a timestamp).
FLAG_WORDS = TRUE_WORDS | FALSE_WORDS


def _unparsable_hints(report: ValidationReport, table: str) -> list[str]:
    """What the unparsable "dates" of ``table`` look like, when that tells the fix:
    yes/no words (a flag mapped as a date) or big integers (Unix epoch times)."""
    frame = report.quarantine.get(table)
    if frame is None or frame.empty:
        return []
    out = []
    for problem in report.problems:
        col = problem.column
        if problem.table != table or problem.check != "unparsable_timestamp":
            continue
        if col is None or col not in frame:
            continue
        values = frame[col].dropna().astype(str).str.strip().str.lower()
        if not len(values):
            continue
        if values.isin(FLAG_WORDS).all():
            out.append(
                f"  {table}.{col} holds yes/no values (0/1, true/false), not dates: map a date "
                f"column to {col}, or, for a conversion flag, remove the mapping and set "
                "[trial].conversion_flag to that column"
            )
        elif values.str.fullmatch(r"\d{9,16}(\.0)?").all():
            out.append(
                f"  {table}.{col} holds whole numbers ({values.iloc[0]}): Unix epoch times? "
                f'Set timestamp_format = "{_epoch_unit(values.iloc[0])}" under '
                f"[sources.{table}] (unix_s, unix_ms or unix_us), or export them as dates "
                "(ISO 8601, e.g. 2025-09-01T10:00:00Z)"
            )
    return out


def _epoch_unit(value: str) -> str:
    """The epoch unit a whole number's size suggests (13 digits: ms, 16: us, else s)."""
    digits = len(value.split(".")[0].lstrip("-"))
    return "unix_ms" if digits in (12, 13) else "unix_us" if digits >= 15 else "unix_s"


def stop_if_nothing_kept(report: ValidationReport, quarantine_dir: Path) -> None:
    """Raise ``InputError`` naming the cause when a table that had rows kept none.

    The quarantine files are written to ``quarantine_dir`` first, so the message
    can point at the rows and their reasons.
    """
    empty = [t for t, n in report.rows_in.items() if n > 0 and report.rows_kept.get(t, 0) == 0]
    if not empty:
        return
    written = report.write_quarantine(quarantine_dir)
    lines = []
    for table in empty:
        lines.append(f"{table}: all {report.rows_in[table]:,} rows were set aside (quarantined):")
        lines += [f"  - {p.message()}" for p in report.problems if p.table == table]
        lines += _unparsable_hints(report, table)
    where = ", ".join(str(p) for p in written) or str(quarantine_dir)
    lines.append(
        f"Every set-aside row is in {where} with its reason (_reason). Fix the source or the "
        "config (column mapping under [sources.<table>.columns], timestamp_format) and rerun"
    )
    raise InputError("\n".join(lines))
