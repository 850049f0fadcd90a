"""Forecast segments come from the config: any column, numeric or text bands."""

from __future__ import annotations

import pandas as pd
import pytest
from factories import make_config

from features.config import ConfigError, load_config
from features.quarantine import InputError
from serving.forecast.segments import add_segment_columns, band_values, configured_segments


def test_text_bands_are_kept_and_numbers_are_banded():
    values = pd.Series(["51-200", 7, "12", None, "1000+", 5000])
    out = band_values(values, [10, 50, 200])
    assert out.tolist() == ["51-200", "<=10", "10-50", "unknown", "1000+", ">200"]


def test_default_segments_follow_the_firmographics_config():
    config = make_config()  # size column "size", categorical "plan"
    names = [(s.column, s.name) for s in configured_segments(config)]
    assert names == [("persona", None), ("size", "size_band"), ("plan", None)]
    big = config.model_copy(
        update={"firmographics": config.firmographics.model_copy(update={"big_company_size": 500})}
    )
    assert configured_segments(big)[1].bands == [10.0, 50.0, 200.0, 500.0]


def test_default_segments_leave_out_columns_the_export_lacks(tmp_path):
    config = make_config()  # size column "size", categorical "plan"
    kept = configured_segments(config, available=["account_id", "persona", "plan"])
    assert [s.column for s in kept] == ["persona", "plan"]
    path = tmp_path / "c.toml"
    path.write_text('[[forecast.segments]]\ncolumn = "region"\n')
    named = configured_segments(load_config(path), available=["account_id"])
    assert [s.column for s in named] == ["region"]  # named in the config: kept, then refused
    scores = pd.DataFrame({"account_id": ["a"], "p_convert": [0.1]})
    with pytest.raises(InputError) as refused:
        add_segment_columns(scores, scores[["account_id"]], named)
    assert str(refused.value).startswith("forecast.segments: column 'region' is neither")


def test_configured_segments_any_column(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(
        '[[forecast.segments]]\ncolumn = "region"\n\n'
        '[[forecast.segments]]\ncolumn = "seats"\nbands = [5, 25]\nname = "seat_band"\n'
    )
    config = load_config(path)
    scores = pd.DataFrame({"account_id": ["a", "b", "c"], "p_convert": [0.1, 0.2, 0.3]})
    accounts = pd.DataFrame(
        {"account_id": ["a", "b", "c"], "region": ["EU", None, "US"], "seats": ["3", "11-25", 90]}
    )
    out, names = add_segment_columns(scores, accounts, configured_segments(config))
    assert names == ("region", "seat_band")
    assert out["region"].tolist() == ["EU", "unknown", "US"]
    assert out["seat_band"].tolist() == ["<=5", "11-25", ">25"]
    bad = [*configured_segments(config)]
    bad[0] = bad[0].model_copy(update={"column": "nowhere"})
    with pytest.raises(InputError, match="nowhere"):
        add_segment_columns(scores, accounts, bad)


def test_bands_must_increase(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[[forecast.segments]]\ncolumn = "seats"\nbands = [25, 5]\n')
    with pytest.raises(ConfigError, match="bands"):
        load_config(path)
