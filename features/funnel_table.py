"""The funnel in long form: one row per (cohort, dimension, segment, stage).

Each row counts the cohort's trials, how many reached the stage by ``as_of``
(``share`` with its Wilson interval), the median days to get there, the
stage-to-stage conversion from the previous stage (among trials that reached the
previous stage, the share that reached this one, with its Wilson interval), and
the change test against the previous finished cohorts.

A cell is *finished* (``finished``) when every trial of the cohort has had its
whole chance at the stage by ``as_of``: its trial ended (milestones, PQL) or its
conversion window closed (paid). Only finished cells are tested, against the
``baseline_cohorts`` previous finished cohorts of the same segment and stage
pooled (two-sided two-proportion test); the flags are Benjamini-Hochberg at
``false_discovery_rate`` over the tested cohorts of each stage of each motion /
segment, so with no change at all a stage's column raises a false flag with
probability at most that rate (a control chart per stage, corrected for the
number of cohorts it shows).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.config_funnel import FunnelConfig
from features.funnel_stages import FunnelStage
from features.funnel_stats import benjamini_hochberg, two_proportion_p, wilson_interval

#: One family of the change tests: the cohorts of one stage of one motion / segment.
FLAG_FAMILY = ["dimension", "segment", "cohort"]
#: Cohort periods ``trialcast funnel --by`` accepts, as pandas period codes.
COHORT_PERIODS = {"week": "W-SUN", "month": "M"}
#: The columns of the long table, in order.
FUNNEL_COLUMNS = [
    "cohort",
    "dimension",
    "segment",
    "stage",
    "stage_kind",
    "stage_order",
    "trials",
    "reached",
    "share",
    "share_low",
    "share_high",
    "median_days",
    "from_stage",
    "step_trials",
    "step_reached",
    "step_rate",
    "step_low",
    "step_high",
    "finished",
    "baseline_share",
    "p_value",
    "flagged",
]


def cohort_labels(trial_start: pd.Series, by: str) -> pd.Series:
    """Each trial's signup cohort: the first day of its week (Monday) or month, as text."""
    if by not in COHORT_PERIODS:
        raise ValueError(f"cohorts are by {' or '.join(COHORT_PERIODS)}, not {by!r}")
    start = pd.to_datetime(trial_start).dt.to_period(COHORT_PERIODS[by]).dt.start_time
    return start.dt.strftime("%Y-%m-%d")


def _count_rows(
    days: pd.DataFrame, keys: pd.DataFrame, stages: list[FunnelStage], as_of: pd.Timestamp
) -> pd.DataFrame:
    """Counts, medians and finished flags of one dimension, in long form."""
    names = [s.name for s in stages]
    reached = days[names].notna()
    both = {
        f"both{i}": (reached[names[i]] & reached[names[i - 1]]).to_numpy()
        for i in range(1, len(names))
    }
    work = pd.concat(
        [
            keys.reset_index(drop=True),
            reached.reset_index(drop=True).add_prefix("r:"),
            days[names].reset_index(drop=True).add_prefix("d:"),
            pd.DataFrame(both),
            days[["trial_end", "window_end"]].reset_index(drop=True),
        ],
        axis=1,
    )
    grouped = work.groupby(["cohort", "segment"], sort=True, observed=True)
    sums = grouped[[f"r:{n}" for n in names] + list(both)].sum()
    medians = grouped[[f"d:{n}" for n in names]].median()
    trials = grouped.size()
    ends = grouped[["trial_end", "window_end"]].max()
    parts = []
    for i, stage in enumerate(stages):
        finished = (
            (ends["window_end"] < as_of) if stage.kind == "paid" else ends["trial_end"] <= as_of
        )
        part = pd.DataFrame(
            {
                "stage": stage.name,
                "stage_kind": stage.kind,
                "stage_order": i,
                "trials": trials,
                "reached": sums[f"r:{stage.name}"],
                "median_days": medians[f"d:{stage.name}"],
                "from_stage": names[i - 1] if i else None,
                "step_trials": sums[f"r:{names[i - 1]}"] if i else np.nan,
                "step_reached": sums[f"both{i}"] if i else np.nan,
                "finished": finished,
            }
        )
        parts.append(part.reset_index())
    return pd.concat(parts, ignore_index=True)


