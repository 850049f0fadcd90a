"""When each trial reached each funnel stage, from data known at ``as_of`` only.

The funnel runs signup -> the checklist milestones in stage order (set-up, then
activation, then aha; checklist order within a stage) -> PQL -> paid. A trial
reaches a milestone as its activation feature says (the ``min_count``-th event,
inside its deadline) before its trial ends and before ``as_of``; it becomes a PQL
at the first checkpoint where the PQL rule holds on its features (the training
snapshot days ``[trial].snapshot_days`` inside the trial, then trial end, each
taken no later than ``as_of``); it is paid when ``converted_at`` is before
``as_of`` and inside its conversion window (inclusive, as the label). Days are
counted from trial start.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from features.activation import milestone_slugs
from features.build import FeatureBuilder
from features.config import CompanyConfig
from features.event_index import NAT_SECONDS, SECONDS_PER_DAY, timestamp_seconds
from features.personas import compute_pql

#: Stage kinds in funnel order (milestones sort by their ``stage`` within).
STAGE_KINDS = ("signup", "setup", "activation", "aha", "pql", "paid")


@dataclass(frozen=True)
class FunnelStage:
    """One funnel stage: its name as shown, its kind (``STAGE_KINDS``) and, for a
    checklist milestone, the activation feature slug."""

    name: str
    kind: str
    slug: str = ""


def funnel_stages(config: CompanyConfig, *, with_milestones: bool = True) -> list[FunnelStage]:
    """The stages in funnel order: signup, milestones by stage, PQL (if a rule is set), paid."""
    stages = [FunnelStage("signup", "signup")]
    if with_milestones:
        milestones = config.activation.milestones
        slugs = milestone_slugs(config.activation)
        order = sorted(
            range(len(milestones)), key=lambda i: (STAGE_KINDS.index(milestones[i].stage), i)
        )
        seen: set[str] = set()
        for i in order:
            name = milestones[i].name
            while name in seen or name in ("signup", "PQL", "paid"):
                name += " (again)"
            seen.add(name)
            stages.append(FunnelStage(name, milestones[i].stage, slugs[i]))
    if config.pql.conditions:
        stages.append(FunnelStage("PQL", "pql"))
    stages.append(FunnelStage("paid", "paid"))
    return stages


def pql_checkpoint_days(config: CompanyConfig) -> list[int]:
    """Days into the trial at which the PQL rule is checked (trial end is checked too)."""
    return list(config.trial.snapshot_days)


def _pql_days(
    builder: FeatureBuilder, positions: np.ndarray, final: np.ndarray, final_frame: pd.DataFrame
) -> np.ndarray:
    """Days from trial start to the first checkpoint where the PQL rule holds (NaN: never);
    ``final_frame`` holds the features at ``final`` (the last checkpoint)."""
    start = builder.index.trial_start[positions]
    days = np.full(len(positions), np.nan)
    for d in pql_checkpoint_days(builder.config):
        cut = start + d * SECONDS_PER_DAY
        todo = np.isnan(days) & (cut < final)
        if todo.any():
            flag = compute_pql(builder.build(positions[todo], cut[todo]), builder.config)
            hit = np.flatnonzero(todo)[flag.to_numpy(dtype=bool)]
            days[hit] = (cut[hit] - start[hit]) / SECONDS_PER_DAY
    last = np.isnan(days) & compute_pql(final_frame, builder.config).to_numpy(dtype=bool)
    days[last] = (final[last] - start[last]) / SECONDS_PER_DAY
    return days


def trial_stage_days(
    builder: FeatureBuilder, as_of: pd.Timestamp, stages: list[FunnelStage]
) -> pd.DataFrame:
    """One row per trial started before ``as_of``: days from trial start to each stage
    (NaN = not reached by ``as_of``), indexed by ``account_id``.

    Columns: ``trial_start``, ``trial_end``, ``window_end`` (timestamps) and one
    float column per stage, named as the stage.
    """
    idx = builder.index
    now = timestamp_seconds(as_of)
    positions = np.flatnonzero(idx.trial_start < now)
    start, end = idx.trial_start[positions], idx.trial_end[positions]
    window_end = end + int(builder.config.trial.conversion_window_days * SECONDS_PER_DAY)
    final = np.minimum(end, now)
    out: dict[str, Any] = {
        "trial_start": pd.to_datetime(start, unit="s"),
        "trial_end": pd.to_datetime(end, unit="s"),
        "window_end": pd.to_datetime(window_end, unit="s"),
    }
    milestones = [s for s in stages if s.kind in ("setup", "activation", "aha")]
    needs_final = milestones or any(s.kind == "pql" for s in stages)
    frame = builder.build(positions, final) if needs_final else pd.DataFrame()
    for stage in milestones:
        out[stage.name] = frame[f"activation_{stage.slug}_days"].to_numpy(dtype=np.float64)
    conv = idx.converted_at[positions]
    paid = (conv != NAT_SECONDS) & (conv < now) & (conv <= window_end)
    for stage in stages:
        if stage.kind == "signup":
            out[stage.name] = np.zeros(len(positions))
        elif stage.kind == "pql":
            out[stage.name] = _pql_days(builder, positions, final, frame)
        elif stage.kind == "paid":
            out[stage.name] = np.where(paid, np.maximum(conv - start, 0) / SECONDS_PER_DAY, np.nan)
    columns = ["trial_start", "trial_end", "window_end", *(s.name for s in stages)]
    return pd.DataFrame(
        {c: out[c] for c in columns}, index=pd.Index(idx.account_ids[positions], name="account_id")
    )
