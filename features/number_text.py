"""Numbers as exports write them: thousands separators, a decimal comma, currency marks.

A CRM or billing export often writes money as ``$1,234.50``, ``1.234,50 EUR`` or
``1'234.50``. ``pandas.to_numeric`` reads none of these, and a deal value that
cannot be read is emptied: a whole European export's deal values would be lost.
The convention is decided for the whole column, never value by value, because
``1.234`` means 1234 in a column written with decimal commas and 1.234 in one
written with decimal points: a column is read with decimal commas only when at
least one value has one and every value fits that way of writing.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

#: Currency words and marks, spaces (also no-break and thin ones) and apostrophes
#: used as thousands separators: removed before the digits are read.
_NOISE = re.compile(r"[\s\u00a0\u202f'’$€£¥₹]|\b(?:usd|eur|gbp|dkk|sek|nok|chf|kr)\b", re.I)
#: ``1,234,567.89`` (commas group thousands, a point marks decimals), and the reverse.
_POINT_DECIMALS = re.compile(r"^[-+]?\d{1,3}(,\d{3})*(\.\d+)?$|^[-+]?\d+(\.\d+)?$")
_COMMA_DECIMALS = re.compile(r"^[-+]?\d{1,3}(\.\d{3})*(,\d+)?$|^[-+]?\d+(,\d+)?$")

#: What each way of writing is called in the report.
CONVENTIONS = {
    "point": "thousands separators or currency marks (e.g. 1,234.50 or $1234)",
    "comma": "a decimal comma (e.g. 1.234,50)",
}


def _fits(pattern: re.Pattern[str], values: pd.Series) -> bool:
    return bool(values.str.fullmatch(pattern).all())


def read_number_text(text: pd.Series) -> tuple[pd.Series, str | None]:
    """The numbers ``text`` (present values only, as strings) holds, and its convention.

    Returns:
        The values as float64 (NaN where a value is not a number under the column's
        convention) and ``"point"`` or ``"comma"`` (a key of ``CONVENTIONS``), or
        ``None`` with all NaN when the column fits neither way of writing.
    """
    cleaned = text.str.replace(_NOISE, "", regex=True)
    commas = cleaned.str.contains(",", regex=False)
    if commas.any() and _fits(_COMMA_DECIMALS, cleaned) and not _fits(_POINT_DECIMALS, cleaned):
        as_point = cleaned.str.replace(".", "", regex=False).str.replace(",", ".", regex=False)
        return pd.to_numeric(as_point, errors="coerce").astype("float64"), "comma"
    if _fits(_POINT_DECIMALS, cleaned):
        as_point = cleaned.str.replace(",", "", regex=False)
        return pd.to_numeric(as_point, errors="coerce").astype("float64"), "point"
    return pd.Series(np.nan, index=text.index, dtype="float64"), None
