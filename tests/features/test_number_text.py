"""Money as exports write it: thousands separators, decimal commas, currency marks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import raw_accounts, raw_events

from features.config import ValidationRules
from features.number_text import read_number_text
from features.validation import validate_tables
from features.value_parsing import to_number, to_number_read_as_written


@pytest.mark.parametrize(
    ("written", "expected", "convention"),
    [
        (["1,234.50", "$980", "12,000", "7.5"], [1234.5, 980.0, 12000.0, 7.5], "point"),
        (["1.234,50", "980,00", "12.000", "7,5 EUR"], [1234.5, 980.0, 12000.0, 7.5], "comma"),
        (["1 234,50", "DKK 980", "3,25"], [1234.5, 980.0, 3.25], "comma"),
        (["1'234.50", "USD 99.90", "-5"], [1234.5, 99.9, -5.0], "point"),
        (["1,234", "2,500"], [1234.0, 2500.0], "point"),  # fits both: thousands (said so)
    ],
)
def test_a_column_is_read_in_one_way_of_writing(written, expected, convention):
    values, found = read_number_text(pd.Series(written, dtype="str"))
    assert found == convention
    np.testing.assert_allclose(values.to_numpy(), expected)


def test_a_column_mixing_both_ways_is_not_guessed():
    values, found = read_number_text(pd.Series(["1.234,50", "1,234.50"], dtype="str"))
    assert found is None and values.isna().all()


def test_plain_numbers_are_read_as_before_and_words_stay_bad():
    num, bad, reformatted = to_number_read_as_written(pd.Series(["12.5", "3", None, "n/a"]))
    assert num.tolist()[:2] == [12.5, 3.0] and np.isnan(num.iloc[2])
    assert bad.tolist() == [False, False, False, True] and not reformatted.any()
    # one "3.954" among decimal commas is 3954, not 3.954: the column decides
    num, bad = to_number(pd.Series(["3.954", "950,00"]))
    assert num.tolist() == [3954.0, 950.0] and not bad.any()


def test_deal_values_with_decimal_commas_are_kept_and_reported():
    accounts = raw_accounts()
    accounts["deal_value"] = ["1.200,00", "800,50"]
    tables, report = validate_tables(raw_events(), accounts, None, rules=ValidationRules())
    assert tables.accounts["deal_value"].tolist() == [1200.0, 800.5]
    lines = [p.message() for p in report.problems]
    assert any("accounts.deal_value: 2 rows with numbers written with a decimal comma" in m
               for m in lines), lines  # fmt: skip
    assert not any("non-numeric" in m for m in lines)
