"""Company configuration: one typed TOML file per company, checked once on load.

The config says where a company's tables live and how their columns map onto the
data contract, which milestones make up its activation checklist, which events are
its core ("golden") features, the PQL rule, the trial / conversion / churn windows
and which firmographic columns become features. Nothing in the feature code knows
any company's event names: they all come from here.
"""

from __future__ import annotations

import hashlib
import json
import os
import tomllib
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from features.config_funnel import FunnelConfig
from features.config_sources import (
    CONTRACT_COLUMNS,
    FeatureTableColumn,
    FeatureTableConfig,
    SourceConfig,
    SourcesConfig,
    TableName,
)
from features.config_sources import StrictModel as _Strict
from models.config_sections import ModelConfig, PromotionConfig, RegistryConfig

__all__ = [
    "CONTRACT_COLUMNS",
    "FeatureTableColumn",
    "FeatureTableConfig",
    "SourceConfig",
    "SourcesConfig",
    "TableName",
]


#: Days after trial end at which open trials are snapshotted by default (those inside
#: the conversion window are kept).
DEFAULT_POST_TRIAL_DAYS = (1, 3, 7, 14, 21, 30, 45, 60, 90, 120, 180, 270, 365)
#: Days before the conversion window closes at which open trials are snapshotted too
#: by default: the last week of the window, where the chance left falls to nothing
#: (with a 30-day window the grid above stopped at 21 days after the end, and trials
#: 3-4 weeks past their end were forecast at 1.8-26x their true chance:
#: docs/benchmarks.md, session 11).
WINDOW_TAIL_DAYS = (7, 3, 1)


class TrialConfig(_Strict):
    """Trial, conversion and churn windows, in days.

    Attributes:
        default_trial_days: trial length used when accounts are derived from events,
            or when the accounts table has no ``trial_end`` column.
        conversion_window_days: a trial counts as converted when ``converted_at`` is
            before ``trial_end`` plus this many days.
        snapshot_days: days into the trial at which training snapshots are taken
            (trial end is always added).
        snapshot_shares: shares of each trial's length (0 < share < 1) at which open
            trials are snapshotted too (``p50`` = half-way): trials of different
            lengths are then all seen in the middle of their trial, where scoring
            meets them (day snapshots alone leave a long trial's middle unseen).
        random_snapshots: open trials are also snapshotted at this many moments
            drawn uniformly over each trial and its conversion window (``r1``,
            ``r2``...; the draw is a hash of the account id, so the same account
            gets the same moments in every export). The states ``score`` and
            ``forecast`` meet are spread like that (an origin falls anywhere in a
            trial's life), while day, share and post-trial snapshots sit at a few
            fixed moments the model must interpolate between.
        midnight_snapshots: open trials are also snapshotted at the first this many
            midnights (00:00 UTC) after their start (``u1``, ``u2``...). Scheduled
            scoring and forecast origins fall on a midnight (a Monday's 00:00 for a
            weekly run) while day snapshots sit at the start's own time of day: a
            trial begun on Friday afternoon is never seen "two and a half days in,
            only a weekend elapsed" unless a snapshot falls there.
        post_trial_snapshot_days: days after trial end at which trials still open
            are snapshotted too (the state ``score`` and ``forecast`` meet for
            trials deciding after their end); default 1, 3, 7, 14, 21, 30, 45, 60,
            90 ... kept while inside the conversion window, plus 7, 3 and 1 days
            before the window closes (``WINDOW_TAIL_DAYS``): a trial's chance falls
            to nothing as its window runs out, and without rows there the model
            carried the last snapshot's chance to the window's end.
        churn_horizon_days: churn label = churned within this many days of a snapshot.
        churn_snapshot_every_days: spacing of churn snapshots of paying accounts.
        conversion_flag: for exports with no conversion date: an accounts column
            (or feature-table column) holding yes/no (1/0, true/false) "did it
            convert". A flag has no timing, so a converted trial's conversion is
            placed at its trial end: the model learns from snapshots up to trial
            end (post-trial snapshots are off unless ``post_trial_snapshot_days``
            is set), and a trial past its end that is not flagged counts as not
            converted yet. Never a feature; not allowed together with a
            ``converted_at`` column.
    """

    default_trial_days: int = Field(14, gt=0)
    conversion_window_days: int = Field(30, ge=0)
    snapshot_days: list[int] = Field(default_factory=lambda: [1, 3, 7, 14])
    snapshot_shares: list[float] = Field(default_factory=list)
    random_snapshots: int = Field(0, ge=0, le=20)
    midnight_snapshots: int = Field(0, ge=0, le=14)
    post_trial_snapshot_days: list[int] | None = None
    churn_horizon_days: int = Field(90, gt=0)
    churn_snapshot_every_days: int = Field(30, gt=0)
    conversion_flag: str | None = None

    @field_validator("snapshot_days")
    @classmethod
    def _positive_sorted(cls, v: list[int]) -> list[int]:
        if not v or any(d <= 0 for d in v):
            raise ValueError("snapshot_days must be a non-empty list of positive days")
        return sorted(set(v))

    @field_validator("snapshot_shares")
    @classmethod
    def _inside_trial(cls, v: list[float]) -> list[float]:
        if any(not 0 < x < 1 for x in v):
            raise ValueError("snapshot_shares must be shares of the trial between 0 and 1")
        return sorted({round(x, 2) for x in v})

    @field_validator("post_trial_snapshot_days")
    @classmethod
    def _positive_post(cls, v: list[int] | None) -> list[int] | None:
        if v is not None and any(d <= 0 for d in v):
            raise ValueError("post_trial_snapshot_days must be positive days after trial end")
        return None if v is None else sorted(set(v))

    def post_trial_days(self) -> list[int]:
        """Days after trial end to snapshot open trials at, all inside the window."""
        days = self.post_trial_snapshot_days
        if days is None and self.conversion_flag is not None:
            return []  # a flag places conversions at trial end: no timing after it
        window = self.conversion_window_days
        if days is None:
            days = sorted(
                {d for d in DEFAULT_POST_TRIAL_DAYS if d < window}
                | {window - d for d in WINDOW_TAIL_DAYS if window - d > 0}
            )
        return [d for d in days if d < window]


