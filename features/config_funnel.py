"""The ``[funnel]`` section: how trials split into motions and segments, and when a
cohort's stage rate is flagged as changed (``trialcast funnel``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from features.config_sources import StrictModel

Channel = Literal["email", "chat", "call", "meeting", "ticket", "in_app"]


def _sales_channels() -> list[Channel]:
    return ["call", "meeting"]


class FunnelConfig(StrictModel):
    """Funnel settings.

    Attributes:
        motion_column: an accounts column naming each trial's sales motion
            (its text values are the motions; true/false or 1/0 mean
            sales-assisted / self-serve). Without it the motion comes from the
            communications: an outbound touch on one of ``sales_channels`` during
            the trial (before ``as_of``) makes it ``sales-assisted``, else
            ``self-serve``. Without either, there is no motion breakdown.
        sales_channels: the outbound channels that make a trial sales-assisted.
        segments: further accounts columns to break the funnel down by (text
            values; empty ones read ``unknown``).
        baseline_cohorts: how many previous (finished) cohorts a cohort's stage
            rate is compared with.
        min_cohort_trials: cohorts (and baselines) with fewer trials are not tested.
        false_discovery_rate: the Benjamini-Hochberg level of the change flags,
            over the tested cohorts of each stage of one motion / segment.
    """

    motion_column: str | None = None
    sales_channels: list[Channel] = Field(default_factory=_sales_channels)
    segments: list[str] = Field(default_factory=list)
    baseline_cohorts: int = Field(8, ge=1)
    min_cohort_trials: int = Field(30, ge=1)
    false_discovery_rate: float = Field(0.05, gt=0, lt=1)
