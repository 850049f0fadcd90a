"""Request and response models of the scoring API (they are its OpenAPI schema).

Limits live here, in one place: how many accounts per request, events per
account, factors per explanation. Anything outside them is a 400 that names the
field (``serving.http_errors`` gives every error the shape ``{error, field,
detail}``); impossible feature values are refused too (``serving.input_checks``).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from serving.input_checks import MAX_MONEY, range_problem

MAX_ACCOUNTS = 1_000
MAX_BATCH_ACCOUNTS = 5_000
MAX_EVENTS = 50_000
MAX_COMMUNICATIONS = 5_000
MAX_TOP_K = 50
MAX_FEATURES = 500

EARLIEST = datetime(1970, 1, 1)
LATEST = datetime(2200, 1, 1)


def _naive_utc(value: datetime) -> datetime:
    """Timezone-aware moments become naive UTC (the tables' form); far-off years are refused."""
    if value.tzinfo is not None:
        try:
            value = value.astimezone(UTC).replace(tzinfo=None)
        except OverflowError:  # year 1 with a positive offset is before year 1 in UTC
            value = datetime.min
    if not EARLIEST <= value < LATEST:
        raise ValueError(f"must be between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d}")
    return value


Moment = Annotated[datetime, AfterValidator(_naive_utc)]


class FeatureCatalog:
    """The feature names (and their kinds) the loaded models accept; set by the service."""

    numeric: frozenset[str] = frozenset()
    categorical: frozenset[str] = frozenset()
    active: bool = False

    @classmethod
    def set(cls, numeric: frozenset[str], categorical: frozenset[str]) -> None:
        """Make requests check feature names and value types against these sets."""
        cls.numeric, cls.categorical, cls.active = numeric, categorical, True

    @classmethod
    def check(cls, features: dict[str, Any]) -> dict[str, Any]:
        """Refuse unknown names and wrongly typed values, naming the feature."""
        if not cls.active:
            return features
        for name, value in features.items():
            if name in cls.categorical:
                if value is not None and not isinstance(value, str):
                    raise ValueError(f"feature {name!r} is categorical: give text or null")
            elif name in cls.numeric:
                if isinstance(value, str):
                    raise ValueError(f"feature {name!r} is numeric: give a number or null")
                problem = range_problem(name, value)
                if problem:
                    raise ValueError(problem)
            else:
                raise ValueError(f"unknown feature {name!r} (not used by the models)")
        return features


def check_accounts(accounts: list[FeatureAccount], where: str = "accounts") -> None:
    """Check every account's features against ``FeatureCatalog``.

    Raises:
        ValueError: ``"invalid accounts.<i>.features.<name>: <why>"`` for the first problem.
    """
    for i, account in enumerate(accounts):
        try:
            FeatureCatalog.check(account.features)
        except ValueError as exc:
            name = re.search(r"feature '([^']*)'", str(exc))
            field = f"{where}.{i}.features" + (f".{name.group(1)}" if name else "")
            raise ValueError(f"invalid {field}: {exc}") from None


Id = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Text = Annotated[str, StringConstraints(max_length=10_000)]
Number = Annotated[float, Field(allow_inf_nan=False)]
#: A feature value: a number, text (categorical) or null. Strict: ``true`` / ``false``
#: are refused instead of being scored as 1 / 0 without a word.
FeatureValue = (
    Annotated[float, Field(allow_inf_nan=False, strict=True)]
    | Annotated[str, StringConstraints(max_length=500)]
    | None
)
#: An account attribute (firmographics) of ``/score_events``: a yes/no column is fine.
AttributeValue = Number | Annotated[str, StringConstraints(max_length=500)] | None
Money = Annotated[float, Field(allow_inf_nan=False, ge=0, le=MAX_MONEY)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FeatureAccount(_Strict):
    """One account given by its feature values (as built by ``trialcast features``)."""

    account_id: Id = Field(description="The account's id (echoed back).")
    features: dict[Annotated[str, StringConstraints(max_length=200)], FeatureValue] = Field(
        max_length=MAX_FEATURES,
        description=(
            "Feature name -> value (number, text for categorical features, or null). "
            "Unknown names are refused; absent features count as missing. "
            "Accounts with customer_days_paying set are paying and get p_churn."
        ),
    )
    deal_value: Money | None = Field(None, description="Expected deal size (for expected value).")

    # Feature names, kinds and ranges are checked by ``check_accounts`` in the scoring
    # thread: as a validator it would run on the event loop (about 0.15 s per 1,000
    # accounts) and hold ``/livez`` while a large request is parsed.


class AccountRow(_Strict):
    """The account's row of the accounts table (contract columns plus firmographics)."""

    account_id: Id
    trial_start: Moment
    trial_end: Moment
    converted_at: Moment | None = None
    deal_value: Money | None = None
    mrr: Money | None = None
    churned_at: Moment | None = None
    attributes: dict[Annotated[str, StringConstraints(max_length=200)], AttributeValue] = Field(
        default_factory=dict,
        max_length=100,
        description="Other account columns, e.g. the configured firmographics (company_size).",
    )

    @model_validator(mode="after")
    def _trial_in_order(self) -> AccountRow:
        if self.trial_end < self.trial_start:
            raise ValueError("trial_end is before trial_start")
        return self


class EventRow(_Strict):
    """One product event (contract table ``events``)."""

    event: Annotated[str, StringConstraints(min_length=1, max_length=500)]
    timestamp: Moment
    user_id: Id | None = None


class CommunicationRow(_Strict):
    """One message or touch (contract table ``communications``)."""

    timestamp: Moment
    direction: Literal["inbound", "outbound"]
    channel: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    user_id: Id | None = None
    sentiment: Annotated[float, Field(ge=-1, le=1, allow_inf_nan=False)] | None = None
    text: Text | None = None


class Factor(BaseModel):
    """One reason behind a score."""

    code: str = Field(description="Stable factor code: the feature name.")
    text: str = Field(description="The reason in plain English.")
    value: float | str | None = Field(description="The account's feature value.")
    contribution: float = Field(description="Contribution to the score, in log-odds.")


class Explanation(BaseModel):
    """Exact explanation of one model's score: ``base_value + sum(all contributions) == logit``."""

    model: Literal["conversion", "churn"]
    model_name: str
    model_version: str
    base_value: float = Field(description="Log-odds of the average account.")
    logit: float = Field(description="The account's calibrated log-odds.")
    probability: float
    positive: list[Factor] = Field(description="Largest contributions raising the score.")
    negative: list[Factor] = Field(description="Largest contributions lowering the score.")
    other: float = Field(description="Sum of the contributions not listed.")
    all: list[Factor] | None = Field(None, description="Every contribution (explain_all).")


class PersonaObserved(BaseModel):
    """The lead type's conversion as observed in the model's training window."""

    observed: float = Field(description="Share of the type's trials that converted.")
    low: float = Field(description="Lower end of its 95% interval (Wilson).")
    high: float = Field(description="Upper end of its 95% interval (Wilson).")
    trials: float = Field(description="Trials of this type in the training window.")
    stated: float = Field(description="The seed's stated chance for the type.")


class AccountScore(BaseModel):
    """A scored account: probabilities, persona, PQL flag and the reasons."""

    account_id: str
    as_of: datetime
    lifecycle: str = Field(description="trial, deciding or customer (paying).")
    p_convert: float | None = Field(description="Probability the trial converts (trials).")
    p_churn: float | None = Field(description="Probability of churn (paying accounts).")
    deal_value: float | None
    expected_value: float | None = Field(description="p_convert x deal_value.")
    persona: str
    persona_observed: PersonaObserved | None = Field(
        None, description="The type's observed chance beside its stated one (if recorded)."
    )
    playbook: str
    pql: bool
    explanations: list[Explanation]
    warnings: list[str] = Field(default_factory=list)


class AccountSummary(BaseModel):
    """One row of the ranked account list (latest batch scores)."""

    account_id: str
    p_convert: float
    deal_value: float | None
    expected_value: float | None
    persona: str
    pql: bool
    trial_days_left: float


class ModelInfo(BaseModel):
    """A loaded model and where it came from."""

    kind: str
    name: str
    version: str
    alias: str
    source: str = Field(description="registry, or cache when the registry was unreachable.")
    detail: str | None = Field(None, description="Why the cache was used (registry error).")


class ServiceInfo(BaseModel):
    """What the service is serving."""

    company: str
    models: list[ModelInfo]
    scores_as_of: datetime | None
    scored_accounts: int
