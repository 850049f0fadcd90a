"""Raw column values into canonical ones: text ids, naive UTC timestamps, numbers.

Shared by the contract tables' validation (``features.validation``) and the
feature-table loader (``features.feature_table_load``): each function returns
the converted column and, where values can be bad, a mask of the present values
that could not be converted (they are quarantined by the caller, never dropped
silently).
"""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd

from features.number_text import read_number_text

_NAT = np.datetime64("NaT", "ns")


def missing_mask(s: pd.Series) -> np.ndarray:
    """Null, empty or whitespace-only values."""
    if isinstance(s.dtype, pd.CategoricalDtype):
        cats = s.cat.categories
        blank_cat = (
            np.asarray(cats.astype("str").str.strip() == "", dtype=bool)
            if len(cats)
            else np.zeros(0, bool)
        )
        codes = np.asarray(s.array.codes)
        if not blank_cat.any():
            return codes < 0
        return (codes < 0) | np.append(blank_cat, True)[codes]
    out = s.isna().to_numpy()
    if s.dtype == "str" or s.dtype == object:
        out = out | (s.astype("str").str.strip() == "").fillna(False).to_numpy(dtype=bool)
    return out


def as_text(s: pd.Series) -> pd.Series:
    """Ids and names as ``str`` (or ``category`` with ``str`` categories); nulls stay null."""
    if isinstance(s.dtype, pd.CategoricalDtype):
        cats = s.cat.categories
        return (
            s if cats.dtype == "str" else s.cat.rename_categories(as_text(pd.Series(cats)).tolist())
        )
    if s.dtype == "str":
        return s
    if pd.api.types.is_float_dtype(s.dtype) and bool((s.dropna() % 1 == 0).all()):
        s = s.astype("Int64")
    if s.dtype == object:
        s = s.map(lambda v: json.dumps(v, sort_keys=True) if isinstance(v, dict | list) else v)
    return s.astype("str")


def to_naive_utc_ns(s: pd.Series) -> pd.Series:
    """Datetimes as timezone-naive UTC ``datetime64[ns]``; values outside its range become NaT."""
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        s = s.dt.tz_convert("UTC").dt.tz_localize(None)
    if s.dtype == "datetime64[ns]":
        return s
    values = s.to_numpy()
    unit = np.datetime_data(values.dtype)[0]
    lo, hi = np.array(["1677-09-22", "2262-04-11"], dtype=f"datetime64[{unit}]")
    out_of_range = (values < lo) | (values > hi)
    if out_of_range.any():
        values = values.copy()
        values[out_of_range] = np.datetime64("NaT")
    return pd.Series(values.astype("datetime64[ns]"), index=s.index, name=s.name)


#: ``timestamp_format`` values for Unix epoch numbers, and their unit.
EPOCH_FORMATS = {"unix_s": "s", "unix_ms": "ms", "unix_us": "us"}


def _parse_epoch(raw: pd.Series, unit: str) -> pd.Series:
    """Unix epoch numbers (or their text) in ``unit`` as naive UTC ``datetime64[ns]``;
    anything else, or a time outside 1677-2262, becomes NaT."""
    numbers = pd.to_numeric(raw.astype(object).where(raw.notna(), None), errors="coerce")
    scale = {"s": 10**9, "ms": 10**6, "us": 10**3}[unit]
    values = numbers.to_numpy(dtype=np.float64) * scale
    bound = float(np.iinfo(np.int64).max)
    ok = np.isfinite(values) & (np.abs(values) < bound) & (values == np.round(values))
    ns = np.where(ok, values, 0).astype(np.int64).view("datetime64[ns]")
    return pd.Series(np.where(ok, ns, _NAT), index=raw.index, name=raw.name)


