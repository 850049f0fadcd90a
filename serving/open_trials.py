"""When a scoring moment finds no open trial: a plain answer instead of an empty run.

``trialcast score`` and ``trialcast forecast`` work on the trials open at ``as_of``
(started, not converted, window still open). A moment before the first trial or
after the last window closed has none; the answer names the moment and the span
of moments that do have open trials, so the user can pick one.
"""

from __future__ import annotations

import pandas as pd

#: Exit code of ``score`` / ``forecast`` when no trial is open at the moment asked
#: (nothing to score is not bad input (2) and not a crash (1)).
NO_OPEN_TRIAL_EXIT = 3


class NoOpenTrialError(ValueError):
    """No trial is open at the scoring moment; the message says when some are."""


def no_open_trial_message(
    accounts: pd.DataFrame, as_of: pd.Timestamp, conversion_window_days: int
) -> str:
    """``no open trial at <as_of>`` plus when trials are open in this data.

    Args:
        accounts: the validated accounts table (``trial_start``, ``trial_end``).
        as_of: the scoring moment that found none.
        conversion_window_days: the config's window after trial end.
    """
    head = f"no open trial at {pd.Timestamp(as_of)}: nothing to score"
    if accounts.empty:
        return f"{head}; the accounts table is empty"
    first = pd.Timestamp(accounts["trial_start"].min())
    last = pd.Timestamp(accounts["trial_end"].max()) + pd.Timedelta(days=conversion_window_days)
    return (
        f"{head}. In this data trials are open between {first} (the first trial start) and "
        f"{last} (the last trial's end plus the {conversion_window_days}-day conversion "
        "window), unless they converted earlier; pass --as-of inside that span, or export "
        "newer trials"
    )
