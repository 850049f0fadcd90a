"""A yes/no conversion column as the label, for exports that carry no conversion date.

Many CRM exports say *whether* a trial converted (``is_customer = 1``), not
*when*. With ``[trial].conversion_flag`` naming that column, each flagged
account gets ``converted_at = trial_end`` before validation, so every label,
snapshot and scan downstream works unchanged. The timing this implies (stated in
``TrialConfig``): a conversion counts as happening at trial end.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.config import CompanyConfig
from features.quarantine import InputError
from features.validation import trial_end_from_length
from features.value_parsing import missing_mask, to_boolean


def apply_conversion_flag(raw: pd.DataFrame, config: CompanyConfig) -> tuple[pd.DataFrame, str]:
    """``raw`` accounts with ``converted_at`` taken from the configured flag column.

    Args:
        raw: raw accounts rows with contract column names (values as read).
        config: the company config (``[trial].conversion_flag``).

    Returns:
        The rows with ``converted_at`` = ``trial_end`` where the flag is yes (empty
        elsewhere), and a note for the validation report.

    Raises:
        InputError: the flag column is missing, or the table also has ``converted_at``.
    """
    flag = str(config.trial.conversion_flag)
    found = [str(c) for c in raw.columns]
    if flag not in found:
        raise InputError(
            f"accounts: [trial].conversion_flag = {flag!r} is not a column of the accounts "
            f"table. Columns found: {', '.join(found)}. Name the 0/1 column as it appears "
            "after the [sources.<table>.columns] mapping"
        )
    if "converted_at" in found:
        raise InputError(
            f"accounts: both a converted_at column and [trial].conversion_flag = {flag!r} "
            "are given; use one. converted_at carries the timing (remove conversion_flag), "
            "the flag none"
        )
    derived = ""
    if "trial_end" not in found:
        if "trial_start" not in found:
            return raw, ""  # the missing columns are reported by the column check
        days = config.trial.default_trial_days
        fmt = getattr(config.sources.accounts, "timestamp_format", None)
        raw = trial_end_from_length(raw, fmt, days)  # the flag's conversions land there
        derived = (
            f"; no trial_end column: trial_end = trial_start + {days} days "
            "([trial].default_trial_days)"
        )
    values, bad = to_boolean(raw[flag])
    yes = (values == 1.0).to_numpy()
    out = raw.copy(deep=False)
    out["converted_at"] = raw["trial_end"].where(yes, None)
    known = int((~missing_mask(raw[flag]) & ~bad).sum())
    note = (
        f"accounts: conversion labels from the yes/no column {flag!r} ([trial].conversion_flag): "
        f"{int(yes.sum()):,} of {known:,} flagged converted, each placed at its trial end "
        f"(a flag has no date){derived}"
    )
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        note += (
            f"; {int(bad.sum()):,} value(s) are not yes/no (e.g. row {pos}: "
            f"{raw[flag].iloc[pos]!r}) and count as not converted"
        )
    return out, note