def parse_timestamps(raw: pd.Series, fmt: str | None = None) -> tuple[pd.Series, np.ndarray]:
    """Parse a timestamp column into naive UTC ``datetime64[ns]``.

    Args:
        raw: native datetimes (naive = UTC, zone-aware converted) or text.
        fmt: ``strftime`` format of text values; ISO 8601 when ``None``;
            ``unix_s`` / ``unix_ms`` / ``unix_us`` for Unix epoch numbers.

    Returns:
        The parsed column and a mask of values that were present but could not be
        parsed (numbers, bad text, dates outside 1677-2262): these are quarantined.
    """
    present = ~missing_mask(raw)
    if fmt in EPOCH_FORMATS and not (
        isinstance(raw.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(raw.dtype)
    ):
        parsed = _parse_epoch(raw, EPOCH_FORMATS[fmt])
    elif isinstance(raw.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(raw.dtype):
        parsed = to_naive_utc_ns(raw)
    elif isinstance(raw.dtype, pd.CategoricalDtype):
        cats, _ = parse_timestamps(pd.Series(raw.cat.categories), fmt)
        codes = np.asarray(raw.array.codes)
        parsed = pd.Series(np.append(cats.to_numpy(), _NAT)[codes], index=raw.index, name=raw.name)
    elif pd.api.types.is_numeric_dtype(raw.dtype) or pd.api.types.is_bool_dtype(raw.dtype):
        parsed = pd.Series(np.full(len(raw), _NAT), index=raw.index, name=raw.name)
    else:
        text = raw.where(present)
        if text.dtype == object:  # e.g. from SQL: datetimes, text, and numbers that must not parse
            text = text.map(lambda v: v if v is None or isinstance(v, str | dt.date) else str(v))
        parsed = to_naive_utc_ns(
            pd.to_datetime(text, format=fmt or "ISO8601", utc=True, errors="coerce")
        )
    return parsed, present & parsed.isna().to_numpy()


TRUE_WORDS = frozenset({"true", "t", "yes", "y", "1", "1.0"})
FALSE_WORDS = frozenset({"false", "f", "no", "n", "0", "0.0"})


def to_boolean(raw: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Yes/no values (true/false, yes/no, 1/0, any case) as 1.0 / 0.0.

    Returns:
        The values (empty where missing or not a yes/no word) and a mask of the
        present values that are not yes/no words (to report).
    """
    present = ~missing_mask(raw)
    text = raw.astype("str").str.strip().str.lower()
    yes = text.isin(TRUE_WORDS).to_numpy() & present
    no = text.isin(FALSE_WORDS).to_numpy() & present
    if pd.api.types.is_bool_dtype(raw.dtype):
        yes, no = raw.fillna(False).to_numpy(dtype=bool), (~raw.fillna(True)).to_numpy(dtype=bool)
    values = np.where(yes, 1.0, np.where(no, 0.0, np.nan))
    return pd.Series(values, index=raw.index), present & ~yes & ~no


def to_number(raw: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Numbers as float64, and a mask of present values that are not numbers."""
    num, bad, _ = to_number_read_as_written(raw)
    return num, bad


def to_number_read_as_written(raw: pd.Series) -> tuple[pd.Series, np.ndarray, np.ndarray]:
    """``to_number``, reading text the way exports write numbers (``features.number_text``).

    Returns:
        The numbers, the mask of present values that are not numbers, and the mask
        of values read other than a plain parse would read them (``1.234,50``,
        ``$1,200``): the caller reports those.
    """
    present = ~missing_mask(raw)
    num = pd.to_numeric(raw.where(present), errors="coerce").astype("float64")
    bad = present & num.isna().to_numpy()
    unchanged = np.zeros(len(raw), dtype=bool)
    textual = (
        raw.dtype == "str" or raw.dtype == object or isinstance(raw.dtype, pd.CategoricalDtype)
    )
    if not bad.any() or not textual:
        return num, bad, unchanged
    text = raw[present].astype("str").str.strip()
    read, convention = read_number_text(text)
    if convention is None:
        return num, bad, unchanged
    out = pd.Series(np.nan, index=raw.index, dtype="float64")
    out[present] = read.to_numpy()
    plain = num.to_numpy()
    changed = present & ~(np.isclose(out.to_numpy(), plain) & ~np.isnan(plain))
    return out, present & out.isna().to_numpy(), changed & out.notna().to_numpy()


def value_codes(s: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """Integer codes (-1 = null) and the distinct values, without expanding categories."""
    if isinstance(s.dtype, pd.CategoricalDtype):
        return np.asarray(s.array.codes).astype(np.int64), s.cat.categories
    codes, uniques = pd.factorize(s)
    return codes, pd.Index(uniques)
