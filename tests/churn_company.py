"""Generated non-demo companies with a churn champion, shared by the churn monitor tests
(``tests/trialcast/test_monitor_churn.py``) and the health page's (``tests/serving``).

Each company (one-week or three-week trials, ``company_factory.SHAPES``, renamed
vocabulary, history from 2024-10 so paying accounts have full churn horizons
before training, a 60-day churn horizon where the demo has 90: at 90 days the
gate finds no lift on ~700 test rows) trains and promotes a conversion and a
churn champion at ``TRAINED_AT``. The ``churn`` scenario makes paying accounts
churn more from ``SINCE`` (same behaviour, more churn: the churn analogue of a
price rise).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
from company_factory import SHAPES, Company, make_company, train_champions

from features.demo.generator import DemoData
from features.tables import Tables
from trialcast.monitoring.champion import Champion

TRAINED_AT = pd.Timestamp("2026-01-05")
SINCE = pd.Timestamp("2026-02-02")
HORIZON_DAYS = 60
#: Extra churn hazard per day for every account paying from SINCE on.
EXTRA_HAZARD = 1 / 240


def churn_more(demo: DemoData, seed: int = 0) -> DemoData:
    """Paying accounts churn at an extra hazard from ``SINCE`` (their usage unchanged)."""
    acc = demo.tables.accounts.copy()
    rng = np.random.default_rng(seed)
    conv = pd.to_datetime(acc["converted_at"])
    churned = pd.to_datetime(acc["churned_at"])
    begin = conv.where(conv > SINCE, SINCE)
    extra = begin + pd.to_timedelta(rng.exponential(1 / EXTRA_HAZARD, len(acc)), unit="D")
    export = demo.tables.events["timestamp"].max()
    earlier = conv.notna() & (churned.isna() | (extra < churned)) & (extra < export)
    acc["churned_at"] = churned.where(~earlier, extra)
    tables = Tables(
        events=demo.tables.events, accounts=acc, communications=demo.tables.communications
    )
    return DemoData(tables=tables, truth=demo.truth)


def churn_company(root: Path, shape: str, scenario: str) -> Company:
    """The ``shape`` company under ``scenario`` (``none`` or ``churn``) in ``root/scenario``,
    with the 60-day horizon in its config object and its config file alike."""
    co = make_company(
        root / scenario,
        n_accounts=6000,
        seed=4,
        start="2024-10-01",
        export_time="2026-05-01",
        transform=churn_more if scenario == "churn" else None,
        **SHAPES[shape],
    )
    path = co.root / "trialcast.toml"
    path.write_text(
        path.read_text().replace("churn_horizon_days = 90", f"churn_horizon_days = {HORIZON_DAYS}")
    )
    trial = co.config.trial.model_copy(update={"churn_horizon_days": HORIZON_DAYS})
    return replace(co, config=co.config.model_copy(update={"trial": trial}))


@dataclass(frozen=True)
class ChurnTrained:
    """One shape's company trained at ``TRAINED_AT``: where, and its two champions."""

    shape: str
    root: Path
    champions: dict[str, Champion]
    uri: str


def train_churn_company(root: Path, shape: str) -> ChurnTrained:
    """Conversion and churn champions of the unchanged ``shape`` company, trained at
    ``TRAINED_AT`` into ``root/mlflow.db`` (both must be promoted)."""
    kinds = ("conversion", "churn")
    uri, champions = train_champions(
        churn_company(root, shape, "none"), root, str(TRAINED_AT), kinds
    )
    assert all(c is not None for c in champions.values()), champions
    return ChurnTrained(shape, root, champions, uri)
