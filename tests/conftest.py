"""Shared fixtures: small raw contract tables that are valid as they stand."""

from __future__ import annotations

import os

import pandas as pd
import pytest

from models.settings import ENV_OUTPUT_DIR


@pytest.fixture(autouse=True)
def _output_dir_stays_per_test():
    """The CLI sets ``TRIALCAST_OUTPUT_DIR`` for the process (so a job and the service it
    starts agree); CliRunner runs commands in this process, so one test's folder must not
    become the next test's output root."""
    before = os.environ.get(ENV_OUTPUT_DIR)
    yield
    if before is None:
        os.environ.pop(ENV_OUTPUT_DIR, None)
    else:
        os.environ[ENV_OUTPUT_DIR] = before


def raw_events() -> pd.DataFrame:
    """Six valid events of accounts a1 and a2 (ISO text timestamps, one zone-aware)."""
    return pd.DataFrame(
        {
            "account_id": ["a1", "a1", "a1", "a2", "a2", "a2"],
            "user_id": ["u1", "u2", None, "u3", "u3", "u3"],
            "event": ["Project Created", "User Invited", "Report Shared", "Project Created",
                      "Project Created", "Scheduling.Shift.Approved"],
            "timestamp": ["2024-03-01T09:00:00", "2024-03-02T10:30:00", "2024-03-05T12:00:00",
                          "2024-03-03T08:00:00+02:00", "2024-03-04T08:00:00", "2024-03-06T18:45:10"],
        }
    )  # fmt: skip


def raw_accounts() -> pd.DataFrame:
    """Accounts a1 (converted) and a2 (not converted)."""
    return pd.DataFrame(
        {
            "account_id": ["a1", "a2"],
            "trial_start": ["2024-03-01T08:00:00", "2024-03-03T00:00:00"],
            "trial_end": ["2024-03-15T08:00:00", "2024-03-17T00:00:00"],
            "converted_at": ["2024-03-20T00:00:00", None],
            "deal_value": [1200.0, 800.0],
            "mrr": [100.0, None],
            "churned_at": [None, None],
            "company_size": [50, 7],
        }
    )


def raw_communications() -> pd.DataFrame:
    """Three valid touches."""
    return pd.DataFrame(
        {
            "account_id": ["a1", "a1", "a2"],
            "timestamp": ["2024-03-01T10:00:00", "2024-03-02T11:00:00", "2024-03-04T09:00:00"],
            "direction": ["outbound", "inbound", "outbound"],
            "channel": ["email", "email", "call"],
            "sentiment": [None, 0.5, -0.2],
            "text": ["Welcome!", "Thanks, question about SSO", None],
        }
    )


@pytest.fixture
def events() -> pd.DataFrame:
    return raw_events()


@pytest.fixture
def accounts() -> pd.DataFrame:
    return raw_accounts()


@pytest.fixture
def communications() -> pd.DataFrame:
    return raw_communications()


# --- training fixtures (tests/test_training_*.py) -------------------------------------------

#: The synthetic frame's feature columns, and small LightGBM settings that fit it fast.
SYNTHETIC_FEATURES = ["trial_days_elapsed", "x1", "x2", "x3", "x4", "x5", "firmo_plan"]
SMALL_PARAMS = {"learning_rate": 0.1, "num_leaves": 15, "min_child_samples": 40, "verbose": -1,
                "seed": 0, "num_threads": 2}  # fmt: skip


def synthetic_training_frame(
    n_accounts: int, *, seed: int = 0, snapshots: tuple[str, ...] = ("end",)
) -> tuple[pd.DataFrame, object]:
    """A labelled training frame drawn from a known logistic model, and the true probabilities.

    Columns follow ``build_trial_training_set``: account_id, snapshot, snapshot_day,
    trial_start, label, as_of, then features x1..x5 (x5 partly missing) and a
    categorical ``firmo_plan``. One row per (account, snapshot); the label is per account.
    """
    import numpy as np
    from scipy.special import expit

    rng = np.random.default_rng(seed)
    n = n_accounts
    x = rng.normal(size=(n, 5))
    x[rng.random(n) < 0.2, 4] = np.nan
    plan = rng.choice(["starter", "team", "business"], size=n, p=[0.5, 0.3, 0.2])
    plan_effect = pd.Series(plan).map({"starter": -0.3, "team": 0.0, "business": 0.5}).to_numpy()
    z = -1.1 + 1.0 * x[:, 0] - 0.8 * x[:, 1] + 0.6 * np.maximum(x[:, 2], 0) + plan_effect
    z += np.where(np.isnan(x[:, 4]), 0.4, 0.3 * np.nan_to_num(x[:, 4]))
    p = expit(z)
    label = (rng.random(n) < p).astype(np.int8)
    start = pd.Timestamp("2025-01-01") + pd.to_timedelta(rng.integers(0, 365 * 24, n), unit="h")
    days = {"d1": 1.0, "d3": 3.0, "d7": 7.0, "end": 14.0}
    parts = []
    for snap in snapshots:
        day = days.get(snap, 14.0)
        part = pd.DataFrame(
            {
                "account_id": [f"acc_{i:06d}" for i in range(n)],
                "snapshot": snap,
                "snapshot_day": day,
                "trial_start": start,
                "label": label,
                "as_of": start + pd.Timedelta(days=day),
                "trial_days_elapsed": day,
                **{f"x{j + 1}": x[:, j] for j in range(5)},
                "firmo_plan": pd.Categorical(plan, categories=["business", "starter", "team"]),
            }
        )
        parts.append(part)
    frame = pd.concat(parts, ignore_index=True)
    return frame, np.tile(p, len(snapshots))


@pytest.fixture(scope="session")
def demo_small():
    """A 3,000-account demo data set (tables + truth), generated once per session."""
    from features.demo.generator import generate_demo_data

    return generate_demo_data(3000, seed=7)


@pytest.fixture(scope="session")
def synthetic_frame():
    """The ``synthetic_training_frame`` factory."""
    return synthetic_training_frame


@pytest.fixture(scope="session")
def browser_paths():
    """System Chromium + ChromeDriver (installed from Debian's packages if missing)."""
    from browser import find_or_install_browser

    try:
        return find_or_install_browser()
    except RuntimeError as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="session")
def churn_trained(tmp_path_factory):
    """``shape -> churn_company.ChurnTrained``: each shape's company with a conversion and a
    churn champion, trained once per session however many modules ask for it."""
    from churn_company import train_churn_company

    trained: dict = {}

    def get(shape: str):
        if shape not in trained:
            root = tmp_path_factory.mktemp(f"monitor-churn-{shape}")
            trained[shape] = train_churn_company(root, shape)
        return trained[shape]

    return get
