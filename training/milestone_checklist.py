"""From ranked milestone candidates to a checklist, reasons in words, and TOML to paste.

``propose_checklist`` keeps the candidates that add to conversion beyond overall
activity (adjusted lift interval above 1 and a worthwhile adjusted lift), at most
one per event type, and orders them setup -> activation -> aha: the aha moment is
the step with the largest adjusted lift; the others follow the typical day they
are reached, the earliest third being set-up steps. Every step carries a sentence
saying why it was chosen; every event type left out that *looks* good on raw lift
gets one saying why not; and when nothing qualifies, ``nothing_qualifies`` says so
and why.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd

from features.config import Milestone

STAGE_ORDER = {"setup": 0, "activation": 1, "aha": 2}


def _when(deadline: float) -> str:
    if math.isnan(deadline):
        return "during the trial"
    return "on the first day" if deadline == 1 else f"in the first {deadline:g} days"


def milestone_name(event: str, min_count: int, deadline_days: float | None) -> str:
    """A checklist name sales can read: "Pipeline Run Succeeded 3+ times in the first 7 days"."""
    times = "" if min_count == 1 else f" {min_count}+ times"
    deadline = math.nan if deadline_days is None else float(deadline_days)
    return f"{event}{times} {_when(deadline)}"


def milestone_from_row(row: dict) -> Milestone:
    """The ``Milestone`` of a candidate row (with a ``stage``)."""
    deadline = row["deadline_days"]
    deadline = None if deadline is None or math.isnan(float(deadline)) else float(deadline)
    return Milestone(
        name=milestone_name(str(row["event"]), int(row["min_count"]), deadline),
        events=[str(row["event"])],
        min_count=int(row["min_count"]),
        deadline_days=deadline,
        stage=row.get("stage", "activation"),
    )


def qualifying(candidates: pd.DataFrame, *, min_adjusted_lift: float) -> pd.Series:
    """Candidates that add to conversion beyond overall activity: ranked, a lower bound
    above 1 after correcting for the number of candidates tried, and an adjusted lift
    of at least ``min_adjusted_lift``."""
    return (
        (candidates["status"] == "ranked")
        & (candidates["adj_lift_low_corrected"] > 1.0)
        & (candidates["adj_lift"] >= min_adjusted_lift)
    )


def reason_chosen(row: dict) -> str:
    """Why a checklist step was chosen, in words."""
    return (
        f"{row['reached_share']:.0%} of trials reach it, typically on day "
        f"{row['median_day']:.1f}; {row['rate_reached']:.0%} of them converted vs "
        f"{row['rate_not_reached']:.0%} of the others. Among equally active trials it "
        f"multiplies the chance of converting by {row['adj_lift']:.2f} (95% CI "
        f"{row['adj_lift_low']:.2f}-{row['adj_lift_high']:.2f}), so it matters beyond being busy."
    )


def propose_checklist(
    candidates: pd.DataFrame, *, max_steps: int = 7, min_adjusted_lift: float = 1.25
) -> pd.DataFrame:
    """The checklist rows (candidate columns plus ``stage`` and ``why``), in checklist order."""
    pool = candidates[qualifying(candidates, min_adjusted_lift=min_adjusted_lift)]
    pool = pool.sort_values(["adj_lift_low", "adj_lift"], ascending=False, kind="mergesort")
    picked = pool.drop_duplicates("event").head(max_steps).reset_index(drop=True)
    n = len(picked)
    if n == 0:
        return picked.assign(stage=pd.Series(dtype=str), why=pd.Series(dtype=str))
    aha = int(np.argmax(picked["adj_lift"].to_numpy()))
    rest = picked.drop(index=aha).sort_values("median_day", kind="mergesort")
    n_setup = len(rest) // 3
    stages = pd.Series("activation", index=rest.index)
    stages.iloc[:n_setup] = "setup"
    stages[aha] = "aha"
    picked = picked.assign(stage=stages)
    picked = picked.assign(order=picked["stage"].map(STAGE_ORDER))
    picked = picked.sort_values(["order", "median_day"], kind="mergesort").drop(columns="order")
    picked = picked.reset_index(drop=True)
    why = [reason_chosen(r) for r in picked.to_dict("records")]
    why[-1] = "The aha moment, the largest gain beyond activity: " + why[-1]
    return picked.assign(why=why)


def reasons_left_out(
    candidates: pd.DataFrame, chosen: set[str], *, min_adjusted_lift: float, limit: int = 8
) -> list[str]:
    """Why event types that look good on raw lift (or are everywhere) were left out."""
    lines: list[str] = []
    for event, rows in candidates.groupby("event", sort=False):
        if event in chosen:
            continue
        status = set(rows["status"])
        busy = rows[rows["status"].isin(["ranked", "activity-bound"])]
        if "outcome-like" in status:
            r = rows[rows["status"] == "outcome-like"].iloc[0]
            lines.append(
                f"{event}: looks like part of paying, not a cause of it ({r['rate_reached']:.0%} "
                "of trials that reach it convert and almost no others do); add it to the "
                "leak exclusions if so."
            )
        elif "near-universal" in status:
            share = rows["reached_share"].max()
            lines.append(
                f"{event}: reached by {share:.0%} of trials; the few without it are mostly "
                "inactive accounts, so its lift says nothing about what to do next."
            )
        elif len(busy) and (busy["lift_low"] > 1.0).any():
            best = busy.sort_values("lift", ascending=False).iloc[0]
            lines.append(
                f"{event}: {best['lift']:.1f}x on raw lift, but {best['adj_lift']:.2f}x "
                f"(95% CI {best['adj_lift_low']:.2f}-{best['adj_lift_high']:.2f}) among equally "
                f"active trials (not clearly above {min_adjusted_lift:g}x): it tracks how busy "
                "a trial is."
            )
    return lines[:limit]


def nothing_qualifies(candidates: pd.DataFrame, *, min_adjusted_lift: float) -> str:
    """Why no checklist could be proposed, in words."""
    ranked = candidates[candidates["status"] == "ranked"]
    if ranked.empty:
        return (
            "No milestone qualifies: every candidate is reached by almost every trial, by "
            "almost none, or looks like an outcome, so none separates converters from the rest."
        )
    best = ranked.sort_values(["adj_lift_low", "adj_lift"], ascending=False).iloc[0]
    return (
        "No milestone qualifies: no candidate adds to conversion beyond overall activity "
        f"(adjusted lift interval above 1 and at least {min_adjusted_lift:g}x). The best, "
        f"{milestone_name(str(best['event']), int(best['min_count']), best['deadline_days'])}, "
        f"has {best['adj_lift']:.2f}x (95% CI {best['adj_lift_low']:.2f}-"
        f"{best['adj_lift_high']:.2f}) among equally active trials. Keep the current checklist, "
        "or collect more trials."
    )


def _toml_string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def checklist_toml(
    milestones: list[Milestone], rows: pd.DataFrame | None = None, *, header: str = ""
) -> str:
    """``[[activation.milestones]]`` tables for ``milestones`` (evidence from ``rows`` as comments)."""
    lines = [f"# {line}" for line in header.splitlines()] if header else []
    evidence = rows.to_dict("records") if rows is not None else [None] * len(milestones)
    for milestone, ev in zip(milestones, evidence, strict=True):
        if ev is not None:
            lines.append(
                f"# adjusted lift {ev['adj_lift']:.2f}x (95% CI {ev['adj_lift_low']:.2f}-"
                f"{ev['adj_lift_high']:.2f}); raw {ev['lift']:.2f}x: {ev['rate_reached']:.1%} vs "
                f"{ev['rate_not_reached']:.1%} convert; reached by {ev['reached_share']:.0%} "
                f"of trials, median day {ev['median_day']:.1f}"
            )
        lines.append("[[activation.milestones]]")
        lines.append(f"name = {_toml_string(milestone.name)}")
        lines.append(f"events = [{', '.join(_toml_string(e) for e in milestone.events)}]")
        if milestone.min_count != 1:
            lines.append(f"min_count = {milestone.min_count}")
        if milestone.deadline_days is not None:
            lines.append(f"deadline_days = {milestone.deadline_days:g}")
        lines.append(f"stage = {_toml_string(milestone.stage)}")
        lines.append("")
    return "\n".join(lines)
