"""Refuse to train on too little data, drop probable leaks, and check the base rate.

These guards turn silent failure modes into plain messages:

- too few labelled rows or positives: the model would be noise;
- a single feature that separates the classes almost perfectly on its own is
  nearly always a leak (it encodes the outcome, e.g. a field filled in after
  conversion), so it is excluded unless the user forces it;
- a model whose held-out log loss is no better than predicting the training base
  rate for everyone adds nothing and must never be promoted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from models.kinds import model_kind
from training.metrics import log_loss


class NotEnoughDataError(ValueError):
    """Too few labelled rows, positives or classes to train a model."""


def check_enough_data(
    frame: pd.DataFrame, kind: str, *, min_positives: int, part: str = "training set"
) -> None:
    """Raise ``NotEnoughDataError`` unless ``frame`` has two classes and enough positives.

    Args:
        frame: labelled rows (``label``, ``account_id``).
        kind: ``"conversion"`` or ``"churn"`` (for the message).
        min_positives: ``[model].min_positives`` from the config.
        part: which part is checked (``"training set"``, ``"validation part"``...).
    """
    n = len(frame)
    positives = int(frame["label"].sum()) if n else 0
    accounts = frame["account_id"].nunique() if n else 0
    declared = model_kind(kind)
    event, advice = declared.outcome, declared.more_data
    if n == 0 or positives == 0 or positives == n:
        raise NotEnoughDataError(
            f"{kind} model: the {part} has {n:,} labelled rows from {accounts:,} accounts "
            f"and {positives:,} of them {event}: both outcomes are needed to learn anything. "
            + advice
        )
    if positives < min_positives:
        raise NotEnoughDataError(
            f"{kind} model: the {part} has {n:,} labelled rows from {accounts:,} accounts "
            f"but only {positives:,} {event} (positives); at least {min_positives:,} are "
            f"needed. " + advice
        )


def check_split_classes(part: pd.DataFrame, kind: str, name: str) -> None:
    """Raise ``NotEnoughDataError`` if a split part lacks one of the two classes."""
    check_enough_data(part, kind, min_positives=1, part=f"{name} part")


def _auc_rank(y: np.ndarray, score: np.ndarray) -> float:
    pos = y == 1
    n1 = int(pos.sum())
    n0 = len(y) - n1
    if n1 == 0 or n0 == 0:
        return 0.5
    ranks = rankdata(score)
    return float((ranks[pos].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def single_feature_auc(values: pd.Series, y: np.ndarray) -> float:
    """How well one feature separates the classes alone: ``max(auc, 1 - auc)``.

    Missing values are treated as a value of their own: numeric features are
    scored with missing ranked lowest and highest and the better is kept;
    categorical features are scored by each level's positive rate (missing is a
    level).
    """
    yy = np.asarray(y, dtype=np.int64)
    if isinstance(values.dtype, pd.CategoricalDtype) or not pd.api.types.is_numeric_dtype(
        values.dtype
    ):
        keys = values.astype(object).where(values.notna(), "__missing__").astype(str)
        rate = pd.Series(yy, index=values.index).groupby(keys.to_numpy()).transform("mean")
        auc = _auc_rank(yy, rate.to_numpy(dtype=np.float64))
        return max(auc, 1 - auc)
    x = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64)
    missing = np.isnan(x)
    best = 0.5
    fills = (-np.inf, np.inf) if missing.any() else (0.0,)
    for fill in fills:
        auc = _auc_rank(yy, np.where(missing, fill, x))
        best = max(best, auc, 1 - auc)
    return float(best)


@dataclass(frozen=True)
class LeakageReport:
    """Single-feature AUCs above the threshold.

    Attributes:
        flagged: feature -> its single-feature AUC, for every feature over the line.
        excluded: the flagged features that were dropped (not forced).
        kept: the features the model uses.
    """

    flagged: dict[str, float]
    excluded: list[str]
    kept: list[str]

    def message(self) -> str:
        """One line per flagged feature, saying what happened to it."""
        lines = []
        for name, auc in sorted(self.flagged.items(), key=lambda kv: -kv[1]):
            action = "EXCLUDED" if name in self.excluded else "kept (forced)"
            lines.append(
                f"feature {name!r} alone separates the classes with ROC AUC {auc:.3f}: "
                f"probable leak, {action}"
            )
        if self.excluded:
            lines.append(
                "If a flagged feature is legitimately known before the outcome, keep it "
                "with force_features (CLI: --force-feature NAME)."
            )
        return "\n".join(lines)


def check_leakage(
    train: pd.DataFrame,
    features: list[str],
    *,
    threshold: float,
    force_features: tuple[str, ...] | list[str] = (),
) -> LeakageReport:
    """Flag features whose single-feature ROC AUC on ``train`` exceeds ``threshold``.

    Flagged features are excluded unless listed in ``force_features``.
    """
    y = train["label"].to_numpy()
    flagged = {}
    for name in features:
        auc = single_feature_auc(train[name], y)
        if auc > threshold:
            flagged[name] = auc
    forced = set(force_features)
    excluded = [f for f in flagged if f not in forced]
    kept = [f for f in features if f not in excluded]
    return LeakageReport(flagged=flagged, excluded=excluded, kept=kept)


@dataclass(frozen=True)
class BaseRateCheck:
    """Held-out log loss of the model vs predicting the training base rate for everyone."""

    model_log_loss: float
    base_log_loss: float
    base_rate: float

    @property
    def beats(self) -> bool:
        """True when the model's held-out log loss is strictly lower."""
        return bool(self.model_log_loss < self.base_log_loss)

    def message(self, kind: str) -> str:
        """A plain sentence about the outcome."""
        if self.beats:
            return (
                f"{kind} model beats the base rate on the test part: log loss "
                f"{self.model_log_loss:.4f} vs {self.base_log_loss:.4f} for always "
                f"predicting {self.base_rate:.1%}."
            )
        return (
            f"{kind} model does NOT beat the base rate: its test log loss "
            f"{self.model_log_loss:.4f} is no better than {self.base_log_loss:.4f} from "
            f"predicting {self.base_rate:.1%} for every account. The gate's verdict "
            "decides promotion (it needs lift over the base rate); check the features "
            "and the amount of data."
        )


def check_base_rate(
    y_test: np.ndarray | pd.Series, p_test: np.ndarray | pd.Series, train_rate: float
) -> BaseRateCheck:
    """Compare the model's test log loss with the constant training base rate."""
    yy = np.asarray(y_test, dtype=np.float64)
    return BaseRateCheck(
        model_log_loss=log_loss(yy, p_test),
        base_log_loss=log_loss(yy, np.full(len(yy), train_rate)),
        base_rate=float(train_rate),
    )
