"""The Funnel page and the endpoint's payload from a written funnel, without a server
(the served page is tested in headless Chromium in ``test_funnel_http.py``)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from features.config_funnel import FunnelConfig
from features.funnel_stages import FunnelStage
from features.funnel_table import funnel_table
from serving.funnel_data import funnel_payload, read_latest_funnel
from serving.funnel_page import render_funnel

STAGES = [FunnelStage("signup", "signup"), FunnelStage("Set up <a>", "setup", "x"),
          FunnelStage("paid", "paid")]  # fmt: skip


def _written(tmp_path, n: int = 600):
    rng = np.random.default_rng(3)
    start = pd.Timestamp("2026-01-05") + pd.to_timedelta(rng.uniform(0, 70, n), unit="D")
    days = pd.DataFrame(
        {
            "trial_start": start,
            "trial_end": start + pd.Timedelta(days=14),
            "window_end": start + pd.Timedelta(days=44),
            "signup": 0.0,
            "Set up <a>": np.where(rng.random(n) < 0.6, rng.uniform(0, 5, n), np.nan),
            "paid": np.where(rng.random(n) < 0.2, rng.uniform(5, 40, n), np.nan),
        },
        index=pd.Index([f"a{i}" for i in range(n)], name="account_id"),
    )
    segments = pd.DataFrame({"total": "all", "motion": rng.choice(["self-serve", "sales-assisted"], n)},
                            index=days.index)  # fmt: skip
    table = funnel_table(days, segments, STAGES, as_of=pd.Timestamp("2026-03-20"), by="week",
                         settings=FunnelConfig())  # fmt: skip
    table.to_csv(tmp_path / "funnel.csv", index=False)
    (tmp_path / "funnel_meta.json").write_text(json.dumps({"as_of": "2026-03-20", "by": "week",
                                                           "false_discovery_rate": 0.05,
                                                           "model_version": None}))  # fmt: skip
    return table, days, segments


def test_table_counts_and_steps_add_up(tmp_path):
    table, days, _ = _written(tmp_path)
    total = table[table["dimension"] == "total"]
    assert total.groupby("stage")["trials"].sum().eq(len(days)).all()
    assert total.groupby("stage")["reached"].sum()["Set up <a>"] == days["Set up <a>"].notna().sum()
    paid = total[total["stage"] == "paid"]
    both = (days["Set up <a>"].notna() & days["paid"].notna()).sum()
    assert paid["step_reached"].sum() == both
    assert (paid["step_low"] <= paid["step_rate"]).all() and (
        paid["step_rate"] <= paid["step_high"]
    ).all()
    # cohorts whose trials are still running are never tested
    assert not table.loc[~table["finished"], "p_value"].notna().any()
    motion = table[(table["dimension"] == "motion") & (table["stage"] == "signup")]
    assert motion["trials"].sum() == len(days)


def test_page_and_payload_show_the_written_rows(tmp_path):
    table, _, _ = _written(tmp_path)
    latest = read_latest_funnel(tmp_path)
    assert latest is not None
    page = render_funnel(latest, company="Acme", view="motion:sales-assisted")
    assert 'id="motion-toggle"' in page and 'value="motion:sales-assisted" selected' in page
    assert "Set up &lt;a&gt;" in page and "Set up <a>" not in page  # escaped

    assisted = table[(table["dimension"] == "motion") & (table["segment"] == "sales-assisted")]
    assert page.count('<tr data-cohort="') == assisted["cohort"].nunique()
    body = funnel_payload(latest, dimension="motion", segment="sales-assisted")
    assert len(body["rows"]) == len(assisted) and body["as_of"] == "2026-03-20"
    assert all(r["median_days"] is None or r["median_days"] >= 0 for r in body["rows"])
    assert "No funnel yet" in render_funnel(None, company="Acme")
    assert read_latest_funnel(tmp_path / "missing") is None
