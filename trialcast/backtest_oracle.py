"""The backtest's oracle floor: the same cohorts forecast from the generator's truth.

A backtest error mixes two things: what the shipping path gets wrong (model,
calibration, deal estimates) and what nobody could know at the origin (which
trials convert, how big each deal turns out). The oracle forecasts every cohort
the way a perfect model would, from the truth file of a generated company:

- chance to convert: the true ``p_convert`` turned into "converts from the
  origin until the window closes, given still open at the origin" with the
  generator's own conversion-timing law (``DemoConversionLags.survival``);
- deal value: the generator's expected value given plan, size and the CRM quote
  (``deal_value_expected``, log-spread ``deal_value_log_sd``).

Same open trials, same already-won revenue, same actuals, same P10-P90 machinery
(no calibration shift: the truth is calibrated). Its MAPE and coverage are the
floor the shipping path can reach at this cohort size; with a handful of cohorts
the realised oracle MAPE is itself noisy, so the row also holds the oracle's
*expected* absolute error (``E|S - E S|`` of its own distribution): the floor
without the luck of the draw. The truth is read here
only: the shipping path (``serving.batch``, ``serving.forecast.deal``) never sees it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from features.demo.generator import DemoData
from features.demo.latent import DemoConversionLags, open_probability
from serving.forecast.deal import value_variance
from serving.forecast.distribution import (
    TOLERANCE,
    SumDistribution,
    compute_mixture_distribution,
)
from trialcast.backtest_intervals import interval_scores, summarise_intervals

#: Truth columns the oracle needs.
TRUTH_COLUMNS = ("p_convert", "trial_days", "deal_value_expected", "deal_value_log_sd")


class OracleTruthError(ValueError):
    """The truth file lacks what the oracle needs (named in the message)."""


@dataclass(frozen=True)
class OracleTruth:
    """A generated company's truth, ready for the oracle forecast.

    Attributes:
        truth: indexed by ``account_id`` (str), with ``TRUTH_COLUMNS``.
        lags: the generator's conversion-timing law.
        window_days: the conversion window the company was generated with.
    """

    truth: pd.DataFrame
    lags: DemoConversionLags
    window_days: float

    @classmethod
    def from_frame(cls, truth: pd.DataFrame, meta: dict[str, object]) -> OracleTruth:
        """From a truth frame and its metadata (``truth.attrs`` / ``demo_meta.json``)."""
        missing = [c for c in ("account_id", *TRUTH_COLUMNS) if c not in truth.columns]
        if missing:
            raise OracleTruthError(
                f"truth file: no column(s) {missing}; regenerate the company with "
                "`trialcast demo-data` (the oracle needs the generator's expected deal values)"
            )
        timing = meta.get("conversion_timing")
        window = meta.get("conversion_window_days")
        if not isinstance(timing, dict) or window is None:
            raise OracleTruthError(
                "truth metadata: no conversion_timing / conversion_window_days "
                "(demo_meta.json next to truth.parquet)"
            )
        lags = DemoConversionLags.from_params(timing)
        frame = truth.assign(account_id=truth["account_id"].astype(str)).set_index("account_id")
        return cls(frame.loc[:, list(TRUTH_COLUMNS)], lags, float(window))  # type: ignore[arg-type]

    @classmethod
    def from_demo(cls, demo: DemoData) -> OracleTruth:
        """From generated data in memory."""
        return cls.from_frame(demo.truth, {str(k): v for k, v in demo.truth.attrs.items()})

    @classmethod
    def read(cls, truth_path: str | Path) -> OracleTruth:
        """From ``truth.parquet`` and the ``demo_meta.json`` beside it."""
        path = Path(truth_path)
        meta_path = path.with_name("demo_meta.json")
        if not path.is_file() or not meta_path.is_file():
            raise OracleTruthError(f"oracle: need {path} and {meta_path} (from demo-data)")
        return cls.from_frame(pd.read_parquet(path), json.loads(meta_path.read_text()))

    def open_probability(
        self, account_ids: pd.Index, trial_start: pd.Series, origin: pd.Timestamp
    ) -> np.ndarray:
        """True P(converts from ``origin`` until its window closes | open at ``origin``)."""
        t = self.truth.reindex(account_ids.astype(str))
        if t["p_convert"].isna().any():
            raise OracleTruthError("truth file: open trials missing from it (another company?)")
        elapsed = (pd.Timestamp(origin) - pd.to_datetime(trial_start)).dt.total_seconds()
        survival = self.lags.survival(
            elapsed.to_numpy(dtype=float) / 86_400.0,
            t["trial_days"].to_numpy(dtype=float),
            self.window_days,
        )
        return np.asarray(open_probability(t["p_convert"].to_numpy(dtype=float), survival))


def expected_abs_deviation(dist: SumDistribution) -> float:
    """``E|S - E[S]|`` of a computed revenue distribution (atoms plus its normal smoothing).

    For the oracle this is the error a perfect forecast makes on average: the
    noise floor of the MAPE at this cohort size, free of the luck of a few cohorts.
    """
    d = np.asarray(dist.values, dtype=float) - dist.mean
    w = np.asarray(dist.probs, dtype=float)
    s = float(dist.smooth_sd)
    if s <= 0:
        return float(w @ np.abs(d) / w.sum())
    # Folded normal: E|d + N(0, s^2)| per atom.
    folded = s * np.sqrt(2.0 / np.pi) * np.exp(-0.5 * (d / s) ** 2) + d * (
        1.0 - 2.0 * stats.norm.cdf(-d / s)
    )
    return float(w @ folded / w.sum())


@dataclass(frozen=True)
class CohortActuals:
    """What one backtest cohort really did, to judge a forecast of it.

    Attributes:
        revenue: the cohort's realised revenue (certain deals included).
        conversions: open trials of the cohort that converted.
        open_value: the deal value those open trials brought.
    """

    revenue: float
    conversions: int
    open_value: float


def oracle_cohort_row(
    oracle: OracleTruth,
    open_ids: pd.Index,
    open_trial_start: pd.Series,
    origin: pd.Timestamp,
    certain_values: np.ndarray,
    *,
    actuals: CohortActuals,
    tolerance: float = TOLERANCE,
) -> dict[str, float | bool]:
    """The oracle's forecast of one cohort against the same actuals (``oracle_*`` columns)."""
    actual, actual_conversions = actuals.revenue, actuals.conversions
    open_actual_value = actuals.open_value
    p = oracle.open_probability(open_ids, open_trial_start, origin)
    t = oracle.truth.reindex(open_ids.astype(str))
    values = t["deal_value_expected"].to_numpy(dtype=float)
    spread = value_variance(values, t["deal_value_log_sd"].to_numpy(dtype=float))
    dist = compute_mixture_distribution(
        np.concatenate([np.ones(len(certain_values)), p]),
        np.concatenate([certain_values, values]),
        0.0,
        tolerance=tolerance,
        value_var=np.concatenate([np.zeros(len(certain_values)), spread]),
    )
    p10, p90 = dist.quantile(0.1), dist.quantile(0.9)
    expected_n = float(p.sum())
    honesty = interval_scores(dist, actual, p10, p90)
    return {
        "oracle_pit": honesty["pit"],
        "oracle_z": honesty["z"],
        "oracle_expected_open_value": float(p @ values),
        "oracle_forecast": dist.mean,
        "oracle_p10": p10,
        "oracle_p90": p90,
        "oracle_error_pct": 100.0 * (dist.mean - actual) / actual if actual else np.nan,
        "oracle_inside": bool(p10 <= actual <= p90),
        "oracle_expected_abs_error_pct": 100.0 * expected_abs_deviation(dist) / dist.mean,
        "oracle_expected_conversions": expected_n,
        "oracle_count_error_pct": (
            100.0 * (expected_n - actual_conversions) / actual_conversions
            if actual_conversions
            else np.nan
        ),
        "oracle_value_per_conversion_error_pct": (
            100.0 * ((p @ values / expected_n) / (open_actual_value / actual_conversions) - 1.0)
            if actual_conversions and expected_n
            else np.nan
        ),
    }


