"""Account-level forecast exports: CSV, Parquet and a SQL table, atomic and idempotent.

- Files are written to a temporary file in the target's folder, flushed and
  fsynced, then ``os.replace``d over the target: a reader sees the old file or
  the new one, never half of one, and a killed export leaves the old one intact.
- SQL (any SQLAlchemy URL): one transaction creates the table if needed, deletes
  the rows of the same ``as_of`` and inserts the new ones. Re-running an export
  for the same ``as_of`` replaces its rows; a failure rolls everything back.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

#: Columns of every account-level export, in order; the configured segment columns
#: (``serving.forecast.segments``: persona, size band, plan... whatever the config
#: names) go between these and ``TRAILING_COLUMNS``.
LEADING_COLUMNS = ["account_id", "p_convert", "deal_value", "expected_value", "expected_month"]
TRAILING_COLUMNS = ["model_version", "as_of"]
DEFAULT_TABLE = "trialcast_forecast_accounts"


def export_columns(segments: Sequence[str]) -> list[str]:
    """The export's columns for these segment columns (duplicates and clashes dropped)."""
    fixed = {*LEADING_COLUMNS, *TRAILING_COLUMNS}
    kept = [s for s in dict.fromkeys(segments) if s not in fixed]
    return [*LEADING_COLUMNS, *kept, *TRAILING_COLUMNS]


def build_export_frame(
    accounts: pd.DataFrame,
    *,
    model_version: str,
    as_of: pd.Timestamp,
    segments: Sequence[str] = ("persona",),
) -> pd.DataFrame:
    """The export rows: account forecasts with their segment columns (text; missing
    ones empty), stamped with ``model_version`` and ``as_of``."""
    columns = export_columns(segments)
    out = pd.DataFrame(index=accounts.index)
    for col in columns:
        if col in accounts.columns:
            out[col] = accounts[col]
    out["account_id"] = out["account_id"].astype("string")
    out["model_version"] = str(model_version)
    out["as_of"] = pd.Timestamp(as_of)
    for col in columns[len(LEADING_COLUMNS) : -len(TRAILING_COLUMNS)]:
        if col in out.columns:
            out[col] = out[col].astype("string")
        else:
            out[col] = pd.Series(pd.NA, index=accounts.index, dtype="string")
    return out[columns].reset_index(drop=True)


def write_atomic(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a temp file beside ``path``, fsync, then ``os.replace``.

    On any error the temp file is removed and ``path`` is untouched.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return target


def write_csv(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write ``frame`` as CSV, atomically (ISO timestamps, no index)."""
    return write_atomic(
        path, lambda tmp: frame.to_csv(tmp, index=False, date_format="%Y-%m-%dT%H:%M:%S")
    )


def write_parquet(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write ``frame`` as Parquet, atomically."""
    return write_atomic(path, lambda tmp: frame.to_parquet(tmp, index=False))


def _sql_type(series: pd.Series) -> Any:
    dtype = series.dtype
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return sa.DateTime()
    if pd.api.types.is_bool_dtype(dtype):
        return sa.Boolean()
    if pd.api.types.is_integer_dtype(dtype):
        return sa.BigInteger()
    if pd.api.types.is_float_dtype(dtype):
        return sa.Float()
    return sa.Text()


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    out = frame.astype(object).where(frame.notna(), None)
    records: list[dict[str, Any]] = out.to_dict(orient="records")  # type: ignore[assignment]
    for rec in records:
        for key, value in rec.items():
            if isinstance(value, pd.Timestamp):
                rec[key] = value.to_pydatetime()
            elif isinstance(value, np.generic):
                rec[key] = value.item()
    return records


def write_sql(
    frame: pd.DataFrame,
    url: str | sa.Engine,
    *,
    table: str = DEFAULT_TABLE,
    schema: str | None = None,
    key: str = "as_of",
) -> int:
    """Replace the rows of ``frame``'s ``as_of`` in ``table``, in one transaction.

    The table is created from the frame's columns when missing. Every row of
    ``frame`` must carry the same ``key`` value.

    Returns:
        Rows inserted.
    """
    values = frame[key].drop_duplicates()
    if len(values) != 1:
        raise ValueError(f"an export holds exactly one {key}; got {len(values)}")
    stamp = pd.Timestamp(values.iloc[0]).to_pydatetime()
    engine = sa.create_engine(url) if isinstance(url, str) else url
    meta = sa.MetaData(schema=schema)
    columns = [sa.Column(c, _sql_type(frame[c])) for c in frame.columns]
    target = sa.Table(table, meta, *columns, sa.Index(f"ix_{table}_{key}", key))
    try:
        with engine.begin() as conn:
            meta.create_all(conn, checkfirst=True)
            conn.execute(sa.delete(target).where(target.c[key] == stamp))
            records = _records(frame)
            if records:
                conn.execute(sa.insert(target), records)
    finally:
        if isinstance(url, str):
            engine.dispose()
    return len(frame)


def read_sql_export(
    url: str | sa.Engine, *, table: str = DEFAULT_TABLE, as_of: pd.Timestamp | None = None
) -> pd.DataFrame:
    """Read an export table back (all ``as_of`` values, or one)."""
    engine = sa.create_engine(url) if isinstance(url, str) else url
    try:
        meta = sa.MetaData()
        target = sa.Table(table, meta, autoload_with=engine)
        query = sa.select(target)
        if as_of is not None:
            query = query.where(target.c["as_of"] == pd.Timestamp(as_of).to_pydatetime())
        with engine.connect() as conn:
            return pd.read_sql(query, conn)
    finally:
        if isinstance(url, str):
            engine.dispose()
