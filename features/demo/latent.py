"""Latent model behind the demo data: lead types, per-account traits and the truth.

The generator in ``features.demo.generator`` turns the traits drawn here into event,
account and communication rows. Keeping the probability model in one place makes
the ground truth readable: each account's true chance to convert (``p_convert``),
the conversion-timing distribution (shared by all accounts, so "still open at day
d" probabilities are exact), the churn hazard and the deal value.

Design rule: ``p_convert`` is a smooth function of traits that leave traces in the
trial's events and communications (successful runs, activity level and trend, team
size, replies, tone) plus a small firmographic effect, so a model on trial-end
features can get close to it. The seven lead types of DOMAIN.md only set where the
traits are drawn around; the type itself does not enter ``p_convert``. On top of
the traits' logit, reaching the aha moment in the trial moves it
(``features.demo.aha``): the one event-level cause of converting.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

#: The seven trial lead types (DOMAIN.md), in this order everywhere below.
PERSONAS: tuple[str, ...] = (
    "Golden Leads",
    "Silent Successes",
    "Contrary Converters",
    "Positive Procrastinators",
    "Fizzlers",
    "Incompatible Ignoramus",
    "Heartbreakers",
)
#: Stated chance of each type (DOMAIN.md); the calibration target of each type's mean.
STATED_CHANCE: dict[str, float] = dict(
    zip(PERSONAS, (0.90, 0.75, 0.60, 0.30, 0.10, 0.05, 0.05), strict=True)
)
#: Share of trial sign-ups of each type; gives an overall trial-to-paid rate near 27%.
TYPE_MIX: dict[str, float] = dict(
    zip(PERSONAS, (0.08, 0.09, 0.08, 0.15, 0.24, 0.20, 0.16), strict=True)
)

INDUSTRIES: tuple[str, ...] = (
    "Software", "E-commerce", "Financial Services", "Healthcare",
    "Media", "Manufacturing", "Education", "Logistics",
)  # fmt: skip
COUNTRIES: tuple[str, ...] = ("US", "GB", "DE", "FR", "IN", "BR")
PLANS: tuple[str, ...] = ("starter", "team", "business")
_INDUSTRY_P = np.array([0.26, 0.16, 0.12, 0.10, 0.10, 0.10, 0.08, 0.08])
_COUNTRY_P = np.array([0.42, 0.14, 0.14, 0.10, 0.12, 0.08])
_INDUSTRY_EFFECT = np.array([0.15, 0.05, -0.05, -0.10, 0.0, -0.05, -0.10, 0.0])
_PLAN_CONVERT_EFFECT = np.array([-0.10, 0.05, 0.10])
_PLAN_CHURN_EFFECT = np.array([0.35, 0.0, -0.35])
_PLAN_ACV = np.array([1_200.0, 6_000.0, 24_000.0])

# Prototype of each trait per type (rows follow PERSONAS). Units:
# setup: chance to connect a source in the trial; setup_days: mean days to do it;
# fit: chance a pipeline run succeeds; eng: log events per active user-day;
# act: chance a trial day is active; fade: daily decay rate of activity;
# team: expected teammates joining; comm: inbound messages per trial day;
# resp: chance to reply to an outreach email; latency_h: median reply hours;
# tone: mean sentiment; run: manual pipeline runs per active day;
# size: median company employees; size_sigma: log-normal spread of size.
_PROTO: dict[str, np.ndarray] = {
    k: np.array(v, dtype=np.float64)
    for k, v in {
        #            Golden Silent Contr  Procr  Fizz   Incomp Heart
        "setup": [0.94, 0.93, 0.84, 0.52, 0.88, 0.78, 0.42],
        "setup_days": [0.6, 0.7, 1.2, 3.0, 0.4, 1.0, 4.0],
        "fit": [0.87, 0.88, 0.74, 0.7, 0.72, 0.08, 0.55],
        "eng": [1.5, 1.5, 1.25, 0.8, 1.6, 0.75, 0.8],
        "act": [0.78, 0.8, 0.6, 0.35, 0.85, 0.28, 0.25],
        "fade": [-0.01, 0.0, 0.01, 0.02, 0.22, 0.04, 0.05],
        "team": [2.5, 2.0, 2.2, 1.3, 0.8, 0.8, 0.4],
        "comm": [0.30, 0.02, 0.35, 0.25, 0.02, 0.30, 0.02],
        "resp": [0.7, 0.07, 0.6, 0.75, 0.1, 0.4, 0.07],
        "latency_h": [3.0, 20.0, 8.0, 30.0, 20.0, 5.0, 40.0],
        "tone": [0.40, 0.10, -0.55, 0.60, 0.00, -0.15, 0.00],
        "run": [2.4, 2.4, 1.8, 1.0, 2.2, 1.6, 0.8],
        "size": [60.0, 45.0, 50.0, 25.0, 30.0, 20.0, 3_000.0],
        "size_sigma": [1.2, 1.2, 1.2, 1.1, 1.1, 1.1, 0.7],
    }.items()
}
_FADE_SD = np.array([0.012, 0.012, 0.012, 0.015, 0.04, 0.02, 0.02])

#: Weights of the true conversion logit (see ``conversion_logit``).
CONVERT_WEIGHTS: dict[str, float] = {
    "intercept": -3.3,
    "value": 3.9,  # setup x fit: how many runs actually succeed, the true driver
    "setup": 0.2,  # setting up alone matters little
    "eng_late": 1.0,  # log activity level late in the trial (after fading)
    "act_late": 1.0,  # share of active days late in the trial
    "log_team": 0.4,
    "resp": 0.8,
    "comm": 0.8,
    "tone": 0.4,
    "log10_size": -0.12,
}
#: Trial day at which the "late" activity terms are read (fading accounts lose it).
LATE_DAY = 10.0

DAYS_PER_MONTH = 30.4375
#: Log-spread of a deal's value around its plan-and-size typical value (``deal_log_mean``).
DEAL_LOG_SD = 0.35


@dataclass(frozen=True)
class DemoConversionLags:
    """When converters convert, in days after trial start; the same for every account.

    A share ``in_trial_share`` converts during the trial at ``L * Beta(a_in, b_in)``
    (skewed towards the trial's end); the rest convert after it, at
    ``L + W * Beta(a_after, b_after)`` (front-loaded just after expiry), where ``L``
    is the trial length and ``W`` the conversion window. Because the timing does not
    depend on the account, P(convert | not converted before day d) is the monotone
    transform ``p S(d) / (1 - p + p S(d))`` of ``p_convert`` with ``S`` the survival
    function below.
    """

    in_trial_share: float = 0.35
    a_in: float = 3.0
    b_in: float = 1.3
    a_after: float = 1.0
    b_after: float = 3.5

    def share_in_trial(self, window_days: float) -> float:
        """The in-trial share; everything converts in the trial without a window."""
        return 1.0 if window_days <= 0 else self.in_trial_share

    def sample(
        self, rng: np.random.Generator, trial_len: np.ndarray, window_days: float
    ) -> np.ndarray:
        """Draw conversion days after trial start, strictly before ``L + W``."""
        n = len(trial_len)
        in_trial = rng.random(n) < self.share_in_trial(window_days)
        x_in = rng.beta(self.a_in, self.b_in, n)
        x_after = rng.beta(self.a_after, self.b_after, n)
        days = np.where(in_trial, trial_len * x_in, trial_len + window_days * x_after)
        # Keep a minute of slack below the window end and after the trial start.
        upper = trial_len + window_days - 1.0 / 1440
        return np.clip(days, 1.0 / 1440, upper)

    def survival(
        self, day: np.ndarray | float, trial_len: np.ndarray, window_days: float
    ) -> np.ndarray:
        """P(conversion day >= ``day`` | converts), exactly, per account."""
        d = np.broadcast_to(np.asarray(day, dtype=np.float64), trial_len.shape)
        share = self.share_in_trial(window_days)
        in_part = share * stats.beta.sf(np.clip(d / trial_len, 0.0, 1.0), self.a_in, self.b_in)
        if window_days > 0:
            rel = np.clip((d - trial_len) / window_days, 0.0, 1.0)
            after_part = (1.0 - share) * stats.beta.sf(rel, self.a_after, self.b_after)
        else:
            after_part = np.zeros_like(d)
        s = np.where(d < trial_len, in_part + after_part, after_part)
        return np.where(d <= 0, 1.0, np.clip(s, 0.0, 1.0))

    @classmethod
    def from_params(cls, params: dict) -> DemoConversionLags:
        """The lags back from ``params()`` (as stored in the truth's attrs)."""
        a_in, b_in = (float(x) for x in params["in_trial_beta"])
        a_after, b_after = (float(x) for x in params["after_trial_beta"])
        return cls(float(params["in_trial_share"]), a_in, b_in, a_after, b_after)

    def params(self) -> dict[str, float]:
        """The parameters, for ``demo_meta.json``."""
        return {
            "in_trial_share": self.in_trial_share,
            "in_trial_beta": [self.a_in, self.b_in],  # type: ignore[dict-item]
            "after_trial_beta": [self.a_after, self.b_after],  # type: ignore[dict-item]
        }


def open_probability(p_convert: np.ndarray, survival: np.ndarray) -> np.ndarray:
    """P(converts in the window | not converted yet), from ``p_convert`` and S(d)."""
    num = p_convert * survival
    return num / (1.0 - p_convert + num)


@dataclass(frozen=True)
class Traits:
    """Latent traits and truth of each account (all arrays of length n)."""

    persona: np.ndarray  # int8 index into PERSONAS
    setup: np.ndarray
    setup_days: np.ndarray
    fit: np.ndarray
    eng: np.ndarray
    act: np.ndarray
    fade: np.ndarray
    team: np.ndarray  # int: total users the account grows to (>= 1)
    comm: np.ndarray
    resp: np.ndarray
    latency_h: np.ndarray
    tone: np.ndarray
    run_rate: np.ndarray
    breadth: np.ndarray  # exponent of the feature-rank draw; lower = broader use
    company_size: np.ndarray
    industry: np.ndarray
    country: np.ndarray
    plan: np.ndarray
    p_convert: np.ndarray
    eng_paid: np.ndarray
    act_paid: np.ndarray
    churn_hazard: np.ndarray
    deal_value: np.ndarray
    deal_log_mean: np.ndarray  # log of the plan-and-size typical deal (before its noise)


def _beta(rng: np.random.Generator, mean: np.ndarray, conc: float) -> np.ndarray:
    m = np.clip(mean, 0.01, 0.99)
    return rng.beta(m * conc, (1.0 - m) * conc)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def conversion_logit(t: dict[str, np.ndarray]) -> np.ndarray:
    """The true conversion logit: a smooth function of observable-leaning traits.

    ``value = setup * fit`` (how many pipeline runs actually succeed) carries most of
    the weight; merely setting up carries little, so "a successful pipeline, not
    setting one up" is what the data shows.
    """
    w = CONVERT_WEIGHTS
    fade_late = t["fade"] * LATE_DAY
    return (
        w["intercept"]
        + w["value"] * t["setup"] * t["fit"]
        + w["setup"] * t["setup"]
        + w["eng_late"] * (t["eng"] - fade_late - 1.0)
        + w["act_late"] * (t["act"] * np.exp(-fade_late) - 0.5)
        + w["log_team"] * np.log(t["team"])
        + w["resp"] * (t["resp"] - 0.3)
        + w["comm"] * np.sqrt(t["comm"])
        + w["tone"] * t["tone"]
        + w["log10_size"] * (np.log10(t["company_size"]) - 1.6)
        + _PLAN_CONVERT_EFFECT[t["plan"]]
        + _INDUSTRY_EFFECT[t["industry"]]
    )


def draw_traits(rng: np.random.Generator, n: int) -> Traits:
    """Draw each account's type, latent traits, firmographics and truth."""
    mix = np.array([TYPE_MIX[p] for p in PERSONAS])
    persona = rng.choice(len(PERSONAS), size=n, p=mix / mix.sum()).astype(np.int8)
    proto = {k: v[persona] for k, v in _PROTO.items()}

    size = np.exp(np.log(proto["size"]) + proto["size_sigma"] * rng.standard_normal(n))
    company_size = np.maximum(1, np.round(size)).astype(np.int64)
    log10_size = np.log10(company_size)
    plan_logits = np.stack(
        [1.6 - 0.9 * log10_size, np.full(n, 0.6), -2.6 + 1.1 * log10_size], axis=1
    )
    plan_p = np.exp(plan_logits)
    plan_p /= plan_p.sum(axis=1, keepdims=True)
    plan = (rng.random(n)[:, None] > np.cumsum(plan_p, axis=1)).sum(axis=1).clip(0, 2)

    team_mean = proto["team"] * np.clip((company_size / 30.0) ** 0.15, 0.7, 2.0)
    t: dict[str, np.ndarray] = {
        "setup": _beta(rng, proto["setup"], 8.0),
        "setup_days": proto["setup_days"] * np.exp(0.5 * rng.standard_normal(n)),
        "fit": _beta(rng, proto["fit"], 10.0),
        "eng": proto["eng"] + 0.3 * rng.standard_normal(n),
        "act": _beta(rng, proto["act"], 12.0),
        "fade": proto["fade"] + _FADE_SD[persona] * rng.standard_normal(n),
        "team": 1 + rng.poisson(team_mean),
        "comm": proto["comm"] * np.exp(0.5 * rng.standard_normal(n)),
        "resp": _beta(rng, proto["resp"], 8.0),
        "latency_h": proto["latency_h"] * np.exp(0.6 * rng.standard_normal(n)),
        "tone": np.clip(proto["tone"] + 0.2 * rng.standard_normal(n), -0.95, 0.95),
        "company_size": company_size,
        "plan": plan.astype(np.int8),
        "industry": rng.choice(len(INDUSTRIES), size=n, p=_INDUSTRY_P).astype(np.int8),
    }
    run_rate = proto["run"] * np.exp(0.35 * rng.standard_normal(n))
    breadth = np.clip(3.6 - 1.1 * (t["eng"] - 1.0) + 0.3 * rng.standard_normal(n), 1.4, 5.0)
    country = rng.choice(len(COUNTRIES), size=n, p=_COUNTRY_P).astype(np.int8)
    p_convert = _sigmoid(conversion_logit(t))

    # After conversion: engagement partly carried over from the trial, partly new.
    eng_paid = t["eng"] + 0.25 + 0.6 * (t["fit"] - 0.7) + 0.3 * rng.standard_normal(n)
    act_paid = np.clip(t["act"] + 0.1 + 0.15 * (eng_paid - t["eng"]), 0.1, 0.95)
    churn_hazard = _sigmoid(
        -3.1 - 1.1 * (eng_paid - 1.45) - 0.5 * t["tone"] + _PLAN_CHURN_EFFECT[plan]
    )
    acv = _PLAN_ACV[plan] * (company_size / 30.0) ** 0.25
    deal_value = np.round(acv * np.exp(DEAL_LOG_SD * rng.standard_normal(n)), 2)

    return Traits(
        persona=persona,
        setup=t["setup"],
        setup_days=t["setup_days"],
        fit=t["fit"],
        eng=t["eng"],
        act=t["act"],
        fade=t["fade"],
        team=t["team"].astype(np.int64),
        comm=t["comm"],
        resp=t["resp"],
        latency_h=t["latency_h"],
        tone=t["tone"],
        run_rate=run_rate,
        breadth=breadth,
        company_size=company_size,
        industry=t["industry"],
        country=country,
        plan=t["plan"],
        p_convert=p_convert,
        eng_paid=eng_paid,
        act_paid=act_paid,
        churn_hazard=churn_hazard,
        deal_value=deal_value,
        deal_log_mean=np.log(acv),
    )


def p_churn_within(hazard_monthly: np.ndarray, days: float) -> np.ndarray:
    """P(churn within ``days`` of a day while paying), continuous-time equivalent."""
    return 1.0 - (1.0 - hazard_monthly) ** (days / DAYS_PER_MONTH)


def expected_deal_value(
    deal_log_mean: np.ndarray, quote: np.ndarray, quote_error_sd: float, quote_bias: float
) -> tuple[np.ndarray, np.ndarray]:
    """The generator's own best guess of each deal value: ``(E[value], log-sd)``.

    The deal is ``exp(deal_log_mean + DEAL_LOG_SD z)`` and the quote (where there is
    one) ``value * quote_bias * exp(quote_error_sd u)``, so the log value given the
    quote is normal (the conjugate update of a normal prior by a normal measurement).
    This is the oracle the backtest's floor uses; a shipping forecast cannot know
    ``deal_log_mean`` and must learn the quote's bias and error from past wins.
    """
    mu = np.asarray(deal_log_mean, dtype=np.float64)
    q = np.asarray(quote, dtype=np.float64)
    prior_var, err_var = DEAL_LOG_SD**2, float(quote_error_sd) ** 2
    has = np.isfinite(q) & (q > 0)
    gain = prior_var / (prior_var + err_var)
    measured = np.log(np.where(has, q, 1.0)) - np.log(quote_bias)
    mean = np.where(has, mu + gain * (measured - mu), mu)
    var = np.where(has, prior_var * err_var / (prior_var + err_var), prior_var)
    return np.exp(mean + var / 2.0), np.sqrt(var)
