"""Batch scoring: every open trial at ``as_of``, with its explanation, as one table.

``predict_open_trials`` is the one scoring path for open trials: which trials
are open at ``as_of``, their features at ``as_of`` and their calibrated chance
to convert from ``as_of`` until their window closes. ``score`` and
``forecast`` (through ``score_accounts``), the service's data (the scores file),
the Dask score job and the backtest (``trialcast.backtest``) all call it.

``score_accounts`` is pure (tables and models in, a frame out); ``write_scores``
writes it atomically as Parquet (default ``models/scores/latest.parquet``,
``TRIALCAST_SCORES_PATH`` moves it). The service reads that file for the sales
view and ``/accounts/{account_id}``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd

from features.build import FeatureBuilder
from features.config import CompanyConfig
from features.event_index import NAT_SECONDS, SECONDS_PER_DAY, timestamp_seconds
from features.feature_table import TRIAL_END_ONLY_NOTE, trial_end_only
from features.snapshots import select_open_trials
from features.tables import Tables
from models.artifact import TrialcastModel
from models.settings import MODELS_DIR, output_root
from serving.forecast.deal import estimate_deal_values
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
    "deal_value_log_sd",
    "deal_value_source",
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


def export_now(config: CompanyConfig, tables: Tables) -> pd.Timestamp:
    """ "Now" of an export: ``validation.export_time`` when configured, else the latest event."""
    configured = getattr(config.validation, "export_time", None)
    if configured is not None:
        return pd.Timestamp(configured)
    return tables.export_time()


@dataclass
class OpenTrialScores:
    """Open trials at ``as_of`` and their calibrated chance to convert.

    Attributes:
        as_of: the scoring moment.
        positions: builder positions of the open trials.
        features: their features at ``as_of`` (indexed by ``account_id``).
        p_convert: P(converts from ``as_of`` until its window closes | open now).
        margin: the booster's raw margin (before Platt scaling).
        closed: builder positions of trials started before ``as_of``, never
            converted, whose window has closed (p = 0, out of the forecast).
        past_end: mask over ``positions``: the trial ended before ``as_of``.
    """

    as_of: pd.Timestamp
    positions: np.ndarray
    features: pd.DataFrame
    p_convert: np.ndarray
    margin: np.ndarray
    closed: np.ndarray
    past_end: np.ndarray


def select_closed_trials(builder: FeatureBuilder, as_of: pd.Timestamp) -> np.ndarray:
    """Positions of trials started before ``as_of`` that did not convert before it and
    whose conversion window closed by then: they cannot convert any more."""
    idx = builder.index
    t = timestamp_seconds(as_of)
    window = builder.config.trial.conversion_window_days * SECONDS_PER_DAY
    started = idx.trial_start < t
    not_converted = (idx.converted_at == NAT_SECONDS) | (idx.converted_at >= t)
    return np.flatnonzero(started & not_converted & (idx.trial_end + window <= t))


def predict_open_trials(
    builder: FeatureBuilder,
    model: TrialcastModel,
    as_of: pd.Timestamp,
    *,
    part: tuple[int, int] | None = None,
) -> OpenTrialScores:
    """The shipping scoring path: every open trial at ``as_of``, scored at ``as_of``.

    Open = started before ``as_of``, not converted before it, window still open
    (``select_open_trials``). Features are built at ``as_of`` whatever the trial's
    state (running, or ended and deciding: the training set holds snapshots
    after trial end, ``features.snapshots``), so the calibrated probability is
    the one the model learned: converting from ``as_of`` until the window
    closes, given still open at ``as_of``. No further adjustment is applied.

    ``part = (i, n)`` scores only the ``i``-th of ``n`` interleaved shares of the
    open trials (and of the closed ones): the Dask job runs the parts on its workers.
    """
    moment = pd.Timestamp(as_of)
    seconds = timestamp_seconds(moment)
    positions = select_open_trials(builder, moment)
    closed = select_closed_trials(builder, moment)
    if part is not None:
        i, n = part
        positions = positions[i::n]
        closed = closed[i::n]
    frame = builder.build(positions, np.full(len(positions), seconds, dtype=np.int64))
    if len(frame):
        margin = model.margin(frame)
        p = model.predict_proba(frame)
    else:
        margin = p = np.zeros(0)
    return OpenTrialScores(
        as_of=moment,
        positions=positions,
        features=frame,
        p_convert=np.asarray(p, dtype=np.float64),
        margin=np.asarray(margin, dtype=np.float64),
        closed=closed,
        past_end=builder.index.trial_end[positions] <= seconds,
    )


def score_accounts(
    config: CompanyConfig,
    tables: Tables,
    models: ScoringModels,
    *,
    as_of: pd.Timestamp | str | None = None,
    top_k: int = 5,
    allow_before_trial_end: bool | None = None,
) -> pd.DataFrame:
    """Score every open trial at ``as_of`` with reasons (``score_and_close``'s scores)."""
    return score_and_close(
        config,
        tables,
        models,
        as_of=as_of,
        top_k=top_k,
        allow_before_trial_end=allow_before_trial_end,
    )[0]


def score_and_close(
    config: CompanyConfig,
    tables: Tables,
    models: ScoringModels,
    *,
    as_of: pd.Timestamp | str | None = None,
    top_k: int = 5,
    allow_before_trial_end: bool | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Score every open trial at ``as_of`` (default: the export time) with reasons.

    Open trials and their probabilities come from ``predict_open_trials`` (the one
    scoring path); deal values are estimates from what is known at ``as_of``
    (``serving.forecast.deal``), with their log-spread.

    With a trial-end model (a feature table without ``as_of``) trials still
    running at ``as_of`` are held back unless ``allow_before_trial_end`` (default:
    ``[feature_table].score_before_trial_end``); ``frame.attrs["held_back"]``
    counts them and ``frame.attrs["notes"]`` says why.

    Returns:
        The scores and the closed trials (``closed_frame``: past their window,
        p = 0, out of the forecast). Scores: one row per open trial, ranked by expected value (``p_convert x
        deal_value``, missing deal values last), with the columns of
        ``SCORE_COLUMNS``; ``positive`` / ``negative`` hold the top factors as JSON
        text, ``other`` the sum of the remaining contributions, so
        ``base_value + sum(factors) + other == logit`` exactly.
    """
    loaded = models.conversion
    allow = (
        config.feature_table.score_before_trial_end
        if allow_before_trial_end is None
        else allow_before_trial_end
    )
    builder = FeatureBuilder.from_tables(tables, config, models.spec("conversion"))
    moment = pd.Timestamp(as_of) if as_of is not None else export_now(config, tables)
    seconds = timestamp_seconds(moment)
    opened = predict_open_trials(builder, loaded.model, moment)
    keep, held_back = running_trials_kept(models, builder, opened.positions, seconds, allow)
    positions, frame, p_open = opened.positions[keep], opened.features[keep], opened.p_convert[keep]
    M = loaded.model.matrix_from_frame(frame)
    records = cast(list[dict[str, Any]], frame.reset_index(drop=True).to_dict("records"))
    # Open trials have not converted by ``as_of``: every row gets the conversion score.
    scored = score_feature_records(
        models, records, top_k=top_k, matrices={"conversion": M}, allow_before_trial_end=allow
    )
    idx = builder.index
    deals = estimate_deal_values(
        tables.accounts,
        frame.index.to_series(),
        moment,
        size_column=config.firmographics.size_column,
        default_value=config.forecast.default_deal_value,
        on_missing="empty",
    )
    deal = deals["deal_value"].to_numpy(dtype=np.float64)
    p = p_open
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
            "deal_value_log_sd": deals["deal_value_log_sd"].to_numpy(dtype=np.float64),
            "deal_value_source": deals["deal_value_source"].to_numpy(),
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
    order = np.lexsort(  # expected value first; trials without a value by p_convert
        (
            out["account_id"].to_numpy(),
            -out["p_convert"].to_numpy(dtype=np.float64),
            -np.nan_to_num(out["expected_value"], nan=-1),
        )
    )
    result = out.iloc[order].reset_index(drop=True)
    result.attrs["held_back"] = held_back
    result.attrs["notes"] = (
        [
            f"{held_back:,} running trial(s) not scored: the conversion model is a "
            f"{TRIAL_END_ONLY_NOTE} (pass --allow-before-trial-end to score them anyway)"
        ]
        if held_back
        else []
    )
    if "note" in deals.attrs:  # scored without revenue: ranked by p_convert
        result.attrs["notes"].append(
            f"{deals.attrs['note']}; those trials are scored without revenue "
            "(expected_value empty, ranked after the valued ones by p_convert)"
        )
    # Trials past their window: closed (p = 0), listed apart, out of the forecast.
    return result, closed_frame(builder, opened)


def running_trials_kept(
    models: ScoringModels, builder: FeatureBuilder, positions: np.ndarray, now: int, allow: bool
) -> tuple[np.ndarray, int]:
    """Which open trials a trial-end model may score at ``now`` (a mask), and how many
    were held back (still running; every trial is kept for an any-day model)."""
    if allow or not trial_end_only(models.spec("conversion")):
        return np.ones(len(positions), dtype=bool), 0
    ended = builder.index.trial_end[positions] <= now
    return ended, int((~ended).sum())


def closed_frame(builder: FeatureBuilder, opened: OpenTrialScores) -> pd.DataFrame:
    """The trials past their conversion window at ``as_of``: listed as closed, p = 0."""
    idx = builder.index
    pos = opened.closed
    window = builder.config.trial.conversion_window_days * SECONDS_PER_DAY
    return pd.DataFrame(
        {
            "account_id": idx.account_ids[pos].astype(str),
            "as_of": opened.as_of,
            "trial_end": pd.to_datetime(idx.trial_end[pos], unit="s"),
            "window_closed_at": pd.to_datetime(idx.trial_end[pos] + window, unit="s"),
            "lifecycle": "closed",
            "p_convert": 0.0,
        }
    )


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


def predict_paying_customers(
    builder: FeatureBuilder,
    model: TrialcastModel,
    as_of: pd.Timestamp,
    *,
    part: tuple[int, int] | None = None,
) -> pd.DataFrame:
    """The shipping churn path: every account paying at ``as_of``, scored at ``as_of``.

    Paying = converted before ``as_of`` and not churned by then. Features are built
    at ``as_of`` (as in the churn training set, never at the trial-end snapshot).
    ``part = (i, n)`` scores only the ``i``-th of ``n`` interleaved shares (the
    Dask job's workers). Returns ``account_id``, ``mrr`` and ``p_churn`` (within
    the model's churn horizon), customers with a known MRR only.
    """
    seconds = timestamp_seconds(pd.Timestamp(as_of))
    idx = builder.index
    paying = (idx.converted_at != NAT_SECONDS) & (idx.converted_at < seconds)
    paying &= (idx.churned_at == NAT_SECONDS) | (idx.churned_at > seconds)
    positions = np.flatnonzero(paying)
    if part is not None:
        positions = positions[part[0] :: part[1]]
    frame = builder.build(positions, np.full(len(positions), seconds, dtype=np.int64))
    out = pd.DataFrame(
        {
            "account_id": frame.index.astype(str),
            "mrr": frame["customer_mrr"].to_numpy(),
            "p_churn": model.predict_proba(frame) if len(frame) else np.zeros(0),
        }
    )
    return out[out["mrr"].notna()].reset_index(drop=True)


def score_customers(
    config: CompanyConfig,
    tables: Tables,
    models: ScoringModels,
    *,
    as_of: pd.Timestamp | str | None = None,
) -> pd.DataFrame | None:
    """Churn probability of every account paying at ``as_of`` (``None`` without a churn model).

    ``predict_paying_customers`` with the churn champion and its ``FeatureSpec``:
    the input of the churn-adjusted revenue forecast (segments are added from the
    config, ``serving.forecast.segments``).
    """
    if models.churn is None:
        return None
    builder = FeatureBuilder.from_tables(tables, config, models.spec("churn"))
    moment = pd.Timestamp(as_of) if as_of is not None else tables.export_time()
    return predict_paying_customers(builder, models.churn.model, moment)
