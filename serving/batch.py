"""Batch scoring: every open trial at ``as_of``, with its explanation, as one table.

``score_accounts`` is pure (tables and models in, a frame out); ``write_scores``
writes it atomically as Parquet (default ``models/scores/latest.parquet``,
``TRIALCAST_SCORES_PATH`` moves it). The service reads that file for the sales
view and ``/accounts/{account_id}``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd

from features.build import FeatureBuilder
from features.config import CompanyConfig
from features.event_index import NAT_SECONDS, SECONDS_PER_DAY, timestamp_seconds
from features.settings import MODELS_DIR, output_root
from features.snapshots import select_open_trials
from features.tables import Tables
from serving.scoring import ScoringModels, score_feature_records

ENV_SCORES_PATH = "TRIALCAST_SCORES_PATH"
SCORES_FILE = "scores/latest.parquet"

#: Columns of the batch-scored table, in order.
SCORE_COLUMNS = [
    "account_id",
    "as_of",
    "trial_start",
    "trial_end",
    "trial_days_left",
    "lifecycle",
    "deal_value",
    "p_convert",
    "expected_value",
    "persona",
    "playbook",
    "pql",
    "model_name",
    "model_version",
    "base_value",
    "logit",
    "other",
    "positive",
    "negative",
]


def resolve_scores_path(explicit: str | Path | None = None) -> Path:
    """Where the latest scores live: ``explicit``, ``TRIALCAST_SCORES_PATH``, else
    ``<cwd>/models/scores/latest.parquet``."""
    if explicit is not None:
        return Path(explicit)
    env = os.environ.get(ENV_SCORES_PATH)
    return Path(env) if env else output_root() / MODELS_DIR / SCORES_FILE


def score_accounts(
    config: CompanyConfig,
    tables: Tables,
    models: ScoringModels,
    *,
    as_of: pd.Timestamp | str | None = None,
    top_k: int = 5,
) -> pd.DataFrame:
    """Score every open trial at ``as_of`` (default: the export time) with reasons.

    Open trials are those started by ``as_of``, not yet converted and still inside
    their conversion window (``features.snapshots.select_open_trials``); features
    are built at ``as_of`` with the conversion model's ``FeatureSpec``, exactly
    as in training.

    Returns:
        One row per open trial, ranked by expected value (``p_convert x
        deal_value``, missing deal values last), with the columns of
        ``SCORE_COLUMNS``; ``positive`` / ``negative`` hold the top factors as JSON
        text, ``other`` the sum of the remaining contributions, so
        ``base_value + sum(factors) + other == logit`` exactly.
    """
    loaded = models.conversion
    builder = FeatureBuilder.from_tables(tables, config, models.spec("conversion"))
    moment = pd.Timestamp(as_of) if as_of is not None else tables.export_time()
    seconds = timestamp_seconds(moment)
    positions = select_open_trials(builder, moment)
    frame = builder.build(positions, np.full(len(positions), seconds, dtype=np.int64))
    M = loaded.model.matrix_from_frame(frame)
    records = cast(list[dict[str, Any]], frame.reset_index(drop=True).to_dict("records"))
    # Open trials have not converted by ``as_of``: every row gets the conversion score.
    scored = score_feature_records(models, records, top_k=top_k, matrices={"conversion": M})
    idx = builder.index
    accounts = tables.accounts.set_index(tables.accounts["account_id"].astype(str))
    deal = (
        pd.to_numeric(accounts["deal_value"], errors="coerce").reindex(frame.index).to_numpy()
        if "deal_value" in accounts.columns
        else np.full(len(frame), np.nan)
    )
    p = np.array([s["p_convert"] for s in scored], dtype=np.float64)
    explanation = [s["explanations"][0] for s in scored]
    end = idx.trial_end[positions]
    out = pd.DataFrame(
        {
            "account_id": frame.index.astype(str),
            "as_of": moment,
            "trial_start": pd.to_datetime(idx.trial_start[positions], unit="s"),
            "trial_end": pd.to_datetime(end, unit="s"),
            "trial_days_left": (end - seconds) / SECONDS_PER_DAY,
            "lifecycle": np.where(end > seconds, "trial", "deciding"),
            "deal_value": deal,
            "p_convert": p,
            "expected_value": p * deal,
            "persona": [s["persona"] for s in scored],
            "playbook": [s["playbook"] for s in scored],
            "pql": np.array([s["pql"] for s in scored], dtype=bool),
            "model_name": loaded.name,
            "model_version": loaded.version,
            "base_value": [e["base_value"] for e in explanation],
            "logit": [e["logit"] for e in explanation],
            "other": [e["other"] for e in explanation],
            "positive": [json.dumps(e["positive"]) for e in explanation],
            "negative": [json.dumps(e["negative"]) for e in explanation],
        },
        columns=SCORE_COLUMNS,
    )
    order = np.lexsort(
        (out["account_id"].to_numpy(), -np.nan_to_num(out["expected_value"], nan=-1))
    )
    return out.iloc[order].reset_index(drop=True)


def write_scores(frame: pd.DataFrame, path: str | Path | None = None) -> Path:
    """Write the scores as Parquet, atomically (a temporary file, then a rename)."""
    target = resolve_scores_path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, target)
    return target


def read_scores(path: str | Path | None = None) -> pd.DataFrame | None:
    """The latest batch scores, or ``None`` when no score job has written any."""
    target = resolve_scores_path(path)
    if not target.exists():
        return None
    return pd.read_parquet(target)


def score_customers(
    config: CompanyConfig,
    tables: Tables,
    models: ScoringModels,
    *,
    as_of: pd.Timestamp | str | None = None,
) -> pd.DataFrame | None:
    """Churn probability of every account paying at ``as_of`` (``None`` without a churn model).

    Features are built at ``as_of`` with the churn model's ``FeatureSpec``, as in
    training. Returns ``account_id``, ``mrr``, ``p_churn`` (within the model's
    ``churn_horizon_days``) and the segment columns ``plan`` / ``company_size`` when
    the accounts table has them: the input of the churn-adjusted revenue forecast.
    """
    if models.churn is None:
        return None
    builder = FeatureBuilder.from_tables(tables, config, models.spec("churn"))
    moment = pd.Timestamp(as_of) if as_of is not None else tables.export_time()
    seconds = timestamp_seconds(moment)
    idx = builder.index
    paying = (idx.converted_at != NAT_SECONDS) & (idx.converted_at < seconds)
    paying &= (idx.churned_at == NAT_SECONDS) | (idx.churned_at > seconds)
    positions = np.flatnonzero(paying)
    frame = builder.build(positions, np.full(len(positions), seconds, dtype=np.int64))
    out = pd.DataFrame(
        {
            "account_id": frame.index.astype(str),
            "mrr": frame["customer_mrr"].to_numpy(),
            "p_churn": models.churn.model.predict_proba(frame),
        }
    )
    extra = [c for c in ("plan", "company_size") if c in tables.accounts.columns]
    if extra:
        out = out.merge(
            tables.accounts[["account_id", *extra]].astype({"account_id": str}),
            on="account_id",
            how="left",
        )
    return out[out["mrr"].notna()].reset_index(drop=True)
