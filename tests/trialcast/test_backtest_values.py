"""The backtest's table by band of deal value: quarters, sums and errors add up."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from trialcast.backtest_report import print_segments, print_value_bands
from trialcast.backtest_values import segment_table, value_band_table


def _rows(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    value = rng.lognormal(7.0, 1.0, n)
    oracle = rng.uniform(0.05, 0.5, n)
    # shipping p too high on big deals, too low on small ones
    big = value > np.median(value)
    p = np.where(big, oracle * 1.2, oracle * 0.9)
    return pd.DataFrame(
        {
            "account_id": [f"a{i}" for i in range(n)],
            "p": p,
            "oracle": oracle,
            "won": (rng.random(n) < oracle).astype(float),
            "deal_value": value,
        }
    )


def test_bands_are_quarters_whose_sums_add_up_to_the_whole():
    rows = _rows()
    table = value_band_table(rows)
    bands, total = table[table["band"] != "all"], table[table["band"] == "all"].iloc[0]
    assert list(bands["band"].str[:2]) == ["Q1", "Q2", "Q3", "Q4"]
    assert list(bands["trials"]) == [100, 100, 100, 100]
    for col in ("trials", "expected", "oracle", "actual", "expected_value", "oracle_value"):
        assert bands[col].sum() == pytest.approx(total[col])
    assert total["expected_value"] == pytest.approx(float(rows["p"] @ rows["deal_value"]))
    # the bands are ordered by value: every Q1 deal is below every Q4 deal
    order = np.argsort(rows["deal_value"].to_numpy())
    q1 = rows.iloc[order[:100]]
    assert bands.iloc[0]["expected"] == pytest.approx(q1["p"].sum())


def test_the_probability_error_by_deal_size_shows():
    table = value_band_table(_rows()).set_index("band")
    q1, q4 = table.iloc[0], table.iloc[3]
    assert q1["vs_oracle_pct"] == pytest.approx(-10.0)
    assert q4["vs_oracle_pct"] == pytest.approx(20.0)
    assert q4["value_vs_oracle_pct"] == pytest.approx(20.0)
    # revenue over all bands is dominated by the big deals: more than the count error
    everything = table.loc["all"]
    assert everything["value_vs_oracle_pct"] > everything["vs_oracle_pct"]


def test_without_values_or_oracle_the_table_says_only_what_it_knows():
    rows = _rows()
    assert value_band_table(rows.drop(columns="deal_value")).empty
    assert value_band_table(rows.assign(deal_value=np.nan)).empty
    no_oracle = value_band_table(rows.assign(oracle=np.nan))
    assert no_oracle["oracle"].isna().all() and no_oracle["vs_oracle_pct"].isna().all()
    console = Console(record=True, width=200)
    print_value_bands(rows.assign(oracle=np.nan), console)
    text = console.export_text()
    assert "revenue vs actual" in text and "oracle" not in text
    console = Console(record=True, width=200)
    print_value_bands(rows, console)
    assert "revenue vs oracle" in console.export_text()


def test_segments_sum_per_value_and_show_whose_probabilities_are_off():
    rows = _rows()
    big = rows["deal_value"] > np.median(rows["deal_value"])
    size = np.where(big, ">1000", np.where(np.arange(len(rows)) % 3 == 0, "<=10", "10-50"))
    assert sorted({">1000", "<=10", "10-50"})[0] == "10-50"  # as text, a middle band first
    rows["segment_company_size_band"] = size
    rows["segment_plan"] = np.where(np.arange(len(rows)) % 2 == 0, "team", "starter")
    table = segment_table(rows)
    assert set(table["segment"]) == {"company_size_band", "plan"}
    for _, part in table.groupby("segment"):
        assert part["trials"].sum() == len(rows)
        assert part["expected"].sum() == pytest.approx(rows["p"].sum())
        assert part["oracle"].sum() == pytest.approx(rows["oracle"].sum())
    bands = table[table["segment"] == "company_size_band"]
    assert list(bands["value"]) == ["<=10", "10-50", ">1000"]  # in size order, not as text
    by_size = bands.set_index("value")
    assert by_size.loc[">1000", "vs_oracle_pct"] == pytest.approx(20.0)
    small = by_size.loc[["<=10", "10-50"]]
    assert small["expected"].sum() / small["oracle"].sum() == pytest.approx(0.9)
    console = Console(record=True, width=200)
    print_segments(rows, console)
    text = console.export_text()
    assert "Open trials by segment" in text and ">1000" in text and "+20.0%" in text
    assert segment_table(rows.drop(columns=["segment_company_size_band", "segment_plan"])).empty
