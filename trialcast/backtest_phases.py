"""Where the backtest's open-trial probabilities miss: by trial phase and trial length.

Every cohort's open trials are grouped by trial length and by phase at the
origin (``models.phases``, the groups the model calibrates per): the share of the trial elapsed (``0-25%`` ... ``75-100%``) or ``past
end`` (trial over, window still open). Per group the backtest sums the shipping
probabilities (expected conversions), the oracle's true open probabilities
(with ``--truth``) and the conversions that happened. A calibrated model has
expected / true-expected near 1 in every group: the groups are defined by what
the model sees at the origin, so no group may be favoured by luck of the split.

The rows come from the shipping path's own scores (``predict_open_trials``);
this module only groups them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.phases import PAST_END, phase_names

#: Groups with fewer trials than this are printed but not judged (the issue's bar).
MIN_JUDGED_TRIALS = 150


def phase_rows(
    open_accounts: pd.DataFrame,
    origin: pd.Timestamp,
    p_convert: np.ndarray,
    *,
    won: np.ndarray,
    oracle_p: np.ndarray | None = None,
) -> pd.DataFrame:
    """One row per open trial: ``length``, ``phase``, ``elapsed`` (days since trial
    start), ``p``, ``oracle``, ``won``.

    Args:
        open_accounts: the open trials' account rows (``trial_start``, ``trial_end``),
            in the order of ``p_convert``.
        origin: the forecast moment.
        p_convert: the shipping probabilities.
        won: 1 where the trial converted after the origin, within its window.
        oracle_p: the truth's open probabilities (NaN without an oracle).
    """
    start = pd.to_datetime(open_accounts["trial_start"])
    end = pd.to_datetime(open_accounts["trial_end"])
    day = 86_400.0
    elapsed = (pd.Timestamp(origin) - start).dt.total_seconds().to_numpy() / day
    length = (end - start).dt.total_seconds().to_numpy() / day
    return pd.DataFrame(
        {
            "length": np.round(length).astype(int),
            "phase": phase_names(elapsed, length),
            "elapsed": elapsed,
            "p": np.asarray(p_convert, dtype=float),
            "oracle": (
                np.full(len(start), np.nan) if oracle_p is None else np.asarray(oracle_p, float)
            ),
            "won": np.asarray(won, dtype=float),
        }
    )


def _aggregate(rows: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    table = rows.groupby(keys, sort=True).agg(
        trials=("p", "size"), expected=("p", "sum"), oracle=("oracle", "sum"), actual=("won", "sum")
    )
    if rows["oracle"].isna().all():  # no oracle: no true-expected column
        table["oracle"] = np.nan
    table["vs_oracle_pct"] = 100.0 * (table["expected"] / table["oracle"] - 1.0)
    table["vs_actual_pct"] = 100.0 * (table["expected"] / table["actual"] - 1.0)
    return table


def phase_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Expected (shipping), true-expected (oracle) and actual conversions per group.

    Rows: every (trial length, phase), then ``running`` and ``past end`` over all
    lengths, then ``all``. ``judged`` marks groups of ``MIN_JUDGED_TRIALS``+ trials.
    """
    if rows.empty:
        return pd.DataFrame()
    cells = _aggregate(rows, ["length", "phase"]).reset_index()
    cells["length"] = cells["length"].astype(str) + "d"
    state = np.where(rows["phase"] == PAST_END, PAST_END, "running")
    totals = _aggregate(rows.assign(state=state), ["state"]).reset_index()
    totals = totals.rename(columns={"state": "phase"}).assign(length="all")
    everything = _aggregate(rows.assign(all="all"), ["all"]).reset_index(drop=True)
    everything = everything.assign(length="all", phase="all")
    table = pd.concat([cells, totals, everything], ignore_index=True)
    table["judged"] = table["trials"] >= MIN_JUDGED_TRIALS
    cols = ["length", "phase", "trials", "expected", "oracle", "actual"]
    return table[[*cols, "vs_oracle_pct", "vs_actual_pct", "judged"]]


def phase_verdict(table: pd.DataFrame, *, cell_pct: float = 5.0, total_pct: float = 3.0) -> str:
    """One line: do judged cells sit within ``cell_pct`` of the oracle, and the running /
    past-end totals within ``total_pct``? Empty without an oracle."""
    if table.empty or table["oracle"].isna().all():
        return ""
    cells = table[(table["length"] != "all") & table["judged"]]
    bad = cells[cells["vs_oracle_pct"].abs() > cell_pct]
    totals = table[(table["length"] == "all") & table["phase"].isin(["running", PAST_END])]
    bad_totals = totals[totals["vs_oracle_pct"].abs() > total_pct]
    parts = [
        f"{len(cells) - len(bad)}/{len(cells)} cells of {MIN_JUDGED_TRIALS}+ trials within "
        f"+-{cell_pct:g}% of the oracle"
    ]
    parts += [
        f"{r.phase} {r.vs_oracle_pct:+.1f}% (target +-{total_pct:g}%)" for r in totals.itertuples()
    ]
    worst = bad.reindex(bad["vs_oracle_pct"].abs().sort_values(ascending=False).index).head(3)
    if len(worst):
        parts.append(
            "worst: "
            + ", ".join(f"{r.length} {r.phase} {r.vs_oracle_pct:+.1f}%" for r in worst.itertuples())
        )
    return ("all met: " if bad.empty and bad_totals.empty else "not met: ") + "; ".join(parts)