class ValidationRules(_Strict):
    """Plausibility limits used when checking input rows.

    Attributes:
        max_days_before_trial: events more than this many days before their
            account's ``trial_start`` are implausible and quarantined.
        max_days_after_export: events later than the export time plus this many
            days (clock skew) are implausible and quarantined.
        export_time: the moment the data was exported (ISO 8601); defaults to the
            latest event timestamp.
    """

    max_days_before_trial: float = Field(1.0, ge=0)
    max_days_after_export: float = Field(1.0, ge=0)
    export_time: str | None = None


class Milestone(_Strict):
    """One step of the activation checklist.

    Attributes:
        name: what sales read ("Connected a data source").
        events: event name(s) in the company's vocabulary that count for it.
        min_count: how many such events make the step done.
        deadline_days: the step only counts if done within this many days of
            trial start.
        stage: funnel moment it marks: ``setup``, ``activation`` or ``aha``.
    """

    name: str
    events: list[str] = Field(min_length=1)
    min_count: int = Field(1, ge=1)
    deadline_days: float | None = Field(None, gt=0)
    stage: Literal["setup", "activation", "aha"] = "activation"


class ActivationConfig(_Strict):
    """The ordered activation checklist (5-10 steps that lead to first value)."""

    milestones: list[Milestone] = Field(default_factory=list)


