"""The README's feature-table example, trained for real and served over HTTP by BentoML."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import requests
from scipy.special import expit
from servers import bentoml_server

from features.build import FeatureBuilder
from features.config import load_config
from features.demo.table_company import write_example
from features.loaders import load_tables
from serving.batch import score_accounts
from serving.scoring import load_scoring_models
from training.train import RecordTarget, train_models

pytestmark = pytest.mark.slow

TOKEN = "table-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("table_http")
    _, toml = write_example(root)
    config = load_config(toml)
    tables = load_tables(config).tables
    uri = f"sqlite:///{root / 'mlflow.db'}"
    result = train_models(
        config, tables, kinds=("conversion",), target=RecordTarget(tracking_uri=uri)
    )
    models = load_scoring_models(config, tracking_uri=uri, cache_root=str(root / "cache"))
    return {"root": root, "toml": toml, "config": config, "tables": tables, "uri": uri,
            "result": result, "models": models}  # fmt: skip


@pytest.fixture(scope="module")
def server(trained):
    root = trained["root"]
    env = {
        "TRIALCAST_API_TOKEN": TOKEN,
        "TRIALCAST_CONFIG": str(trained["toml"]),
        "TRIALCAST_TRACKING_URI": trained["uri"],
        "TRIALCAST_SERVING_CACHE": str(root / "cache"),
        "TRIALCAST_SCORES_PATH": str(root / "no_scores.parquet"),
    }
    with bentoml_server(env, root / "server.log") as base:
        yield base


def test_small_table_trains_and_names_both_leaks(trained):
    outcome = trained["result"].models["conversion"]
    excluded = set(outcome.leakage.excluded)
    assert {"table_first_invoice_amount", "table_days_to_convert"} <= excluded
    message = outcome.leakage.message()
    assert "table_first_invoice_amount" in message and "table_days_to_convert" in message
    assert outcome.split_sizes["train"] < 1500  # the 1,500-row table, one row per trial


def test_served_scores_are_explained_in_the_configured_words(server, trained):
    config, tables, models = trained["config"], trained["tables"], trained["models"]
    builder = FeatureBuilder.from_tables(tables, config, models.spec("conversion"))
    ended = tables.accounts[tables.accounts["trial_end"] <= tables.export_time()].tail(20)
    positions = builder.positions(ended["account_id"])
    frame = builder.build(positions, builder.index.trial_end[positions])
    features = models.conversion.model.features
    body = []
    for account_id, row in frame[features].iterrows():
        values = {k: (None if pd.isna(v) else (v if isinstance(v, str) else float(v)))
                  for k, v in row.items()}  # fmt: skip
        body.append({"account_id": str(account_id), "features": values})
    r = requests.post(
        server + "/score", json={"accounts": body, "explain_all": True}, headers=AUTH, timeout=60
    )
    assert r.status_code == 200, r.text
    got = r.json()
    expected = models.conversion.model.predict_proba(frame)
    np.testing.assert_allclose([g["p_convert"] for g in got], expected, atol=1e-9)
    texts = []
    for item in got:
        (exp,) = item["explanations"]
        assert (
            abs(exp["base_value"] + sum(f["contribution"] for f in exp["all"]) - exp["logit"])
            < 1e-9
        )
        assert abs(expit(exp["logit"]) - item["p_convert"]) < 1e-12
        assert any("trial-end model" in w for w in item["warnings"])
        texts += [f["text"] for f in exp["all"]]
    assert any(t.startswith("hours to first report: ") and t.endswith(" h") for t in texts)
    assert any(t.startswith("plan looked at: ") for t in texts)

    running = {"account_id": "r1", "features": {"trial_days_remaining": 10.0, "table_seats": 2.0}}
    r = requests.post(server + "/score", json={"accounts": [running]}, headers=AUTH, timeout=30)
    assert r.status_code == 400 and "trial_days_remaining" in r.text and "trial-end" in r.text
    leak = {"account_id": "x", "features": {"table_days_to_convert": 3.0}}
    r = requests.post(server + "/score", json={"accounts": [leak]}, headers=AUTH, timeout=30)
    assert r.status_code == 400 and "table_days_to_convert" in r.text


def test_batch_scores_hold_back_running_trials(trained):
    scores = score_accounts(trained["config"], trained["tables"], trained["models"])
    assert scores.attrs["held_back"] > 0 and (scores["trial_days_left"] <= 0).all()


def test_score_events_takes_the_accounts_feature_table_row(server, trained):
    """A table-trained model scored from raw rows: the account's row of the feature
    table goes in ``table_features``; left-out columns score as missing, with a
    warning each, and a column the table never had is refused (400)."""
    config, tables, models = trained["config"], trained["tables"], trained["models"]
    builder = FeatureBuilder.from_tables(tables, config, models.spec("conversion"))
    ended = tables.accounts[tables.accounts["trial_end"] <= tables.export_time()].tail(5)
    positions = builder.positions(ended["account_id"])
    expected = models.conversion.model.predict_proba(
        builder.build(positions, builder.index.trial_end[positions])
    )
    table = tables.features.set_index(tables.features["account_id"].astype(str))
    sources = [c for c in table.columns if c not in ("account_id", "as_of")]
    for (_, acc), want in zip(ended.iterrows(), expected, strict=True):
        row = table.loc[str(acc["account_id"]), sources]
        values = {k: (None if pd.isna(v) else (v if isinstance(v, str) else float(v)))
                  for k, v in row.items()}  # fmt: skip
        body = {
            "account": {
                "account_id": str(acc["account_id"]),
                "trial_start": acc["trial_start"].isoformat(),
                "trial_end": acc["trial_end"].isoformat(),
            },
            "as_of": acc["trial_end"].isoformat(),
            "table_features": values,
        }
        r = requests.post(server + "/score_events", json=body, headers=AUTH, timeout=30)
        assert r.status_code == 200, r.text
        assert abs(r.json()["p_convert"] - want) < 1e-9
    body["table_features"] = {}
    r = requests.post(server + "/score_events", json=body, headers=AUTH, timeout=30)
    assert r.status_code == 200, r.text
    missing = [w for w in r.json()["warnings"] if "not given; scored as missing" in w]
    assert len(missing) == len(models.spec("conversion").table_columns)
    body["table_features"] = {"no_such_column": 1.0}
    r = requests.post(server + "/score_events", json=body, headers=AUTH, timeout=30)
    assert r.status_code == 400 and r.json()["field"].startswith("table_features")
