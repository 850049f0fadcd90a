"""The demo company's set-up and aha moments, drawn before the outcome.

Pipewise's aha moment is a pipeline that works on real data: once it does, the
trial runs it again and again, a burst of ``BURST_RUNS`` successful runs within a
couple of hours. Reaching it *causes* conversion: a trial that gets there gains
``AHA_LOGIT`` log-odds over an otherwise identical trial. That is an effect the
event log shows beyond being active (a quiet trial with the burst converts more
than an equally quiet trial without it), so milestone discovery has a true aha
moment to find: "Pipeline Run Succeeded" 10+ times.

Whether and when a trial gets there depends on its traits (``setup x fit``: it
needs a pipeline, and runs that succeed) and on luck, which is why it is drawn
here, before the conversion draw, and handed to the event generator.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from features.demo import latent as dl
from features.demo.timebase import HOUR, NEVER, days_to_ns

#: Log-odds a trial gains by reaching its aha moment (on top of its traits' logit).
AHA_LOGIT = 2.0
#: Chance of reaching the aha moment once a pipeline exists:
#: sigmoid(intercept + slope * setup * fit); about 75% for a Golden Lead, 8% for an
#: Incompatible Ignoramus (runs mostly fail there).
AHA_INTERCEPT = -2.6
AHA_SLOPE = 4.4
#: Chance a trial that connected a source goes on to create a pipeline in it.
PIPELINE_CHANCE = 0.92
#: Mean days from the first pipeline to the aha moment (it must fall in the trial).
AHA_MEAN_DAYS = 1.5
#: Successful runs in the aha burst, and the hours it spans.
BURST_RUNS = 10
BURST_HOURS = 2.0


@dataclass(frozen=True)
class TrialMoments:
    """When each account set up and reached its aha moment in the trial (ns, or NEVER)."""

    source: np.ndarray  # first data source connected
    pipeline: np.ndarray  # first pipeline created
    aha: np.ndarray  # the aha burst starts

    @property
    def reached_aha(self) -> np.ndarray:
        """Whether each account reached its aha moment in the trial."""
        return self.aha < NEVER


def aha_chance(setup: np.ndarray, fit: np.ndarray) -> np.ndarray:
    """P(reaching the aha moment in the trial | a pipeline exists in time)."""
    return 1.0 / (1.0 + np.exp(-(AHA_INTERCEPT + AHA_SLOPE * setup * fit)))


def draw_trial_moments(
    rng: np.random.Generator, tr: dl.Traits, trial_start: np.ndarray, trial_end: np.ndarray
) -> TrialMoments:
    """Set-up (source, then pipeline) and aha moments inside each trial."""
    n = len(trial_start)
    src = trial_start + days_to_ns(rng.exponential(1.0, n) * tr.setup_days)
    src = np.where((rng.random(n) < tr.setup) & (src < trial_end), src, NEVER)
    pipe = src + days_to_ns(rng.exponential(1.0, n) * (0.3 * tr.setup_days + 0.05))
    pipe = np.where(
        (src < NEVER) & (rng.random(n) < PIPELINE_CHANCE) & (pipe < trial_end), pipe, NEVER
    )
    aha = pipe + days_to_ns(rng.exponential(AHA_MEAN_DAYS, n))
    lucky = rng.random(n) < aha_chance(tr.setup, tr.fit)
    aha = np.where((pipe < NEVER) & lucky & (aha < trial_end - BURST_HOURS * HOUR), aha, NEVER)
    return TrialMoments(source=src, pipeline=pipe, aha=aha)


def expected_reach(setup: np.ndarray, fit: np.ndarray) -> np.ndarray:
    """About how likely an account of these traits is to reach the aha moment in the trial.

    It must set up (chance ``setup``), create a pipeline (``PIPELINE_CHANCE``) and be lucky; nearly
    every trial leaves the time for it.
    """
    return setup * PIPELINE_CHANCE * aha_chance(setup, fit)


def with_aha_effect(tr: dl.Traits, reached: np.ndarray) -> np.ndarray:
    """The true chance to convert once whether the aha moment was reached is known.

    The traits' logit (``latent.conversion_logit``) describes a trial of those
    traits on average; reaching the aha moment moves it up by ``AHA_LOGIT`` times
    what was not expected of it, missing it moves it down, so each lead type keeps
    about its stated chance.
    """
    p = tr.p_convert
    expected = expected_reach(tr.setup, tr.fit)
    logit = np.log(p) - np.log1p(-p) + AHA_LOGIT * (reached - expected)
    return 1.0 / (1.0 + np.exp(-logit))


def aha_burst(rng: np.random.Generator, moments: TrialMoments) -> tuple[np.ndarray, np.ndarray]:
    """The burst's successful runs: (account, time), ``BURST_RUNS`` per account reaching it."""
    acc = np.repeat(np.flatnonzero(moments.reached_aha), BURST_RUNS).astype(np.int32)
    offset = np.sort(rng.random((len(acc) // BURST_RUNS, BURST_RUNS)), axis=1).ravel()
    t = moments.aha[acc] + (offset * BURST_HOURS * HOUR).astype(np.int64)
    return acc, t


def params() -> dict[str, float | str]:
    """The aha model's parameters, for ``demo_meta.json``."""
    return {
        "event": "Pipeline Run Succeeded",
        "burst_runs": BURST_RUNS,
        "burst_hours": BURST_HOURS,
        "logit_effect": AHA_LOGIT,
        "chance_intercept": AHA_INTERCEPT,
        "chance_slope_setup_x_fit": AHA_SLOPE,
        "mean_days_after_pipeline": AHA_MEAN_DAYS,
    }
