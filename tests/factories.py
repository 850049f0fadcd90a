"""Small hand-made contract tables for feature tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.config import CompanyConfig, parse_config
from features.tables import Tables

T = pd.Timestamp
START = T("2026-01-01")


def make_config(**overrides: object) -> CompanyConfig:
    """A small config with a three-step checklist over a made-up vocabulary."""
    raw: dict = {
        "company": "test",
        "activation": {
            "milestones": [
                {"name": "Set up", "events": ["setup"], "stage": "setup"},
                {"name": "Used core", "events": ["core_a", "core_b"], "min_count": 2},
                {"name": "Invited fast", "events": ["invite"], "deadline_days": 3},
            ]
        },
        "engagement": {
            "core_events": ["core_a", "core_b"],
            "invite_events": ["invite"],
            "top_k_event_types": 3,
            "recent_window_days": 7,
            "decay_half_life_days": 7,
        },
        "firmographics": {"numeric": ["size"], "categorical": ["plan"], "size_column": "size"},
        "pql": {"conditions": [{"feature": "activation_rate_all", "op": ">=", "value": 0.5}]},
    }
    raw.update(overrides)
    return parse_config(raw)


def make_accounts(n: int = 2, *, trial_days: int = 14) -> pd.DataFrame:
    ids = [f"a{i}" for i in range(n)]
    return pd.DataFrame(
        {
            "account_id": ids,
            "trial_start": [START] * n,
            "trial_end": [START + pd.Timedelta(days=trial_days)] * n,
            "converted_at": pd.Series([pd.NaT] * n, dtype="datetime64[ns]"),
            "churned_at": pd.Series([pd.NaT] * n, dtype="datetime64[ns]"),
            "deal_value": [1200.0] * n,
            "mrr": [np.nan] * n,
            "size": [10 * (i + 1) for i in range(n)],
            "plan": ["team" if i % 2 == 0 else "starter" for i in range(n)],
        }
    )


def make_events(rows: list[tuple[str, str | None, str, str]]) -> pd.DataFrame:
    """Events from ``(account_id, user_id, event, timestamp)`` tuples."""
    frame = pd.DataFrame(rows, columns=["account_id", "user_id", "event", "timestamp"])
    frame["timestamp"] = pd.to_datetime(frame["timestamp"]).astype("datetime64[ns]")
    return frame


def make_tables(
    events: list[tuple[str, str | None, str, str]],
    *,
    n_accounts: int = 2,
    communications: pd.DataFrame | None = None,
) -> Tables:
    return Tables(
        events=make_events(events),
        accounts=make_accounts(n_accounts),
        communications=communications,
    )


def make_champions(config: CompanyConfig, tracking_uri: str) -> None:
    """Point ``champion`` at each kind's latest challenger and mark it judged ``promoted``.

    For tests of the service, which need both models served; whether a model
    deserves promotion is the gate's job and is tested in ``tests/training``
    (``test_gate_companies.py``). The service serves only a ``promoted`` verdict
    (fail closed), so this sets the alias and the ``verdict`` tag directly, as an
    operator could in the MLflow UI (``verdict_text`` says the test did it).
    """
    from mlflow import MlflowClient

    from models.kinds import KINDS
    from training.registry import CHALLENGER, CHAMPION, version_by_alias

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    for kind in KINDS.values():
        name = kind.registered_name(config.registry)
        version = version_by_alias(client, name, CHALLENGER)
        if version is not None:
            client.set_registered_model_alias(name, CHAMPION, str(version.version))
            client.set_model_version_tag(name, str(version.version), "verdict", "promoted")
            client.set_model_version_tag(
                name, str(version.version), "verdict_text", "promoted (set by the test)"
            )


def fast_demo_config(num_boost_round: int) -> CompanyConfig:
    """The demo config with one LightGBM thread and a short, fast fit (backtest tests)."""
    from features.config import load_demo_config

    cfg = load_demo_config()
    params = {**cfg.model.lightgbm, "num_threads": 1, "learning_rate": 0.1}
    model = cfg.model.model_copy(
        update={"lightgbm": params, "num_boost_round": num_boost_round, "early_stopping_rounds": 20}
    )
    return cfg.model_copy(update={"model": model})