class EngagementConfig(_Strict):
    """Engagement settings.

    Attributes:
        core_events: the company's core ("golden") feature events.
        invite_events: events that mean a teammate was invited.
        top_k_event_types: how many of the most frequent event types get their
            own count feature.
        recent_window_days: the "recent" window for counts, active days and trend.
        decay_half_life_days: half-life of the time-decayed engagement score.
        usual_day_rates: add the "per usual day" columns (events, active days and
            core events over the company's own week, and recency in usual days;
            ``features.weekdays``). Off by default: on weekly backtests they remove
            the weekday bias of running trials (Monday-00:00 origins 9-11% low ->
            within +-2.2%) but revenue MAPE rose 3.4-5.7 points (a deal-size
            calibration error they unmask) and the monitor saw the onboarding
            scenario's input shift less often (docs/benchmarks.md, "Forecast:
            usual days, session 9").
    """

    core_events: list[str] = Field(default_factory=list)
    invite_events: list[str] = Field(default_factory=list)
    top_k_event_types: int = Field(20, ge=0, le=500)
    recent_window_days: int = Field(7, gt=0)
    decay_half_life_days: float = Field(7.0, gt=0)
    usual_day_rates: bool = False


class CommunicationConfig(_Strict):
    """Communication settings.

    Attributes:
        reply_window_hours: an inbound message within this many hours of an
            outbound touch counts as a reply to it.
    """

    reply_window_hours: float = Field(72.0, gt=0)


class FirmographicsConfig(_Strict):
    """Account columns used as features, and what makes a "big logo".

    Attributes:
        known_at: per account column, when its value is known: ``"signup"`` (may
            feed the conversion model) or ``"current"`` (today's value, e.g. a
            plan or seats set at purchase: never a feature). Undeclared columns
            are treated as ``"signup"`` unless their missingness separates the
            label (see ``[leakage].missingness_auc``).
    """

    numeric: list[str] = Field(default_factory=list)
    categorical: list[str] = Field(default_factory=list)
    size_column: str | None = None
    big_company_size: float = 1000.0
    known_at: dict[str, Literal["signup", "current"]] = Field(default_factory=dict)


class LeakageConfig(_Strict):
    """Outcome events and post-purchase attributes, caught before any feature is built.

    Attributes:
        exclude_events: events removed from every feature (aggregates included),
            milestone discovery and PQL rules.
        allow_events: detected events to keep anyway (truly known before the outcome).
        auto_exclude: detect outcome events / attributes and exclude them (loudly).
        min_share_converters, max_share_others: an event present during the trial
            for at least this share of converters and at most that share of the
            others separates the label almost perfectly.
        cluster_days, cluster_share: an event whose occurrences lie within
            ``cluster_days`` of ``converted_at`` (``cluster_share`` of them) marks
            the conversion itself.
        missingness_auc: an account column whose filled / missing flag alone
            reaches this ROC AUC is known only after purchase.
        model_leak_auc: a whole model with test ROC AUC at or above this is a
            probable leak and is never promoted.
        model_leak_log_loss: likewise a test log loss at or below this.
    """

    exclude_events: list[str] = Field(default_factory=list)
    allow_events: list[str] = Field(default_factory=list)
    auto_exclude: bool = True
    min_share_converters: float = Field(0.9, gt=0, le=1)
    max_share_others: float = Field(0.05, ge=0, lt=1)
    cluster_days: float = Field(1.0, gt=0)
    cluster_share: float = Field(0.8, gt=0, le=1)
    missingness_auc: float = Field(0.8, gt=0.5, le=1)
    model_leak_auc: float = Field(0.98, gt=0.5, le=1)
    model_leak_log_loss: float = Field(0.02, ge=0)


class PqlCondition(_Strict):
    """One clause of the PQL rule: ``feature op value`` on a built feature column."""

    feature: str
    op: Literal[">=", ">", "<=", "<", "==", "!="]
    value: float | str


class PqlConfig(_Strict):
    """An account is a product-qualified lead when all conditions hold."""

    conditions: list[PqlCondition] = Field(default_factory=list)


#: LightGBM defaults (no class weights, so the raw scores stay calibratable).
#: Lead-type levels a config may pin (see ``features.personas.PersonaLevels``).
PERSONA_LEVEL_NAMES = (
    "activation_high",
    "activation_low",
    "share_high",
    "share_low",
    "depth_high",
    "depth_low",
    "talk_min",
    "negative_tone",
    "positive_tone",
    "fading_log_ratio",
    "fizzler_min_activation",
)


