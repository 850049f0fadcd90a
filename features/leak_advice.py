"""What to change in the config to keep a leaking feature out, by the kind of its input.

A leak found in a model is named by its feature column; the fix depends on where
the column comes from: an event (``[leakage].exclude_events``), a column of the
per-account feature table (``[feature_table].exclude_columns``) or an accounts
column used as a firmographic (``[firmographics].known_at``). Advice that names
``exclude_events`` for a table column would send the user to a key that does
nothing for it.
"""

from __future__ import annotations

from collections.abc import Sequence

from features.feature_table import PREFIX as TABLE_PREFIX

FIRMO_PREFIX = "firmo_"


def leak_advice(features: Sequence[str]) -> str:
    """One sentence naming the config key that removes each kind of input in ``features``.

    Args:
        features: model feature columns suspected of carrying the outcome
            (``table_days_to_convert``, ``firmo_plan``, ``count_paid_all``...).
    """
    table = [f for f in features if f.startswith(TABLE_PREFIX)]
    firmo = [f for f in features if f.startswith(FIRMO_PREFIX)]
    events = [f for f in features if f not in table and f not in firmo]
    parts = []
    if table:
        cols = ", ".join(f'"{f.removeprefix(TABLE_PREFIX)}"' for f in table)
        parts.append(
            f"list the feature-table column(s) in [feature_table].exclude_columns = [{cols}] "
            "(as named in the table)"
        )
    if firmo:
        cols = ", ".join(f.removeprefix(FIRMO_PREFIX) for f in firmo)
        parts.append(
            f'declare the accounts column(s) {cols} known_at = "current" in [firmographics]'
        )
    if events or not parts:
        parts.append("exclude the event behind it ([leakage].exclude_events)")
    return "To keep the suspect out: " + "; or ".join(parts)
