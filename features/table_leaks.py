"""Leak checks for feature-table columns: label-like names and outcome-driven missingness.

A warehouse feature table is built by people who know the outcome: a column
filled only for accounts that converted (``first_invoice_amount``), or one that
*is* the outcome (``days_to_convert``), tells the model the answer. Such a
column can look harmless to a value-based check when it is mostly empty, so
the table gets two more checks on the labelled training rows:

- **missingness**: the share of rows where the column is filled differs
  between positives and negatives by at least ``fill_gap`` (filled for 100% of
  converters and 0% of the others);
- **label-like name**: the column's name says conversion, payment or churn
  (``converted``, ``paid``, ``churn``, ``days_to_convert``...) and the column
  separates the classes better than ``name_auc`` alone.

``check_table_leaks`` returns what it found; the training job excludes these
columns and names them. It is deliberately independent of
``training.guards.check_leakage`` (single-feature AUC) so that the two can later
be unified into one guard list.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

#: Names that speak of the outcome (matched on the lower-case column name).
LABEL_LIKE = re.compile(
    r"(convert|conversion|paid|paying|purchas|invoice|subscri|churn|cancel|won\b|closed|"
    r"outcome|label|revenue|mrr|arr\b|deal)"
)


@dataclass(frozen=True)
class ColumnLeak:
    """One feature-table column judged a probable leak.

    Attributes:
        column: the model column (``table_days_to_convert``).
        check: ``missingness`` or ``label_like_name``.
        detail: what was measured, in words.
    """

    column: str
    check: str
    detail: str

    def message(self) -> str:
        """One line a person can act on."""
        return f"feature {self.column!r}: {self.detail}: probable leak, EXCLUDED"


def _auc(y: np.ndarray, x: np.ndarray) -> float:
    """max(AUC, 1 - AUC) of ``x`` for ``y``; missing values ranked lowest."""
    from scipy.stats import rankdata

    x = np.where(np.isnan(x), -np.inf, x)
    pos = y == 1
    n1, n0 = int(pos.sum()), int((~pos).sum())
    if n1 == 0 or n0 == 0:
        return 0.5
    ranks = rankdata(x)
    auc = float((ranks[pos].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))
    return max(auc, 1 - auc)


#: A text column with at most this many levels is scored by each level's positive rate.
MAX_TEXT_LEVELS = 20


def _as_scores(values: pd.Series, y: np.ndarray) -> np.ndarray:
    """Numbers as they are; a text column (``outcome`` = won / lost) as each level's
    share of positives, so "the name reads like the outcome" is judged for both."""
    if pd.api.types.is_bool_dtype(values.dtype) or pd.api.types.is_numeric_dtype(values.dtype):
        return values.to_numpy(dtype=np.float64, na_value=np.nan)
    codes, levels = pd.factorize(values.astype("str"), use_na_sentinel=True)
    if len(levels) > MAX_TEXT_LEVELS:
        return np.full(len(values), np.nan)
    seen = codes >= 0
    rate = np.bincount(codes[seen], weights=y[seen], minlength=len(levels)) / np.maximum(
        np.bincount(codes[seen], minlength=len(levels)), 1
    )
    return np.where(seen, rate[np.maximum(codes, 0)], np.nan)


def table_leaks_in_training_set(builder: object) -> tuple[list[ColumnLeak], str]:
    """The feature-table columns ``train`` would leave out, judged on the whole labelled
    trial training set (``check-config --data``); and a note when nothing could be judged."""
    from features.build import FeatureBuilder
    from features.feature_table import PREFIX
    from features.snapshots import build_trial_training_set

    assert isinstance(builder, FeatureBuilder)
    if builder.tables.features is None:
        return [], ""
    try:
        frame = build_trial_training_set(builder)
    except ValueError as exc:
        return [], f"feature-table columns not checked for leaks: {exc}"
    names = {k: str(v.get("source", k)) for k, v in builder.spec.table_columns.items()}
    columns = [c for c in frame.columns if c.startswith(PREFIX)]
    return check_table_leaks(frame, columns, names=names), ""


def check_table_leaks(
    frame: pd.DataFrame,
    columns: list[str],
    *,
    label: str = "label",
    fill_gap: float = 0.9,
    name_auc: float = 0.75,
    names: dict[str, str] | None = None,
) -> list[ColumnLeak]:
    """Probable leaks among ``columns`` of the labelled rows ``frame``.

    Args:
        frame: training rows with the ``label`` column (1 = converted / churned).
        columns: feature-table model columns to check.
        label: the label column.
        fill_gap: flag when the filled share of positives and negatives differs
            by at least this much.
        name_auc: a label-like name is flagged when the column alone reaches
            this ROC AUC.
        names: model column -> the table's own column name (checked for label-like
            words; the model column itself otherwise).

    Returns:
        One ``ColumnLeak`` per flagged column (a column is reported once).
    """
    y = frame[label].to_numpy()
    pos = y == 1
    if pos.all() or not pos.any():
        return []
    found: list[ColumnLeak] = []
    for col in columns:
        values = frame[col]
        filled = values.notna().to_numpy()
        fill_pos, fill_neg = float(filled[pos].mean()), float(filled[~pos].mean())
        if abs(fill_pos - fill_neg) >= fill_gap:
            found.append(
                ColumnLeak(
                    col,
                    "missingness",
                    f"filled for {fill_pos:.0%} of positive rows and {fill_neg:.0%} of the "
                    "others (its presence gives the outcome away)",
                )
            )
            continue
        name = (names or {}).get(col, col).lower()
        if LABEL_LIKE.search(name):
            auc = _auc(y, _as_scores(values, y))
            if auc >= name_auc:
                found.append(
                    ColumnLeak(
                        col,
                        "label_like_name",
                        f"its name reads like the outcome and it alone separates the classes "
                        f"with ROC AUC {auc:.3f}",
                    )
                )
    return found
