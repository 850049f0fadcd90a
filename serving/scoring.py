"""Scoring with explanations: feature values in, probabilities and reasons out.

One code path for the online service and the batch job. The conversion model
scores trials; the churn model scores paying accounts (``customer_days_paying``
set). Each score carries its exact explanation: LightGBM's TreeSHAP
contributions (``pred_contrib``) scaled by the Platt slope, so
``base_value + sum(contributions) == logit(p)`` exactly; the top positive and
negative factors get a plain-English sentence (``serving.reasons``) and the rest
is summed into ``other`` so the listed numbers still add up.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from features.config import CompanyConfig
from features.feature_table import TRIAL_END_ONLY_NOTE, trial_end_only
from features.personas import (
    PERSONA_INPUTS,
    PERSONAS,
    PersonaLevels,
    assign_persona_names,
    compute_pql_values,
)
from features.spec import FeatureSpec
from models.artifact import sigmoid
from models.loader import LoadedModel, load_serving_model
from serving.reasons import ReasonContext, build_reason_context, describe_feature

log = logging.getLogger("trialcast.serving")

PAYING_COLUMN = "customer_days_paying"
#: Rows up to this many are predicted on one thread (OpenMP start-up costs more).
SINGLE_THREAD_ROWS = 64


class FeatureInputError(ValueError):
    """A feature payload the models cannot score; the message names the field."""


@dataclass
class ScoringModels:
    """The loaded models plus what scoring needs around them.

    Attributes:
        config: the company config (persona and PQL rules, vocabulary).
        conversion: the conversion model (required).
        churn: the churn model, if one is registered.
    """

    config: CompanyConfig
    conversion: LoadedModel
    churn: LoadedModel | None = None
    contexts: dict[str, ReasonContext] = field(default_factory=dict)
    numeric: frozenset[str] = frozenset()
    categorical: frozenset[str] = frozenset()
    _specs: dict[tuple[str, str], FeatureSpec] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        cats: set[str] = set()
        nums: set[str] = set()
        for loaded in self.loaded():
            model = loaded.model
            cats.update(model.categories)
            nums.update(f for f in model.features if f not in model.categories)
            self.contexts[loaded.kind] = build_reason_context(self.config, self.spec(loaded.kind))
        nums.update(PERSONA_INPUTS)
        nums.update(c.feature for c in self.config.pql.conditions if not isinstance(c.value, str))
        nums.add(PAYING_COLUMN)
        self.categorical = frozenset(cats)
        self.numeric = frozenset(nums - cats)

    def loaded(self) -> list[LoadedModel]:
        """The models present, conversion first."""
        return [m for m in (self.conversion, self.churn) if m is not None]

    def spec(self, kind: str = "conversion") -> FeatureSpec | None:
        """The feature spec the ``kind`` model was trained with (``None`` if not recorded).

        Parsed once per model (it is read on every online request).
        """
        loaded = next((m for m in self.loaded() if m.kind == kind), None)
        if loaded is None or not loaded.model.spec_json:
            return None
        key = (kind, loaded.model.spec_json)
        if key not in self._specs:
            self._specs[key] = FeatureSpec.from_json(loaded.model.spec_json)
        return self._specs[key]

    @cached_property
    def persona_levels(self) -> PersonaLevels:
        """The company's lead-type levels the conversion model was trained with
        (the seed's absolute defaults for a model that recorded none)."""
        spec = self.spec("conversion")
        return PersonaLevels.from_dict(spec.persona_levels if spec is not None else None)

    @cached_property
    def persona_rates(self) -> dict[str, dict[str, float]]:
        """Observed conversion per lead type in the model's training window (may be empty)."""
        spec = self.spec("conversion")
        return dict(spec.persona_rates) if spec is not None else {}

    @property
    def known_features(self) -> frozenset[str]:
        """Every feature name a payload may carry."""
        return self.numeric | self.categorical


def load_scoring_models(
    config: CompanyConfig,
    *,
    alias: str | None = None,
    tracking_uri: str | None = None,
    cache_root: str | None = None,
) -> ScoringModels:
    """The conversion model (required) and the churn model (if registered and promoted).

    When the conversion model came from the cache (registry down), the churn model
    is taken from the cache at once too, without waiting for the registry again.
    A churn model that cannot be served is left out with a warning: trials are
    still scored.
    """
    conversion = load_serving_model(
        config, "conversion", alias=alias, tracking_uri=tracking_uri, cache_root=cache_root
    )
    try:
        churn: LoadedModel | None = load_serving_model(
            config,
            "churn",
            alias=alias,
            tracking_uri=tracking_uri,
            cache_root=cache_root,
            wait=0.0 if conversion.source == "cache" else None,
        )
    except Exception as exc:  # no churn model (or not servable): trials are still scored
        log.warning("no churn model served: %s", str(exc).splitlines()[0] if str(exc) else exc)
        churn = None
    return ScoringModels(config=config, conversion=conversion, churn=churn)


def check_feature_records(
    models: ScoringModels, records: Sequence[Mapping[str, Any]], *, where: str = "accounts"
) -> None:
    """Refuse unknown feature names and values of the wrong type, naming the field.

    Raises:
        FeatureInputError: e.g. ``accounts[3].features.firmo_plan: expected text``.
    """
    known = models.known_features
    for i, record in enumerate(records):
        for name, value in record.items():
            path = f"{where}[{i}].features.{name}"
            if name not in known:
                raise FeatureInputError(f"{path}: unknown feature (not used by the models)")
            if value is None:
                continue
            if name in models.categorical:
                if not isinstance(value, str):
                    raise FeatureInputError(f"{path}: expected text or null")
            elif isinstance(value, (str, bool)) or not _finite(value):
                raise FeatureInputError(f"{path}: expected a finite number or null")


def _finite(value: Any) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _value(raw: Any) -> float | str | None:
    if raw is None:
        return None
    if isinstance(raw, str):
        return raw
    try:
        out = float(raw)
    except (TypeError, ValueError):
        return str(raw)
    return None if math.isnan(out) else out


def explain_rows(
    loaded: LoadedModel,
    M: np.ndarray,
    records: Sequence[Mapping[str, Any]],
    context: ReasonContext,
    *,
    top_k: int = 5,
    explain_all: bool = False,
) -> list[dict[str, Any]]:
    """Score and explain each row of ``M`` (the model matrix of ``records``).

    Returns:
        One explanation dict per row: ``model``, ``model_name``, ``model_version``,
        ``base_value``, ``logit``, ``probability``, ``positive`` / ``negative`` (the
        ``top_k`` largest contributions of each sign, each a factor dict with
        ``code``, ``text``, ``value``, ``contribution``), ``other`` (the sum of the
        rest) and, with ``explain_all``, ``all`` factors.
    """
    model = loaded.model
    threads = 1 if len(M) <= SINGLE_THREAD_ROWS else 0
    values, base = model.explain_matrix(M, num_threads=threads)
    logits = base + values.sum(axis=1)
    k = max(0, min(top_k, values.shape[1]))
    order = np.argsort(values, axis=1, kind="stable")
    names = model.features
    out: list[dict[str, Any]] = []
    for i, record in enumerate(records):
        row = values[i]

        def factor(j: int, row: np.ndarray = row, record: Mapping[str, Any] = record) -> dict:
            name = names[j]
            return {
                "code": name,
                "text": describe_feature(name, record, context),
                "value": _value(record.get(name)),
                "contribution": float(row[j]),
            }

        neg = [int(j) for j in order[i, :k] if row[j] < 0]
        pos = [int(j) for j in order[i, ::-1][:k] if row[j] > 0]
        shown = float(row[pos].sum() + row[neg].sum()) if (pos or neg) else 0.0
        logit = float(logits[i])
        item: dict[str, Any] = {
            "model": model.kind,
            "model_name": loaded.name,
            "model_version": loaded.version,
            "base_value": float(base),
            "logit": logit,
            "probability": sigmoid(logit),
            "positive": [factor(j) for j in pos],
            "negative": [factor(j) for j in neg],
            "other": float(row.sum()) - shown,
        }
        if explain_all:
            item["all"] = [factor(j) for j in np.argsort(-np.abs(row), kind="stable")]
        out.append(item)
    return out


def compute_persona_and_pql(
    records: Sequence[Mapping[str, Any]],
    config: CompanyConfig,
    levels: PersonaLevels | None = None,
) -> tuple[list[str], list[str], np.ndarray]:
    """Persona, playbook line and PQL flag of each feature mapping.

    The same rules as ``features.personas`` (its array cores), without building a
    frame: this runs on every online request.
    """
    n = len(records)
    columns = {
        c: np.array([_number(r.get(c), 0.0) for r in records], dtype=np.float64)
        for c in PERSONA_INPUTS
    }
    personas = [str(x) for x in assign_persona_names(columns, levels)]
    playbooks = [PERSONAS[p].playbook for p in personas]
    raw: dict[str, np.ndarray] = {}
    for cond in config.pql.conditions:
        if isinstance(cond.value, str):
            raw[cond.feature] = np.array([r.get(cond.feature) for r in records], dtype=object)
        else:
            raw[cond.feature] = np.array(
                [_number(r.get(cond.feature), np.nan) for r in records], dtype=np.float64
            )
    return personas, playbooks, compute_pql_values(raw, config, n)


def check_trial_end_model(
    models: ScoringModels,
    records: Sequence[Mapping[str, Any]],
    paying: np.ndarray,
    allow: bool | None,
) -> list[list[str]]:
    """Per record, the warnings of a trial-end conversion model; refuse running trials.

    A model trained on a feature table without ``as_of`` only knows whole-trial
    values: a trial on day 3 has not produced them yet, so its score would be
    silently wrong. Such records are refused unless ``allow`` (or the config's
    ``[feature_table].score_before_trial_end``) says to score them anyway.
    """
    if not trial_end_only(models.spec("conversion")):
        return [[] for _ in records]
    allowed = models.config.feature_table.score_before_trial_end if allow is None else allow
    out: list[list[str]] = []
    for i, record in enumerate(records):
        if paying[i]:
            out.append([])
            continue
        remaining = _value(record.get("trial_days_remaining"))
        running = isinstance(remaining, float) and remaining > 0
        if running and not allowed:
            raise FeatureInputError(
                f"accounts[{i}].features.trial_days_remaining: {remaining:g} days left, but the "
                f"conversion model is a {TRIAL_END_ONLY_NOTE}. Score it after its trial ends, "
                "or set [feature_table].score_before_trial_end = true (CLI: "
                "--allow-before-trial-end) to score running trials anyway"
            )
        note = TRIAL_END_ONLY_NOTE
        if running:
            note += f"; this trial still has {remaining:g} days to run (scored because told to)"
        elif remaining is None:
            note += "; trial_days_remaining not given: assumed ended"
        out.append([note])
    return out


def _number(raw: Any, default: float) -> float:
    value = _value(raw)
    return value if isinstance(value, float) else default


def score_feature_records(
    models: ScoringModels,
    records: Sequence[Mapping[str, Any]],
    *,
    top_k: int = 5,
    explain_all: bool = False,
    matrices: Mapping[str, np.ndarray] | None = None,
    allow_before_trial_end: bool | None = None,
) -> list[dict[str, Any]]:
    """Scores, persona, PQL and explanations of accounts given as feature mappings.

    Trials (no ``customer_days_paying``) get ``p_convert`` and the conversion
    explanation; paying accounts get ``p_churn`` and the churn explanation (when
    a churn model is loaded). Missing features are scored as missing values.

    Args:
        models: the loaded models.
        records: one feature mapping per account (checked with ``check_feature_records``).
        top_k: factors of each sign to list.
        explain_all: also list every contribution.
        matrices: precomputed model matrices per kind for all ``records`` (batch path).
        allow_before_trial_end: score running trials with a trial-end model
            (default: ``[feature_table].score_before_trial_end``).

    Returns:
        One dict per record with ``p_convert``, ``p_churn``, ``persona``,
        ``persona_observed`` (the type's observed conversion in the training window:
        ``observed``, ``low``, ``high``, ``trials``, ``stated``; None if not recorded),
        ``playbook``, ``pql``, ``lifecycle``, ``explanations`` and ``warnings``.

    Raises:
        FeatureInputError: a running trial (``trial_days_remaining`` > 0) given to
            a trial-end model without ``allow_before_trial_end``.
    """
    n = len(records)
    paying = np.array([_value(r.get(PAYING_COLUMN)) is not None for r in records], dtype=bool)
    warnings = check_trial_end_model(models, records, paying, allow_before_trial_end)
    persona, playbook, pql = compute_persona_and_pql(records, models.config, models.persona_levels)
    observed = models.persona_rates
    results: list[dict[str, Any]] = [
        {
            "lifecycle": "customer" if paying[i] else "trial",
            "p_convert": None,
            "p_churn": None,
            "persona": persona[i],
            "persona_observed": observed.get(persona[i]),
            "playbook": playbook[i],
            "pql": bool(pql[i]),
            "explanations": [],
            "warnings": list(warnings[i]),
        }
        for i in range(n)
    ]
    for loaded, rows, key in (
        (models.conversion, np.flatnonzero(~paying), "p_convert"),
        (models.churn, np.flatnonzero(paying), "p_churn"),
    ):
        if loaded is None or len(rows) == 0:
            continue
        subset = [records[int(i)] for i in rows]
        full = matrices.get(loaded.kind) if matrices is not None else None
        M = full[rows] if full is not None else loaded.model.matrix(subset)
        explained = explain_rows(
            loaded,
            M,
            subset,
            models.contexts[loaded.kind],
            top_k=top_k,
            explain_all=explain_all,
        )
        for i, item in zip(rows, explained, strict=True):
            results[int(i)][key] = item["probability"]
            results[int(i)]["explanations"].append(item)
    return results
