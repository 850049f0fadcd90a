"""The two models trialcast trains, declared once: what differs between them.

Everything that used to be a branch on the kind's name is a field
here: when a training row enters (for the time split), which outcome it
predicts, whether customer-only columns are inputs, which baselines apply,
which registered name it gets, and how its training set is built. Code asks
``model_kind(name)`` and reads the declaration; a new model kind is one more
``ModelKind`` in ``KINDS``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from features.build import FeatureBuilder
from features.snapshots import TRAINING_SET_BUILDERS
from models.config_sections import RegistryConfig

TrainingSetBuilder = Callable[..., pd.DataFrame]


@dataclass(frozen=True)
class ModelKind:
    """One model kind.

    Attributes:
        name: ``"conversion"`` or ``"churn"`` (stored with every model artifact).
        entry_column: the column that orders rows in time for the split
            (a trial enters at ``trial_start``; a churn snapshot at its ``as_of``).
        outcome: the event the label marks, for messages ("converted").
        customer_features: whether paying-customer columns are model inputs.
        persona_baseline: whether the seven lead types' stated chances are a baseline.
        truth_column: the demo truth column of the ceiling (``None``: per snapshot).
        registry_field: the ``[registry]`` setting holding its registered name.
        build_training_set: ``(builder, export_time=...) -> labelled snapshots``.
        population: who its rows are, in words ("trials", "paying accounts").
        positives: who its positives are ("converters", "churners").
        scored: who a scoring job scores with it ("open trials", "paying customers").
        purged_split: split out of time with purged label windows (``True``) rather
            than by account in time order.
        more_data: what to do when there is too little data to train it.
        phase_calibrated: calibration adds an offset per trial phase (the model
            sees the trial day and length); a churn snapshot has no trial phase.
        monitored: ``trialcast monitor`` judges its champion (cohorts, drift).
        counted: what its outcome test counts, in words ("conversions", "churns").
        scored_lifecycles: the ``lifecycle`` values of the account view a
            scoring job scores with it by default.
        scores_customers: a scoring job scores paying customers (the customer
            view) rather than the open trials.
        training_file: the labelled-snapshot file a feature job writes for it.
    """

    name: str
    entry_column: str
    outcome: str
    customer_features: bool
    persona_baseline: bool
    truth_column: str | None
    registry_field: str
    build_training_set: TrainingSetBuilder
    population: str = "trials"
    positives: str = "converters"
    scored: str = "open trials"
    purged_split: bool = False
    more_data: str = ""
    phase_calibrated: bool = True
    monitored: bool = True
    counted: str = "conversions"
    scored_lifecycles: tuple[str, ...] = ("trial", "deciding")
    scores_customers: bool = False
    training_file: str = "trial_training.parquet"

    def registered_name(self, registry: RegistryConfig) -> str:
        """The registered model name of this kind (from ``[registry]``)."""
        return str(getattr(registry, self.registry_field))

    def training_set(
        self, builder: FeatureBuilder, export_time: pd.Timestamp | None = None
    ) -> pd.DataFrame:
        """This kind's labelled snapshots of ``builder``'s tables."""
        return self.build_training_set(builder, export_time=export_time)


CONVERSION = ModelKind(
    name="conversion",
    entry_column="trial_start",
    outcome="converted",
    customer_features=False,
    persona_baseline=True,
    truth_column=None,
    registry_field="conversion_model",
    build_training_set=TRAINING_SET_BUILDERS["conversion"],
    more_data="Add more history (older trials whose conversion window has closed), lower "
    "[model].min_positives in the config, or wait for more trials to finish.",
)
CHURN = ModelKind(
    name="churn",
    entry_column="as_of",
    outcome="churned",
    customer_features=True,
    persona_baseline=False,
    truth_column="p_churn_90d",
    registry_field="churn_model",
    build_training_set=TRAINING_SET_BUILDERS["churn"],
    population="paying accounts",
    positives="churners",
    scored="paying customers",
    purged_split=True,
    more_data="Add more paying-customer history (churn needs a full horizon after each "
    "snapshot), lower [model].min_positives, or train the conversion model only.",
    phase_calibrated=False,
    counted="churns",
    scored_lifecycles=("customer",),
    scores_customers=True,
    training_file="churn_training.parquet",
)

#: Every model kind by name, in training order.
KINDS: dict[str, ModelKind] = {k.name: k for k in (CONVERSION, CHURN)}


def model_kind(kind: str | ModelKind) -> ModelKind:
    """The declaration of ``kind`` (a name or a ``ModelKind``).

    Raises:
        ValueError: an unknown name, with the known ones.
    """
    if isinstance(kind, ModelKind):
        return kind
    try:
        return KINDS[kind]
    except KeyError:
        raise ValueError(f"unknown model kind {kind!r}; use one of {', '.join(KINDS)}") from None