class PersonaConfig(_Strict):
    """Lead-type levels. By default they come from the company's own trials (quantiles
    over the training window, stored with the model); any level set here is used
    as given instead, e.g. ``[personas.levels] talk_min = 3``."""

    levels: dict[str, float] = Field(default_factory=dict)

    @field_validator("levels")
    @classmethod
    def _known_levels(cls, v: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(v) - set(PERSONA_LEVEL_NAMES))
        if unknown:
            raise ValueError(f"unknown level(s) {unknown}; known: {', '.join(PERSONA_LEVEL_NAMES)}")
        return v


class SegmentSpec(_Strict):
    """One breakdown of the revenue forecast.

    Attributes:
        column: an accounts-table column (text or numeric) or ``persona``.
        bands: upper edges of numeric bands (``[10, 50, 200]`` gives ``<=10``,
            ``11-50``, ``51-200``, ``>200``); values that are not numbers (text
            bands such as ``"51-200"``) are kept as they are.
        name: the dimension's name in the outputs (default: the column).
    """

    column: str
    bands: list[float] | None = None
    name: str | None = None

    @field_validator("bands")
    @classmethod
    def _increasing(cls, v: list[float] | None) -> list[float] | None:
        if v is not None and (not v or any(b >= a for a, b in zip(v[1:], v, strict=False))):
            raise ValueError("bands must be a non-empty, strictly increasing list of edges")
        return v


class ForecastConfig(_Strict):
    """Revenue forecast settings.

    Attributes:
        segments: breakdowns of the forecast; default: persona, the
            firmographics ``size_column`` (banded at 10 / 50 / 200 / 1000 when
            numeric) and every categorical firmographics column.
        default_deal_value: the annual value (in ``currency``) given to an open
            trial that nothing else can value: no quote, and no deal with a
            ``deal_value`` won before the scoring moment (a new company, or an
            export without deal values). Without it such trials are scored without
            revenue (``deal_value`` empty) and ``forecast`` refuses.
    """

    segments: list[SegmentSpec] | None = None
    default_deal_value: float | None = Field(None, gt=0)


#: The output folder under the working directory when nothing names one, and under a
#: chosen folder whose output subfolders would be Python packages (a source checkout).
DEFAULT_OUTPUT_FOLDER = "trialcast_output"
#: Set, it overrides every config's output folder (the CLI sets it from the config
#: when the user has not, so a job and the service it starts agree).
ENV_OUTPUT_DIR = "TRIALCAST_OUTPUT_DIR"
#: Output subfolders (``<root>/features``, ``<root>/models``) that may clash with packages.
OUTPUT_SUBFOLDERS = ("features", "models")


def outside_packages(root: Path) -> Path:
    """``root``, or ``root/trialcast_output`` when an output subfolder of ``root``
    (``features/``, ``models/``) is a Python package: outputs never land in code."""
    if any((root / sub / "__init__.py").is_file() for sub in OUTPUT_SUBFOLDERS):
        return root / DEFAULT_OUTPUT_FOLDER
    return root


def env_output_root() -> Path | None:
    """The output folder ``TRIALCAST_OUTPUT_DIR`` names (kept outside packages), or None."""
    env = os.environ.get(ENV_OUTPUT_DIR)
    return outside_packages(Path(env).resolve()) if env else None


