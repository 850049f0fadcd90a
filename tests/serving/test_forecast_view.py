"""The finance page reads the latest forecast folder: table, by-month and backtest pictures."""

import pandas as pd

from serving.forecast.plots import save_png
from serving.forecast.view import read_latest_forecast, render_forecast
from trialcast.forecast_job import write_forecast_meta


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    return fig


def test_no_forecast_says_what_to_run(tmp_path):
    assert read_latest_forecast(tmp_path) is None
    assert "trialcast forecast" in render_forecast(None, company="Acme")


def test_page_shows_rows_and_both_pictures(tmp_path):
    rows = pd.DataFrame(
        [
            {"dimension": "total", "segment": "all", "n_accounts": 3, "expected": 1500.0,
             "p10": 1000.0, "p50": 1500.0, "p90": 2000.0},
            {"dimension": "plan", "segment": "team", "n_accounts": 2, "expected": 900.0,
             "p10": 500.0, "p50": 900.0, "p90": 1300.0},
        ]
    )  # fmt: skip
    rows.to_csv(tmp_path / "forecast_breakdown.csv", index=False)
    write_forecast_meta(tmp_path, as_of=pd.Timestamp("2026-10-31"), model_version="v7")
    save_png(_figure(), tmp_path / "forecast_by_month.png")
    (tmp_path / "backtest").mkdir()
    save_png(_figure(), tmp_path / "backtest" / "backtest_forecast_vs_actual.png")

    latest = read_latest_forecast(tmp_path)
    assert latest is not None and latest.model_version == "v7"
    assert latest.as_of.startswith("2026-10-31")
    page = render_forecast(latest, company="Acme <Inc>")
    assert "Acme &lt;Inc&gt;" in page  # escaped
    assert page.count("data:image/png;base64,") == 2
    assert "<td class=num>1,500</td>" in page and "team" in page
