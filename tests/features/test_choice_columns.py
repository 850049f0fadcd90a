"""Choice columns (``direction``, ``channel``): a categorical column is normalised on its
categories and must give what the rows' own text gives (the per-row path below is the
code that ran on every message before)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import raw_accounts, raw_communications, raw_events

from features.config import ValidationRules
from features.validation import CHANNELS, DIRECTIONS, normalise_choice, validate_tables

MESSY_DIRECTIONS = [
    "inbound", "Outbound", " INBOUND ", "in bound", "in-bound", "sideways", "", "  ",
    None, "0", "1", "outbound", "Out-Bound", "inbound\t",
]  # fmt: skip
MESSY_CHANNELS = [
    "email", "E-Mail", "In App", "in_app", "IN-APP", " chat", "fax", None, "",
    "1", "0", "Ticket", "call ", "meeting",
]  # fmt: skip


def _per_row(s: pd.Series, allowed: tuple[str, ...]) -> tuple[pd.Series, np.ndarray, np.ndarray]:
    """The per-row normalisation that validation ran on every message before."""
    text = s.astype("str")
    norm = text.str.strip().str.lower().str.replace(" ", "_").str.replace("-", "_")
    invalid = ~norm.isin(allowed).to_numpy()
    return norm.where(~invalid), invalid, (norm != text).to_numpy()


def _messy(values: list[str | None], n: int, seed: int) -> list[str | None]:
    rng = np.random.default_rng(seed)
    return [values[i] for i in rng.integers(0, len(values), n)]


def _as_category(values: list[str | None], *, unused: tuple[str, ...] = ()) -> pd.Series:
    values = [v if isinstance(v, str) else None for v in values]
    cats = pd.Index(sorted({v for v in values if v is not None} | set(unused)), dtype="str")
    rng = np.random.default_rng(len(values))
    cats = cats[rng.permutation(len(cats))]  # category order is not the rows' order
    return pd.Series(pd.Categorical(values, categories=cats), index=range(7, 7 + len(values)))


def _assert_same(got: tuple, want: tuple) -> None:
    pd.testing.assert_series_equal(got[0], want[0])
    assert got[0].array._pa_array.type == want[0].array._pa_array.type  # type: ignore[attr-defined]
    np.testing.assert_array_equal(got[1], want[1])
    np.testing.assert_array_equal(got[2] & ~got[1], want[2] & ~want[1])


@pytest.mark.parametrize(
    ("values", "allowed"), [(MESSY_DIRECTIONS, DIRECTIONS), (MESSY_CHANNELS, CHANNELS)]
)
@pytest.mark.parametrize("seed", [0, 1])
def test_categories_normalise_like_the_rows(
    values: list[str | None], allowed: tuple[str, ...], seed: int
) -> None:
    rows = _messy(values, 500, seed)
    column = _as_category(rows, unused=("never used", "INBOUND"))
    want = _per_row(column, allowed)
    assert want[1].any() and (~want[1]).any() and (want[2] & ~want[1]).any()
    _assert_same(normalise_choice(column, allowed), want)
    # text columns (CSV without categories, SQL) take the per-row path: the same answer
    _assert_same(normalise_choice(column.astype("str"), allowed), want)


@pytest.mark.parametrize(
    "column",
    [
        pd.Series(pd.Categorical([None, None], categories=pd.Index([], dtype="str"))),
        pd.Series(pd.Categorical([], categories=pd.Index(["inbound"], dtype="str"))),
        pd.Series(pd.Categorical(["inbound", "outbound"])),
    ],
    ids=["all-null", "empty", "all-valid"],
)
def test_edge_columns_normalise_like_the_rows(column: pd.Series) -> None:
    _assert_same(normalise_choice(column, DIRECTIONS), _per_row(column, DIRECTIONS))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_validated_messages_do_not_depend_on_categories(seed: int) -> None:
    """Whole validation of messy messages: categorical and text columns give the same
    tables, problems (counts and examples) and quarantine."""
    base = raw_communications()
    n = 300
    comms = base.iloc[np.arange(n) % len(base)].reset_index(drop=True)
    comms["timestamp"] = pd.date_range("2024-03-01", periods=n, freq="17min").astype("str")
    comms["direction"] = _messy(MESSY_DIRECTIONS, n, seed)
    comms["channel"] = _messy(MESSY_CHANNELS, n, seed + 10)
    results = []
    for as_category in (False, True):
        frame = comms.copy()
        if as_category:
            frame["direction"] = _as_category(list(frame["direction"])).to_numpy()
            frame["channel"] = _as_category(list(frame["channel"])).to_numpy()
        else:
            frame = frame.astype({"direction": "str", "channel": "str"})
        results.append(
            validate_tables(raw_events(), raw_accounts(), frame, rules=ValidationRules())
        )
    (text_tables, text_report), (cat_tables, cat_report) = results
    assert text_report.rows_kept["communications"] < n  # some rows were set aside
    assert cat_tables.communications is not None and text_tables.communications is not None
    pd.testing.assert_frame_equal(cat_tables.communications, text_tables.communications)
    assert cat_tables.communications["direction"].dtype == "str"
    assert cat_report.problems == text_report.problems
    assert {p.check for p in cat_report.problems} >= {"invalid_value", "normalised_case"}
    assert cat_report.rows_kept == text_report.rows_kept
    want_q = text_report.quarantine["communications"][["_row", "_reason"]]
    pd.testing.assert_frame_equal(
        cat_report.quarantine["communications"][["_row", "_reason"]], want_q
    )
