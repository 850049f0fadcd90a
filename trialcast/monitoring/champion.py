"""The champion as the monitor needs it: the model, what the gate promised, when it was trained."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from mlflow import MlflowClient

from features.config import CompanyConfig
from models.artifact import TrialcastModel
from models.kinds import model_kind
from training.registry import CHAMPION, load_model_version, version_by_alias


@dataclass(frozen=True)
class Champion:
    """The champion of one kind.

    Attributes:
        kind: model kind name.
        name: registered model name.
        version: registered version (text).
        model: booster + calibration + feature spec.
        trained_at: the data's "now" it was trained at (tag ``trialcast.as_of``;
            for older versions the registration time).
        promised: what the gate measured on its test part (``test_auc``,
            ``test_log_loss``, ``verdict``), from the version's tags.
        holdout_from: first trial start of its held-out test part (run
            parameter ``data_test_from``): trials from then on were never fitted.
        validation_from: first trial start of its validation part (run parameter
            ``data_valid_from``): from then on the booster never fitted a trial
            (validation only stopped its boosting and fitted its calibration).
    """

    kind: str
    name: str
    version: str
    model: TrialcastModel
    trained_at: pd.Timestamp
    promised: dict[str, str]
    holdout_from: pd.Timestamp | None = None
    validation_from: pd.Timestamp | None = None


def load_champion(client: MlflowClient, config: CompanyConfig, kind: str) -> Champion | None:
    """The ``champion`` of ``kind`` through an open client, or ``None`` if there is none."""
    name = model_kind(kind).registered_name(config.registry)
    version = version_by_alias(client, name, CHAMPION)
    if version is None:
        return None
    tags = dict(version.tags or {})
    stamp = tags.get("trialcast.as_of", "unknown")
    trained_at = (
        pd.Timestamp(stamp)
        if stamp != "unknown"
        else pd.Timestamp(int(version.creation_timestamp), unit="ms")
    )
    if trained_at.tzinfo is not None:
        trained_at = trained_at.tz_convert("UTC").tz_localize(None)
    promised: dict[str, str] = {
        k: tags[k] for k in ("test_auc", "test_log_loss", "verdict") if k in tags
    }
    params = client.get_run(version.run_id).data.params if version.run_id else {}
    return Champion(
        holdout_from=_param_time(params, "data_test_from"),
        validation_from=_param_time(params, "data_valid_from"),
        kind=kind,
        name=name,
        version=str(version.version),
        model=load_model_version(client, name, CHAMPION),
        trained_at=trained_at,
        promised=promised,
    )


def _param_time(params: dict[str, str], key: str) -> pd.Timestamp | None:
    """A run parameter as a timestamp (``None`` when absent or empty)."""
    value = params.get(key)
    return pd.Timestamp(value) if value not in (None, "", "None", "NaT") else None
