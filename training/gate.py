"""The promotion gate: one verdict in words, backed by intervals, for every trained model.

A model becomes champion only with evidence that it adds something on the part
of the data it never saw:

- ``probable leak``: test ROC AUC at or above ``[leakage].model_leak_auc`` or a
  log loss near 0; real conversion data is never that predictable. The top
  features by SHAP importance are named. Never promoted, not even with force.
- ``too little data (n=..., positives=...)``: the test part has fewer than
  ``[promotion].min_test_accounts`` accounts or ``min_test_positives`` positives.
- ``flat model``: the calibrated probabilities barely vary (95th minus 5th
  percentile below ``[promotion].flat_spread``): the model gives every account
  the same chance, so it ranks nothing; its AUC and reasons are noise and are
  not presented as meaningful.
- ``no lift found``: the lower bound of the bootstrap interval of the log-loss
  gain over the *test part's own* base rate is not above 0.
- ``no lift beyond timing``: the model beats the pooled base rate but not the
  timing-only model, the base rate of each snapshot (day of the trial, trial end,
  days after) learnt on the rows the model learnt from (training and validation
  parts, as its per-phase calibration): snapshots differ (late in the
  conversion window nobody converts any more), so a model can beat one pooled
  rate by learning only the calendar. Lift must hold over the timing too.
- ``promoted``: passes every check: a promotable model. It becomes champion when
  there is none; against a champion the duel on the same rows decides (its gain
  over the champion is reported; ``beats_champion`` is the registry's tag).

The interval resamples whole accounts of the test part (a trial has several
snapshot rows), so it is honest about how little a few hundred accounts say.
Base-rate drift between the training and test parts is reported beside it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import numpy as np
import pandas as pd

from features.config import CompanyConfig
from features.leak_advice import leak_advice
from training.metrics import log_loss, roc_auc

__all__ = [
    "GateResult",
    "Interval",
    "Verdict",
    "bootstrap_gain",
    "judge",
    "probability_spread",
    "snapshot_base_rates",
    "write_heldout_predictions",
]

EPS = 1e-12


class Verdict(StrEnum):
    """What the user reads about a trained model."""

    PROMOTED = "promoted"
    NO_LIFT = "no lift found"
    NO_LIFT_BEYOND_TIMING = "no lift beyond timing"
    FLAT = "flat model"
    TOO_LITTLE_DATA = "too little data"
    PROBABLE_LEAK = "probable leak"


@dataclass(frozen=True)
class Interval:
    """A point estimate with a bootstrap interval at ``level``."""

    estimate: float
    low: float
    high: float
    level: float

    def text(self, digits: int = 4) -> str:
        """``0.0123 [0.0040, 0.0210] (90%)``."""
        return (
            f"{self.estimate:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}] "
            f"({self.level:.0%})"
        )


@dataclass(frozen=True)
class GateResult:
    """The verdict and the evidence behind it.

    Attributes:
        verdict: the enum value; ``text`` is what the user reads.
        text: e.g. ``too little data (n=106, positives=9)``.
        reasons: one sentence per check that decided it.
        n_accounts, n_rows, positives: size of the test part (positives = accounts
            with a positive row; ``positive_rows`` counts rows).
        test_rate, train_rate: base rates of the two parts (drift is reported).
        auc, model_log_loss, base_log_loss: test metrics (base = test base rate).
        gain_base: log-loss gain over the test base rate, with its interval.
        gain_timing: log-loss gain over the timing-only model (each snapshot's base
            rate, learnt on the rows the model learnt from: training and validation
            parts; None without snapshots).
        spread: 95th minus 5th percentile of the model's test probabilities.
        gain_champion: log-loss gain over the champion (None without one).
        top_features: (feature, mean |SHAP|) of a probable leak, largest first.
    """

    verdict: Verdict
    text: str
    reasons: list[str]
    n_accounts: int
    n_rows: int
    positives: int
    test_rate: float
    train_rate: float
    auc: float
    model_log_loss: float
    base_log_loss: float
    gain_base: Interval
    gain_champion: Interval | None = None
    top_features: list[tuple[str, float]] = field(default_factory=list)
    gain_timing: Interval | None = None
    spread: float = float("nan")
    positive_rows: int = 0

    @property
    def flat(self) -> bool:
        """True when the model gives every account (about) the same probability."""
        return self.verdict is Verdict.FLAT

    @property
    def promotable(self) -> bool:
        """True when the verdict lets the model become champion."""
        return self.verdict is Verdict.PROMOTED

    def drift_message(self) -> str:
        """Training vs test base rate, in words."""
        ratio = self.test_rate / self.train_rate if self.train_rate > 0 else float("inf")
        note = (
            " (a large shift: check seasonality or a change in the funnel)"
            if (ratio < 0.67 or ratio > 1.5)
            else ""
        )
        return (
            f"base rate: {self.train_rate:.1%} in the training part, {self.test_rate:.1%} "
            f"in the test part{note}"
        )

    def message(self, kind: str) -> str:
        """The verdict and its evidence, a few lines."""
        lines = [f"{kind} model verdict: {self.text.upper()}"]
        lines += [f"  {r}" for r in self.reasons]
        auc = "not meaningful (flat model)" if self.flat else f"{self.auc:.3f}"
        lines.append(
            f"  test part: {self.n_accounts:,} accounts, {self.n_rows:,} rows, "
            f"{self.positives:,} positive accounts; ROC AUC {auc}, log loss "
            f"{self.model_log_loss:.4f} vs {self.base_log_loss:.4f} for its own base rate"
        )
        lines.append(f"  log-loss gain over the base rate: {self.gain_base.text()}")
        if self.gain_timing is not None:
            lines.append(f"  log-loss gain over the timing-only model: {self.gain_timing.text()}")
        if self.gain_champion is not None:
            lines.append(f"  log-loss gain over the champion: {self.gain_champion.text()}")
        lines.append(f"  {self.drift_message()}")
        return "\n".join(lines)

    def tags(self) -> dict[str, str]:
        """Registry / run tags (``decide_promotion`` reads ``verdict``)."""
        tags = {
            "verdict": self.verdict.value,
            "verdict_text": self.text,
            "gain_base_low": f"{self.gain_base.low:.6f}",
            "gain_base": f"{self.gain_base.estimate:.6f}",
            "test_auc": "flat" if self.flat else f"{self.auc:.6f}",
            "test_spread": f"{self.spread:.6f}",
            "test_base_rate": f"{self.test_rate:.6f}",
            "train_base_rate": f"{self.train_rate:.6f}",
        }
        if self.gain_timing is not None:
            tags["gain_timing_low"] = f"{self.gain_timing.low:.6f}"
        if self.gain_champion is not None:
            tags["gain_champion_low"] = f"{self.gain_champion.low:.6f}"
        if self.top_features:
            tags["leak_top_features"] = ",".join(f for f, _ in self.top_features)
        return tags


def _row_losses(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    q = np.clip(np.asarray(p, dtype=np.float64), EPS, 1 - EPS)
    return -(y * np.log(q) + (1 - y) * np.log(1 - q))


def bootstrap_gain(
    y: np.ndarray,
    p_model: np.ndarray,
    p_reference: np.ndarray,
    groups: np.ndarray,
    *,
    resamples: int,
    level: float,
    seed: int = 0,
) -> Interval:
    """Mean log-loss gain of ``p_model`` over ``p_reference`` (positive = better),
    with a percentile interval from resampling whole ``groups`` (accounts).

    The resamples are drawn per account in sorted account order, so the interval
    does not depend on the order the rows arrive in (one machine and Dask bring
    the same test rows back in different orders, and must reach the same verdict).
    """
    yy = np.asarray(y, dtype=np.float64)
    diff = _row_losses(yy, p_reference) - _row_losses(yy, p_model)
    codes, _ = pd.factorize(pd.Series(groups).astype(str), sort=True)
    k = int(codes.max()) + 1 if len(codes) else 0
    sums = np.bincount(codes, weights=diff, minlength=k)
    counts = np.bincount(codes, minlength=k).astype(np.float64)
    estimate = float(sums.sum() / max(counts.sum(), 1.0))
    if k < 2:
        return Interval(estimate, -np.inf, np.inf, level)
    rng = np.random.default_rng(seed)
    weights = rng.multinomial(k, np.full(k, 1.0 / k), size=resamples).astype(np.float64)
    gains = (weights @ sums) / np.maximum(weights @ counts, 1.0)
    alpha = (1 - level) / 2
    low, high = np.quantile(gains, [alpha, 1 - alpha])
    return Interval(estimate, float(low), float(high), level)


#: Pseudo-rows pulling a snapshot's rate towards the pooled rate (few rows, little trust).
TIMING_PRIOR_ROWS = 20.0


def snapshot_base_rates(train: pd.DataFrame, rows: pd.DataFrame) -> np.ndarray | None:
    """The timing-only model: each row's snapshot base rate, learnt on ``train`` (the
    recipe passes the labelled rows the model learnt from: training and validation parts).

    A snapshot's rate in ``train`` (shrunk towards the pooled rate by
    ``TIMING_PRIOR_ROWS`` pseudo-rows; a snapshot the training part lacks gets
    the pooled rate), for every row of ``rows``. ``None`` when the rows carry no
    ``snapshot`` column or the training part a single snapshot: then the pooled
    base rate already is the timing-only model.
    """
    if "snapshot" not in train.columns or "snapshot" not in rows.columns:
        return None
    snap = train["snapshot"].astype(str)
    if snap.nunique() < 2:
        return None
    y = train["label"].astype(float)
    pooled = float(y.mean())
    stats = y.groupby(snap.to_numpy()).agg(["sum", "count"])
    rates = (stats["sum"] + TIMING_PRIOR_ROWS * pooled) / (stats["count"] + TIMING_PRIOR_ROWS)
    out = rates.reindex(rows["snapshot"].astype(str).to_numpy()).fillna(pooled)
    return out.to_numpy(dtype=np.float64)


def probability_spread(p: np.ndarray) -> float:
    """95th minus 5th percentile of ``p`` (how much the model's answers vary)."""
    if len(p) == 0:
        return 0.0
    low, high = np.quantile(np.asarray(p, dtype=np.float64), [0.05, 0.95])
    return float(high - low)


def _positive_accounts(groups: np.ndarray, y: np.ndarray) -> int:
    if len(y) == 0:
        return 0
    return int(pd.Series(y > 0).groupby(groups).any().sum())


def judge(
    config: CompanyConfig,
    test: pd.DataFrame,
    p_model: np.ndarray,
    *,
    train_rate: float,
    p_champion: np.ndarray | None = None,
    importance: pd.Series | Callable[[], pd.Series] | None = None,
    p_timing: np.ndarray | None = None,
    known: GateResult | None = None,
) -> GateResult:
    """The verdict for a model on its test part (``label``, ``account_id`` columns).

    Args:
        config: ``[promotion]`` and ``[leakage]`` thresholds.
        test: the held-out rows.
        p_model: the model's probabilities for those rows.
        train_rate: the training part's base rate (for the drift report).
        p_champion: the champion's probabilities on the same rows, if there is one.
        importance: mean |SHAP| per feature (named when the verdict is a leak), or a
            function computing it, called only then (SHAP on a sample costs seconds).
        p_timing: the timing-only model's probabilities for those rows
            (``snapshot_base_rates``); the model must beat it too.
        known: this model's verdict on the same rows before a champion was known
            (the recipe's): its gains over the base rate and the timing-only model are
            taken from it, being the same bootstrap of the same rows, when its row
            count, log loss and the presence of a timing model match; else computed.
    """
    promo, leak = config.promotion, config.leakage
    y = test["label"].to_numpy(dtype=np.float64)
    groups = test["account_id"].astype(str).to_numpy()
    n_acc = int(pd.Series(groups).nunique())
    positives = _positive_accounts(groups, y)
    test_rate = float(y.mean()) if len(y) else float("nan")
    p = np.asarray(p_model, dtype=np.float64)
    spread = probability_spread(p)
    base = np.full(len(y), test_rate)
    auc = roc_auc(y, p)
    model_ll = log_loss(y, p)
    base_ll = log_loss(y, base)

    def gain_over(reference: np.ndarray) -> Interval:
        return bootstrap_gain(
            y, p, reference, groups, resamples=promo.bootstrap, level=promo.confidence
        )

    same_rows = (
        known is not None
        and known.n_rows == len(y)
        and known.model_log_loss == model_ll
        and (known.gain_timing is None) == (p_timing is None)
    )
    if same_rows:
        assert known is not None
        gain_base, gain_timing = known.gain_base, known.gain_timing
    else:
        gain_base = gain_over(base)
        gain_timing = gain_over(np.asarray(p_timing)) if p_timing is not None else None
    gain_champion = gain_over(np.asarray(p_champion)) if p_champion is not None else None
    top: list[tuple[str, float]] = []
    reasons: list[str] = []
    if auc >= leak.model_leak_auc or model_ll <= leak.model_leak_log_loss:
        if importance is not None:
            mean_abs = importance() if callable(importance) else importance
            top = [
                (str(k), float(v)) for k, v in mean_abs.sort_values(ascending=False).head(5).items()
            ]
        names = ", ".join(f"{f} ({v:.2f})" for f, v in top) or "see the SHAP summary"
        reasons.append(
            f"test ROC AUC {auc:.3f} / log loss {model_ll:.4f}: no real conversion data is this "
            f"predictable, so a feature most likely encodes the outcome. Top features by mean "
            f"|SHAP|: {names}. {leak_advice([f for f, _ in top[:1]])}; this model is never promoted."
        )
        verdict, text = Verdict.PROBABLE_LEAK, Verdict.PROBABLE_LEAK.value
    elif len(p) and spread < promo.flat_spread:
        mean = float(p.mean())
        reasons.append(
            f"the model gives every account {mean:.1%} (95th minus 5th percentile of its "
            f"probabilities {spread:.2g}, below [promotion].flat_spread = "
            f"{promo.flat_spread:g}): no ranking, so its ROC AUC and reasons are noise; "
            "it is never promoted"
        )
        verdict = Verdict.FLAT
        text = f"flat model: every account gets {mean:.1%}, no ranking"
    elif n_acc < promo.min_test_accounts or positives < promo.min_test_positives:
        reasons.append(
            f"the test part needs at least {promo.min_test_accounts} accounts and "
            f"{promo.min_test_positives} positive accounts to judge a model ([promotion] in "
            "the config)"
        )
        verdict = Verdict.TOO_LITTLE_DATA
        text = f"too little data (n={n_acc}, positives={positives})"
    elif gain_base.low <= 0:
        reasons.append(
            "the interval of the log-loss gain over predicting the test part's base rate "
            "reaches 0 or below: no evidence the model knows more than the base rate"
        )
        verdict, text = Verdict.NO_LIFT, Verdict.NO_LIFT.value
    elif gain_timing is not None and gain_timing.low <= 0:
        reasons.append(
            "it beats the pooled base rate, but the interval of its log-loss gain over the "
            "timing-only model (each snapshot's base rate: where in the trial or after it "
            "the row is) reaches "
            "0 or below: it learned when accounts convert, not which ones"
        )
        verdict, text = Verdict.NO_LIFT_BEYOND_TIMING, Verdict.NO_LIFT_BEYOND_TIMING.value
    else:
        reasons.append("the whole interval of the log-loss gain is above 0")
        verdict, text = Verdict.PROMOTED, Verdict.PROMOTED.value
        if gain_champion is not None and gain_champion.low <= 0:
            reasons.append(
                "the interval of its gain over the champion on the same rows reaches 0 or "
                "below: the champion stays (tag beats_champion; `promote --force` may still "
                "choose this promotable model)"
            )
    return GateResult(
        verdict=verdict,
        text=text,
        reasons=reasons,
        n_accounts=n_acc,
        n_rows=len(y),
        positives=positives,
        test_rate=test_rate,
        train_rate=float(train_rate),
        auc=auc,
        model_log_loss=model_ll,
        base_log_loss=base_ll,
        gain_base=gain_base,
        gain_champion=gain_champion,
        top_features=top,
        gain_timing=gain_timing,
        spread=spread,
        positive_rows=int(y.sum()),
    )


def write_heldout_predictions(test: pd.DataFrame, path: Path) -> Path:
    """The held-out rows a reported metric came from: ``account_id, snapshot, as_of, p, label``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(
        {
            "account_id": test["account_id"].astype(str).to_numpy(),
            "snapshot": test["snapshot"].astype(str).to_numpy() if "snapshot" in test else "",
            "as_of": pd.to_datetime(test["as_of"]).to_numpy(),
            "p": test["p_model"].to_numpy(dtype=float),
            "label": test["label"].to_numpy(dtype=int),
        }
    )
    frame.to_parquet(path, index=False)
    return path
