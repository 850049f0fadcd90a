"""Revenue forecasts for finance: expected values with P10 / P50 / P90, as tidy frames.

- ``forecast_new_revenue``: new revenue from open trials, ``sum p_convert x
  deal_value``, in total, by month of expected conversion (timing learned from
  history, ``serving.forecast.timing``) and by segment (persona, company-size
  band, plan). Already-converted rows (``converted_at`` set) are certain revenue.
- ``forecast_recurring_revenue``: for paying accounts, MRR expected to be retained
  and lost over a horizon, from ``p_churn``.

Ranges are quantiles of the exact distribution of the sum of independent
Bernoulli x value terms (``serving.forecast.distribution``: exact enumeration or an exact
lattice computation with a stated error bound), optionally mixed over a shared
log-odds shift that represents calibration uncertainty (``logit_sd``).

Everything here is pure: frames in, frames out.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from serving.forecast.deal import value_variance
from serving.forecast.distribution import (
    TOLERANCE,
    SumDistribution,
    compute_mixture_distribution,
)
from serving.forecast.timing import ConversionTiming, build_month_weights

QUANTILES = (0.1, 0.5, 0.9)
SEGMENTS = ("persona", "company_size_band", "plan")
#: Company-size bands (employees): upper edges and labels.
SIZE_EDGES = (0, 10, 50, 200, 1000, np.inf)
SIZE_LABELS = ("1-10", "11-50", "51-200", "201-1000", "1000+")
SUMMARY_COLUMNS = [
    "dimension",
    "segment",
    "n_accounts",
    "expected_count",
    "expected",
    "certain",
    "sd",
    "p10",
    "p50",
    "p90",
    "error_bound",
    "method",
]


def compute_size_band(size: pd.Series) -> pd.Series:
    """Company-size band of each account (``"unknown"`` where the size is missing)."""
    values = pd.to_numeric(size, errors="coerce")
    band = pd.cut(values, bins=list(SIZE_EDGES), labels=list(SIZE_LABELS), right=True)
    out = band.astype("string").fillna("unknown")
    return out.rename("company_size_band")


def summarise_distribution(
    dist: SumDistribution, *, n_accounts: int, certain: float = 0.0
) -> dict[str, object]:
    """One summary row of a sum distribution: expectation, sd, quantiles, error bound."""
    row: dict[str, object] = {
        "n_accounts": n_accounts,
        "expected": dist.mean,
        "certain": certain,
        "sd": dist.sd,
    }
    for q in QUANTILES:
        # A sum of non-negative amounts is never below zero; the lattice's rounding
        # correction can push a tiny quantile a few units under it.
        row[f"p{round(q * 100)}"] = max(dist.quantile(q), 0.0)
    row["error_bound"] = dist.error_bound(QUANTILES)
    row["method"] = dist.method
    return row


def _summary(
    p: np.ndarray,
    v: np.ndarray,
    certain: np.ndarray,
    logit_sd: float,
    tolerance: float,
    value_var: np.ndarray | None = None,
) -> dict[str, object]:
    prob = np.where(certain, 1.0, p)
    var = None if value_var is None else np.where(certain, 0.0, value_var)
    dist = compute_mixture_distribution(prob, v, logit_sd, tolerance=tolerance, value_var=var)
    n = int(np.count_nonzero(prob > 0))
    row = summarise_distribution(dist, n_accounts=n, certain=float(v[certain].sum()))
    # Expected conversions: month rows share each trial's probability, so they add up.
    row["expected_count"] = float(prob.sum())
    return row


def prepare_open_trials(
    scores: pd.DataFrame, *, as_of: pd.Timestamp, default_trial_days: float = 14.0
) -> pd.DataFrame:
    """Check a scores frame and add what the forecast needs.

    Requires ``account_id``, ``p_convert``, ``deal_value`` and
    ``trial_days_elapsed``; adds ``trial_start`` (from ``as_of`` minus elapsed days
    when missing), ``trial_length_days`` (default when missing), the size band
    (from ``company_size`` / ``firmo_company_size``) and ``converted_at`` (NaT).
    """
    missing = [
        c
        for c in ("account_id", "p_convert", "deal_value", "trial_days_elapsed")
        if c not in scores.columns
    ]
    if missing:
        raise KeyError(f"scores frame lacks column(s) {missing}")
    frame = scores.reset_index(drop=True).copy()
    frame["p_convert"] = pd.to_numeric(frame["p_convert"], errors="coerce").astype(float)
    frame["deal_value"] = pd.to_numeric(frame["deal_value"], errors="coerce").astype(float)
    if frame["p_convert"].isna().any() or not frame["p_convert"].between(0, 1).all():
        raise ValueError("p_convert must be a probability for every row")
    if frame["deal_value"].isna().any() or (frame["deal_value"] < 0).any():
        raise ValueError("deal_value is missing or negative for some rows; fill it first")
    elapsed = pd.to_timedelta(frame["trial_days_elapsed"].astype(float), unit="D")
    if "trial_start" not in frame.columns:
        frame["trial_start"] = pd.Timestamp(as_of) - elapsed
    if "trial_length_days" not in frame.columns:
        frame["trial_length_days"] = float(default_trial_days)
    frame["trial_length_days"] = frame["trial_length_days"].fillna(default_trial_days)
    if "company_size_band" not in frame.columns:
        size_col = next((c for c in ("company_size", "firmo_company_size") if c in frame), None)
        size = frame[size_col] if size_col else pd.Series(np.nan, index=frame.index)
        frame["company_size_band"] = compute_size_band(size)
    if "converted_at" not in frame.columns:
        frame["converted_at"] = pd.NaT
    frame["converted_at"] = pd.to_datetime(frame["converted_at"])
    return frame


def build_month_table(
    trials: pd.DataFrame, timing: ConversionTiming, *, as_of: pd.Timestamp
) -> pd.DataFrame:
    """Each trial's probability of converting in each calendar month.

    Returns:
        Long frame ``row``, ``month``, ``p_month`` (= ``p_convert x weight``),
        ``deal_value`` and ``certain``; already-converted rows sit in their
        conversion month with probability 1.
    """
    certain = trials["converted_at"].notna().to_numpy()
    open_pos = np.flatnonzero(~certain)
    weights = build_month_weights(
        trials["trial_start"].iloc[open_pos],
        trials["trial_length_days"].to_numpy(dtype=float)[open_pos],
        as_of,
        timing,
    )
    weights["row"] = open_pos[weights["row"].to_numpy()]
    p = trials["p_convert"].to_numpy(dtype=float)
    weights["p_month"] = p[weights["row"].to_numpy()] * weights["weight"].to_numpy()
    weights["certain"] = False
    done = pd.DataFrame(
        {
            "row": np.flatnonzero(certain),
            "month": trials.loc[certain, "converted_at"].dt.to_period("M").dt.start_time,
            "weight": 1.0,
            "p_month": 1.0,
            "certain": True,
        }
    )
    table = pd.concat([weights, done], ignore_index=True)
    table["deal_value"] = trials["deal_value"].to_numpy(dtype=float)[table["row"].to_numpy()]
    return table


def build_account_forecast(
    trials: pd.DataFrame,
    timing: ConversionTiming,
    *,
    as_of: pd.Timestamp,
    segments: tuple[str, ...] = SEGMENTS,
) -> pd.DataFrame:
    """Account-level view: probability, expected value and most likely conversion month."""
    months = build_month_table(trials, timing, as_of=as_of)
    top = months.sort_values(["row", "weight"], ascending=[True, False]).drop_duplicates("row")
    expected_month = pd.Series(pd.NaT, index=trials.index, dtype="datetime64[ns]")
    expected_month.iloc[top["row"].to_numpy()] = top["month"].to_numpy()
    certain = trials["converted_at"].notna()
    p = trials["p_convert"].where(~certain, 1.0)
    out = pd.DataFrame(
        {
            "account_id": trials["account_id"].astype(str),
            "p_convert": p,
            "deal_value": trials["deal_value"],
            "expected_value": p * trials["deal_value"],
            "expected_month": expected_month,
        }
    )
    for col in segments:
        if col in trials.columns:
            out[col] = trials[col].astype("string")
    return out


def forecast_new_revenue(
    scores: pd.DataFrame,
    timing: ConversionTiming,
    *,
    as_of: pd.Timestamp,
    segments: tuple[str, ...] = SEGMENTS,
    logit_sd: float = 0.0,
    tolerance: float = TOLERANCE,
    default_trial_days: float = 14.0,
) -> pd.DataFrame:
    """Expected new revenue from open trials with P10 / P50 / P90.

    Args:
        scores: one row per trial: ``account_id``, ``p_convert`` (chance to convert
            within the window, given still open at ``as_of``), ``deal_value``,
            ``trial_days_elapsed``; optional ``trial_start``, ``trial_length_days``,
            ``converted_at`` (certain revenue) and the segment columns.
        timing: when conversions land (``fit_conversion_timing``).
        as_of: the moment the scores describe.
        segments: segment columns to break the total down by (missing ones skipped).
        logit_sd: calibration uncertainty as the sd of a shared log-odds shift (0: none).
        tolerance: lattice accuracy (fraction of each group's sd).
        default_trial_days: trial length where ``trial_length_days`` is missing.

    Returns:
        Tidy frame (``SUMMARY_COLUMNS``): ``dimension`` is ``total``, ``month`` or a
        segment column; ``segment`` the group (``all``, ``2026-03``, a persona...).
        ``expected`` is exact; ``error_bound`` bounds the quantiles' computation error.
    """
    trials = prepare_open_trials(scores, as_of=as_of, default_trial_days=default_trial_days)
    p = trials["p_convert"].to_numpy(dtype=float)
    v = trials["deal_value"].to_numpy(dtype=float)
    certain = trials["converted_at"].notna().to_numpy()
    # Open trials' deal values are estimates: their spread widens the ranges.
    var = (
        value_variance(v, trials["deal_value_log_sd"].to_numpy(dtype=float))
        if "deal_value_log_sd" in trials.columns
        else np.zeros(len(v))
    )
    rows = [
        {
            "dimension": "total",
            "segment": "all",
            **_summary(p, v, certain, logit_sd, tolerance, var),
        }
    ]

    months = build_month_table(trials, timing, as_of=as_of)
    for month, part in months.groupby("month", sort=True):
        summary = _summary(
            part["p_month"].to_numpy(),
            part["deal_value"].to_numpy(),
            part["certain"].to_numpy(),
            logit_sd,
            tolerance,
            var[part["row"].to_numpy()],
        )
        rows.append(
            {"dimension": "month", "segment": pd.Timestamp(str(month)).strftime("%Y-%m"), **summary}
        )
    for col in segments:
        if col not in trials.columns:
            continue
        labels = trials[col].astype("string").fillna("unknown").to_numpy()
        for label in sorted(set(labels)):
            mask = labels == label
            summary = _summary(p[mask], v[mask], certain[mask], logit_sd, tolerance, var[mask])
            rows.append({"dimension": col, "segment": str(label), **summary})
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def horizon_churn_probability(
    p_churn: np.ndarray, *, horizon_days: float, model_horizon_days: float
) -> np.ndarray:
    """Churn probability over ``horizon_days`` from the model's horizon, at a constant hazard."""
    p = np.clip(np.asarray(p_churn, dtype=np.float64), 0.0, 1.0)
    return 1.0 - (1.0 - p) ** (horizon_days / model_horizon_days)


def forecast_recurring_revenue(
    customers: pd.DataFrame,
    *,
    horizon_days: float,
    model_horizon_days: float,
    segments: tuple[str, ...] = ("plan", "company_size_band"),
    logit_sd: float = 0.0,
    tolerance: float = TOLERANCE,
) -> pd.DataFrame:
    """Churn-adjusted MRR of paying accounts over a horizon, retained and lost.

    Args:
        customers: ``account_id``, ``mrr`` and ``p_churn`` (chance to churn within
            ``model_horizon_days``); optional segment columns.
        horizon_days: the forecast horizon; churn is rescaled at a constant hazard.
        model_horizon_days: the churn model's horizon (``churn_horizon_days``).

    Returns:
        Tidy frame: ``dimension``, ``segment``, ``measure`` (``retained`` /
        ``lost`` MRR at the horizon's end), ``mrr`` (current), then the summary
        columns.
    """
    for col in ("account_id", "mrr", "p_churn"):
        if col not in customers.columns:
            raise KeyError(f"customers frame lacks column {col!r}")
    frame = customers.reset_index(drop=True).copy()
    if "company_size_band" not in frame.columns:
        size_col = next((c for c in ("company_size", "firmo_company_size") if c in frame), None)
        if size_col:
            frame["company_size_band"] = compute_size_band(frame[size_col])
    mrr = pd.to_numeric(frame["mrr"], errors="coerce").fillna(0.0).to_numpy(dtype=float)
    churn = horizon_churn_probability(
        frame["p_churn"].to_numpy(dtype=float),
        horizon_days=horizon_days,
        model_horizon_days=model_horizon_days,
    )
    groups: list[tuple[str, str, np.ndarray]] = [("total", "all", np.ones(len(frame), bool))]
    for col in segments:
        if col in frame.columns:
            labels = frame[col].astype("string").fillna("unknown").to_numpy()
            groups += [(col, str(x), labels == x) for x in sorted(set(labels))]
    rows = []
    none = np.zeros(len(frame), dtype=bool)
    for dim, label, mask in groups:
        for measure, prob in (("retained", 1.0 - churn), ("lost", churn)):
            summary = _summary(prob[mask], mrr[mask], none[mask], logit_sd, tolerance)
            summary["n_accounts"] = int(mask.sum())
            rows.append(
                {
                    "dimension": dim,
                    "segment": label,
                    "measure": measure,
                    "mrr": float(mrr[mask].sum()),
                    **summary,
                }
            )
    cols = ["dimension", "segment", "measure", "mrr", *SUMMARY_COLUMNS[2:]]
    return pd.DataFrame(rows, columns=cols)