def summarise_oracle(cohorts: pd.DataFrame, *, min_trials: int = 500) -> dict[str, float]:
    """The oracle floor's MAPE and coverage (all cohorts and cohorts of ``min_trials``+)."""
    if "oracle_error_pct" not in cohorts.columns:
        return {}
    big = cohorts[cohorts["n_trials"] >= min_trials]
    expected, actual = (
        cohorts["oracle_expected_conversions"].sum(),
        cohorts["actual_conversions"].sum(),
    )
    return {
        "oracle_mape": float(cohorts["oracle_error_pct"].abs().mean()),
        "oracle_coverage": float(100.0 * cohorts["oracle_inside"].mean()),
        "oracle_mape_500": float(big["oracle_error_pct"].abs().mean()) if len(big) else np.nan,
        "oracle_coverage_500": float(100.0 * big["oracle_inside"].mean()) if len(big) else np.nan,
        "oracle_count_error_pct": 100.0 * (expected / actual - 1.0) if actual else np.nan,
        "oracle_count_mape": float(cohorts["oracle_count_error_pct"].abs().mean()),
        "oracle_value_mape": float(cohorts["oracle_value_per_conversion_error_pct"].abs().mean()),
        "oracle_expected_mape": float(cohorts["oracle_expected_abs_error_pct"].mean()),
        **summarise_intervals(cohorts, "oracle_"),
    }