class CompanyConfig(_Strict):
    """Everything trialcast knows about one company."""

    company: str = "unnamed"
    #: ISO 4217 code money is shown in (deal values, MRR, the finance page).
    currency: str = Field("USD", pattern=r"^[A-Z]{3}$")
    sources: SourcesConfig = Field(default_factory=SourcesConfig)
    trial: TrialConfig = Field(default_factory=TrialConfig)  # type: ignore[arg-type]
    validation: ValidationRules = Field(default_factory=ValidationRules)  # type: ignore[arg-type]
    activation: ActivationConfig = Field(default_factory=ActivationConfig)
    engagement: EngagementConfig = Field(default_factory=EngagementConfig)  # type: ignore[arg-type]
    communication: CommunicationConfig = Field(default_factory=CommunicationConfig)  # type: ignore[arg-type]
    firmographics: FirmographicsConfig = Field(default_factory=FirmographicsConfig)
    pql: PqlConfig = Field(default_factory=PqlConfig)
    personas: PersonaConfig = Field(default_factory=PersonaConfig)
    feature_table: FeatureTableConfig = Field(default_factory=FeatureTableConfig)
    leakage: LeakageConfig = Field(default_factory=LeakageConfig)  # type: ignore[arg-type]
    promotion: PromotionConfig = Field(default_factory=PromotionConfig)  # type: ignore[arg-type]
    model: ModelConfig = Field(default_factory=ModelConfig)  # type: ignore[arg-type]
    registry: RegistryConfig = Field(default_factory=RegistryConfig)
    forecast: ForecastConfig = Field(default_factory=ForecastConfig)  # type: ignore[arg-type]
    funnel: FunnelConfig = Field(default_factory=FunnelConfig)  # type: ignore[arg-type]
    output_dir: str = "."
    base_dir: Path = Field(default=Path("."), exclude=True)

    @model_validator(mode="after")
    def _flag_is_no_feature(self) -> CompanyConfig:
        flag = self.trial.conversion_flag
        firmo = self.firmographics
        if flag is not None and flag in [
            *firmo.numeric,
            *firmo.categorical,
            *self.feature_table.columns,
        ]:
            raise ValueError(
                f"trial.conversion_flag {flag!r} is the label; it cannot also be a feature "
                "([firmographics] or [feature_table.columns]): remove it there"
            )
        return self

    @property
    def output_root(self) -> Path:
        """Where every output goes (features, models, scores, forecasts, reports):
        ``output_dir`` resolved against the config file's folder (its
        ``trialcast_output/`` subfolder when that folder holds the ``models`` or
        ``features`` package, see ``outside_packages``)."""
        return outside_packages(self.resolve_path(self.output_dir))

    @property
    def run_output_root(self) -> Path:
        """Where this run writes: ``TRIALCAST_OUTPUT_DIR`` when set (it overrides the
        config's ``output_dir``, for features and quarantine as for models, scores and
        forecasts), else ``output_root``."""
        return env_output_root() or self.output_root

    def config_hash(self) -> str:
        """A short stable hash of the settings (not of where the file lives)."""
        payload = json.dumps(self.model_dump(mode="json", exclude={"output_dir"}), sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:12]

    def resolve_path(self, path: str) -> Path:
        """A source path, resolved against the config file's folder."""
        p = Path(path)
        return p if p.is_absolute() else (self.base_dir / p)


class ConfigError(ValueError):
    """The config file is missing, not TOML, or breaks the schema."""


def load_config(path: str | Path) -> CompanyConfig:
    """Read and check a company config (TOML).

    Raises:
        ConfigError: with every problem listed as ``section.key: message``.
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {p} not found; start from `trialcast init-config`")
    try:
        raw = tomllib.loads(p.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p} is not valid TOML: {exc}") from exc
    return parse_config(raw, base_dir=p.resolve().parent, origin=str(p))


def parse_config(raw: dict, *, base_dir: Path = Path("."), origin: str = "config") -> CompanyConfig:
    """Check an already-parsed config mapping; see ``load_config``."""
    try:
        return CompanyConfig.model_validate({**raw, "base_dir": base_dir})
    except ValidationError as exc:
        problems = "\n".join(
            f"  {'.'.join(str(x) for x in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"{origin} has {exc.error_count()} problem(s):\n{problems}") from exc


def starter_config_text() -> str:
    """The commented starter config ``trialcast init-config`` writes: every section."""
    return resources.files("features").joinpath("starter_config.toml").read_text()


def demo_config_text() -> str:
    """The TOML text of the shipped demo config."""
    return resources.files("features.demo").joinpath("config.toml").read_text()


def load_demo_config(data_dir: str | Path | None = None) -> CompanyConfig:
    """The shipped demo config, with sources pointing at ``data_dir`` if given."""
    raw = tomllib.loads(demo_config_text())
    base = Path(data_dir).resolve() if data_dir is not None else Path(".").resolve()
    return parse_config(raw, base_dir=base, origin="demo_config.toml")
