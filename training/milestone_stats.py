"""Rate ratios for milestone candidates: crude and adjusted for overall activity.

A candidate moment ("reached X by day N") looks good on raw lift whenever it
travels with being busy: busy trials convert more, and busy trials reach every
frequent event. To see what a moment adds *given* activity, trials are split into
strata of similar activity (quantile bins of every other event they did by the
same day) and the conversion rate ratio is pooled over the strata with the
Mantel-Haenszel estimator; its 95% interval uses the Greenland-Robins variance,
which stays valid with many thin strata. Both are written out here, vectorised
over all candidates at once (one matrix product per stratum), because the
library versions (statsmodels ``StratifiedTable``) pool odds ratios, not the
rate ratios sales read ("converts 3x as often"), and loop per table.

Also here: ``prognostic_score`` (the activity the adjusted lift holds fixed),
``shap_importance`` (mean |SHAP| of a quick LightGBM on the count
features) and ``candidate_status`` (which candidates are ranked at all).

References: Greenland S, Robins JM (1985), "Estimation of a common effect
parameter from sparse follow-up data", Biometrics 41:55-68.
"""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
from scipy.stats import norm

from features.leaks import REACH_CONVERT_SHARE


def katz_interval(
    x1: np.ndarray, n1: np.ndarray, x0: np.ndarray, n0: np.ndarray, confidence: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Crude rate ratio (x1/n1)/(x0/n0) and its log-normal (Katz) interval.

    0.5 is added to every cell of a table with an empty cell, so the interval
    stays finite; the point estimate is left as is (it may be 0 or inf).
    """
    z = float(norm.ppf(0.5 + confidence / 2))
    zero = (x1 == 0) | (x0 == 0) | (x1 == n1) | (x0 == n0)
    a = np.where(zero, x1 + 0.5, x1).astype(np.float64)
    b = np.where(zero, x0 + 0.5, x0).astype(np.float64)
    m1 = np.where(zero, n1 + 1.0, n1).astype(np.float64)
    m0 = np.where(zero, n0 + 1.0, n0).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_rr = np.log(a / m1) - np.log(b / m0)
        se = np.sqrt(1 / a - 1 / m1 + 1 / b - 1 / m0)
        lift = (x1 / n1) / (x0 / n0)
    return lift, np.exp(log_rr - z * se), np.exp(log_rr + z * se)


def activity_strata(activity: np.ndarray, n_strata: int) -> np.ndarray:
    """Quantile bin (0 .. n_strata-1) of each value, per column of ``activity``.

    Ties share a bin (many trials with zero other events form one stratum), so a
    column may use fewer than ``n_strata`` bins.
    """
    probs = np.linspace(0, 1, n_strata + 1)[1:-1]
    edges = np.quantile(activity, probs, axis=0)  # (n_strata - 1, columns)
    out = np.empty(activity.shape, dtype=np.int16)
    for j in range(activity.shape[1]):
        out[:, j] = np.searchsorted(np.unique(edges[:, j]), activity[:, j], side="right")
    return out


def mantel_haenszel_ratio(
    reached: np.ndarray,
    y: np.ndarray,
    strata: np.ndarray,
    n_strata: int,
    *,
    confidence: float = 0.95,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Pooled conversion rate ratio (reached vs not) within strata, per candidate column.

    Args:
        reached: (trials, candidates) bool, the trial reached the candidate.
        y: (trials,) 0/1 converted.
        strata: (trials, candidates) stratum of each trial for each candidate
            (integers below ``n_strata``).
        n_strata: number of strata.
        confidence: interval level.

    Returns:
        ``(ratio, low, high, informative)``: the Mantel-Haenszel rate ratio, its
        Greenland-Robins interval, and the share of trials in strata that hold
        both trials that reached the candidate and trials that did not (the
        trials the comparison actually uses). A candidate that only the busiest
        stratum reaches has little information and a wide interval. Ratios with
        no converter on one side are 0 or inf with an infinite interval.
    """
    z = float(norm.ppf(0.5 + confidence / 2))
    yf = y.astype(np.float64)
    r = np.zeros(reached.shape[1])
    s = np.zeros(reached.shape[1])
    v = np.zeros(reached.shape[1])
    informative = np.zeros(reached.shape[1])
    for k in range(n_strata):
        in_k = strata == k
        big_n = in_k.sum(axis=0).astype(np.float64)
        hit = in_k & reached
        n1 = hit.sum(axis=0).astype(np.float64)
        n0 = big_n - n1
        a = yf @ hit
        m1 = yf @ in_k
        c = m1 - a
        with np.errstate(divide="ignore", invalid="ignore"):
            r += np.where(big_n > 0, a * n0 / big_n, 0.0)
            s += np.where(big_n > 0, c * n1 / big_n, 0.0)
            v += np.where(big_n > 0, m1 * n1 * n0 / big_n**2 - a * c / big_n, 0.0)
        informative += np.where((n1 > 0) & (n0 > 0), big_n, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = r / s
        se = np.sqrt(v / (r * s))
        low = np.where((r > 0) & (s > 0), np.exp(np.log(ratio) - z * se), 0.0)
        high = np.where((r > 0) & (s > 0), np.exp(np.log(ratio) + z * se), np.inf)
    return ratio, low, high, informative / len(y)


def shap_importance(
    counts: np.ndarray, y: np.ndarray, *, seed: int, sample: int = 2_000
) -> np.ndarray:
    """Mean |SHAP| per column of ``counts`` from a quick LightGBM (log-odds units)."""
    if len(np.unique(y)) < 2 or counts.shape[1] == 0:
        return np.zeros(counts.shape[1])
    params = {
        "objective": "binary",
        "learning_rate": 0.1,
        "num_leaves": 15,
        "min_data_in_leaf": 20,
        "feature_fraction": 0.8,
        "bagging_fraction": 0.8,
        "bagging_freq": 1,
        "lambda_l2": 1.0,
        "verbose": -1,
        "seed": seed,
        "num_threads": 1,
    }
    booster = lgb.train(params, lgb.Dataset(counts, label=y), num_boost_round=100)
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(y), size=min(sample, len(y)), replace=False)
    contrib = np.asarray(booster.predict(counts[rows], pred_contrib=True, num_threads=1))
    return np.abs(contrib[:, :-1]).mean(axis=0)


def candidate_status(
    table: pd.DataFrame,
    *,
    negatives: float,
    min_support: int,
    min_share: float,
    max_share: float,
    min_informative: float,
) -> np.ndarray:
    """Each candidate's status: ``near-absent``, ``near-universal``, ``outcome-like``,
    ``activity-measure``, ``activity-bound`` or ``ranked`` (see ``training.milestones``)."""
    x1 = table["rate_reached"].fillna(0.0) * table["reached"]
    share_of_losers = (table["reached"] - x1) / max(negatives, 1.0)
    universal = (table["reached_share"] > max_share) | (table["not_reached"] < min_support)
    absent = (table["reached_share"] < min_share) | (table["reached"] < min_support)
    # the leak scan's share (features.leaks): nearly everyone who reaches it converts
    outcome = (table["rate_reached"] >= REACH_CONVERT_SHARE) & (share_of_losers <= 0.005)
    bound = table["informative_share"] < min_informative
    # An event (almost) every trial does is a measure of activity itself: its higher
    # counts ("Login 10+ times") rank trials by how busy they are, not by a moment.
    everywhere = table.groupby("event")["reached_share"].transform("max") > max_share
    return np.select(
        [absent, universal, outcome, everywhere, bound],
        ["near-absent", "near-universal", "outcome-like", "activity-measure", "activity-bound"],
        default="ranked",
    )


def prognostic_score(
    row: np.ndarray,
    days: np.ndarray,
    observed_days: np.ndarray,
    y: np.ndarray,
    *,
    seed: int,
    parts: int = 4,
    folds: int = 5,
) -> np.ndarray:
    """Each trial's out-of-fold log-odds of converting from its activity profile alone.

    The profile ignores event types: events per day and the share of active days in
    each of ``parts`` equal slices of the observed trial (so fading and growing
    trials differ). Trials with the same score are "equally active" in the sense
    that matters for converting, which is what the adjusted lift must hold fixed.
    Out-of-fold, so a trial's own outcome never sets its stratum.

    Args:
        row: trial (0 .. n-1) of each event.
        days: days from trial start of each event.
        observed_days: days observed per trial (to trial end or conversion).
        y: 0/1 converted per trial.
        seed: LightGBM and fold seed.
        parts: slices of the observed trial.
        folds: cross-fitting folds.
    """
    n = len(observed_days)
    slice_days = observed_days / parts
    part = np.minimum((days / slice_days[row]).astype(np.int64), parts - 1)
    columns = []
    for q in range(parts):
        in_q = part == q
        events = np.bincount(row[in_q], minlength=n)
        day_pairs = np.unique(row[in_q] * 100_000 + np.floor(days[in_q]).astype(np.int64))
        active = np.bincount(day_pairs // 100_000, minlength=n)
        columns += [np.log1p(events / slice_days), active / np.maximum(slice_days, 1.0)]
    x = np.column_stack(columns)
    if len(np.unique(y)) < 2:
        return np.zeros(n)
    params = {
        "objective": "binary",
        "learning_rate": 0.05,
        "num_leaves": 7,
        "min_data_in_leaf": 50,
        "lambda_l2": 5.0,
        "verbose": -1,
        "seed": seed,
        "num_threads": 1,
    }
    score = np.zeros(n)
    fold = np.random.default_rng(seed).integers(0, folds, n)
    for f in range(folds):
        fit = fold != f
        if len(np.unique(y[fit])) < 2:
            continue
        booster = lgb.train(params, lgb.Dataset(x[fit], label=y[fit]), num_boost_round=200)
        score[~fit] = booster.predict(x[~fit], raw_score=True)
    return score