def _baseline(frame: pd.DataFrame, settings: FunnelConfig) -> pd.DataFrame:
    """Pooled counts of the previous finished cohorts of each cell's segment and stage."""
    frame = frame.sort_values(["dimension", "segment", "stage_order", "cohort"], kind="stable")
    base_k = np.full(len(frame), np.nan)
    base_n = np.full(len(frame), np.nan)
    k_all, n_all = frame["reached"].to_numpy(float), frame["trials"].to_numpy(float)
    done = frame["finished"].to_numpy(bool)
    series = frame.groupby(["dimension", "segment", "stage_order"], sort=False).indices
    for rows in series.values():
        history: list[int] = []
        for j in rows:  # rows are in cohort order
            if done[j] and n_all[j] >= settings.min_cohort_trials and history:
                prev = history[-settings.baseline_cohorts :]
                if n_all[prev].sum() >= settings.min_cohort_trials:
                    base_k[j], base_n[j] = k_all[prev].sum(), n_all[prev].sum()
            if done[j] and n_all[j] > 0:
                history.append(j)
    return frame.assign(base_k=base_k, base_n=base_n)


def flag_changes(frame: pd.DataFrame, settings: FunnelConfig) -> pd.DataFrame:
    """``baseline_share``, ``p_value`` (two-sided, vs the pooled previous cohorts) and
    ``flagged`` (Benjamini-Hochberg over the tested cohorts of each stage of each
    motion / segment, ``FLAG_FAMILY``)."""
    frame = _baseline(frame, settings)
    p = two_proportion_p(frame["reached"], frame["trials"], frame["base_k"], frame["base_n"])
    p = np.where(frame["stage_kind"].to_numpy() == "signup", np.nan, p)  # always 100%
    flagged = np.zeros(len(frame), dtype=bool)
    for rows in frame.groupby(FLAG_FAMILY, sort=False).indices.values():
        flagged[rows] = benjamini_hochberg(p[rows], settings.false_discovery_rate)
    with np.errstate(invalid="ignore", divide="ignore"):
        baseline = frame["base_k"].to_numpy() / frame["base_n"].to_numpy()
    return frame.assign(baseline_share=baseline, p_value=p, flagged=flagged).drop(
        columns=["base_k", "base_n"]
    )


def funnel_table(
    days: pd.DataFrame,
    segments: pd.DataFrame,
    stages: list[FunnelStage],
    *,
    as_of: pd.Timestamp,
    by: str,
    settings: FunnelConfig,
) -> pd.DataFrame:
    """The long funnel table (``FUNNEL_COLUMNS``) from per-trial stage days
    (``features.funnel_stages.trial_stage_days``) and per-trial segments
    (``features.funnel_segments.trial_segments``, same index)."""
    cohort = cohort_labels(days["trial_start"], by).to_numpy()
    parts = []
    for dimension in segments.columns:
        keys = pd.DataFrame({"cohort": cohort, "segment": segments[dimension].to_numpy()})
        parts.append(_count_rows(days, keys, stages, as_of).assign(dimension=dimension))
    frame = pd.concat(parts, ignore_index=True)
    frame["share"] = frame["reached"] / frame["trials"]
    frame["share_low"], frame["share_high"] = wilson_interval(frame["reached"], frame["trials"])
    with np.errstate(invalid="ignore", divide="ignore"):
        frame["step_rate"] = frame["step_reached"] / frame["step_trials"]
    frame["step_low"], frame["step_high"] = wilson_interval(
        frame["step_reached"].fillna(0), frame["step_trials"].fillna(0)
    )
    frame = flag_changes(frame, settings)
    frame = frame.sort_values(["dimension", "segment", "cohort", "stage_order"], kind="stable")
    return frame[FUNNEL_COLUMNS].reset_index(drop=True)
