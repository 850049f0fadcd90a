"""Model registry: register each trained model, mark it ``challenger``, move ``champion``.

Aliases, not stages (stages are deprecated in MLflow): every new version gets the
``challenger`` alias; ``champion`` is what scoring and the service load. A
version tagged ``beats_base_rate=false`` is never promoted. A version trained
while a champion existed carries ``beats_champion`` (its test log loss vs the
champion's on the same holdout, by at least ``[model].promote_min_logloss_gain``);
promoting one that lost needs ``force=True``. A version carries the gate's
``verdict`` (``training.gate``): only ``promoted`` may become champion without
force, and a ``probable leak`` never.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import mlflow
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from features.config import CompanyConfig
from models import loader as model_store
from models.loader import registered_name
from training.model import TrialcastModel
from training.settings import resolve_tracking_uri
from training.tracking import use_tracking_uri

CHALLENGER = "challenger"
CHAMPION = "champion"

__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "PromotionResult",
    "decide_promotion",
    "download_model_files",
    "load_model_version",
    "load_registered_model",
    "promote",
    "register_version",
    "registered_name",
    "set_champion",
    "version_by_alias",
]


def register_version(
    client: MlflowClient, name: str, model_uri: str, *, run_id: str, tags: dict[str, str]
) -> ModelVersion:
    """Register ``model_uri`` as a new version of ``name`` and give it the challenger alias."""
    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(
            name, description="trialcast calibrated LightGBM; pyfunc returns probabilities"
        )
    version = client.create_model_version(name, model_uri, run_id=run_id, tags=tags)
    client.set_registered_model_alias(name, CHALLENGER, str(version.version))
    return version


def version_by_alias(client: MlflowClient, name: str, alias: str) -> ModelVersion | None:
    """The version of ``name`` holding ``alias``, or ``None``."""
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


@dataclass(frozen=True)
class PromotionResult:
    """What ``promote`` did and why."""

    name: str
    version: str | None
    previous: str | None
    promoted: bool
    reason: str


def decide_promotion(version: ModelVersion, champion: ModelVersion | None, *, force: bool) -> str:
    """Why ``version`` may not become champion ('' when it may)."""
    tags = version.tags or {}
    verdict = tags.get("verdict")
    if verdict == "probable leak":
        return (
            f"version {version.version} is a probable leak (test ROC AUC "
            f"{tags.get('test_auc', '?')}; top features {tags.get('leak_top_features', '?')}); "
            "it is never promoted"
        )
    if tags.get("beats_base_rate") == "false":
        return (
            f"version {version.version} does not beat the base rate on its test part "
            "(tag beats_base_rate=false); it is never promoted"
        )
    if champion is not None and str(champion.version) == str(version.version):
        return f"version {version.version} is already champion"
    if champion is not None and not force and tags.get("beats_champion") == "false":
        return (
            f"version {version.version} did not beat champion version "
            f"{tags.get('compared_champion_version', champion.version)} on the same holdout "
            f"(log loss {tags.get('test_log_loss', '?')} vs "
            f"{tags.get('champion_test_log_loss', '?')}); pass force=True (--force) to promote anyway"
        )
    if verdict is not None and verdict != "promoted" and not force:
        return (
            f"version {version.version} verdict: {tags.get('verdict_text', verdict)}; "
            "it is not promoted (pass force=True / --force to override)"
        )
    return ""


def set_champion(
    client: MlflowClient, name: str, version: ModelVersion, *, force: bool = False
) -> PromotionResult:
    """Move the champion alias of ``name`` to ``version`` if the rules allow it."""
    champion = version_by_alias(client, name, CHAMPION)
    previous = str(champion.version) if champion is not None else None
    reason = decide_promotion(version, champion, force=force)
    if reason:
        return PromotionResult(name, str(version.version), previous, False, reason)
    client.set_registered_model_alias(name, CHAMPION, str(version.version))
    what = f"replaces version {previous}" if previous else "first champion"
    return PromotionResult(
        name,
        str(version.version),
        previous,
        True,
        f"version {version.version} is champion ({what})",
    )


def promote(
    config: CompanyConfig,
    kind: str,
    *,
    version: str | int | None = None,
    tracking_uri: str | None = None,
    force: bool = False,
) -> PromotionResult:
    """Make ``version`` (default: the current challenger) the champion of ``kind``.

    Refuses versions that do not beat the base rate (always) and versions that
    lost to the champion on the same holdout (unless ``force``).
    """
    name = registered_name(config, kind)
    with use_tracking_uri(resolve_tracking_uri(config, tracking_uri)) as client:
        if version is None:
            target = version_by_alias(client, name, CHALLENGER)
            if target is None:
                return PromotionResult(
                    name, None, None, False, f"{name} has no challenger; train first"
                )
        else:
            target = client.get_model_version(name, str(version))
        return set_champion(client, name, target, force=force)


def download_model_files(client: MlflowClient, name: str, alias: str, dest: str | Path) -> Path:
    """Download the ``trialcast_model`` files of ``name@alias`` into ``dest``; returns their folder."""
    folder, _ = model_store.download_model_files(
        client, name, alias, dest, tracking_uri=mlflow.get_tracking_uri()
    )
    return folder


def load_registered_model(
    config: CompanyConfig,
    kind: str,
    *,
    alias: str = CHAMPION,
    tracking_uri: str | None = None,
) -> TrialcastModel:
    """The ``TrialcastModel`` behind ``<registered name>@alias`` (booster + calibration)."""
    name = registered_name(config, kind)
    with use_tracking_uri(resolve_tracking_uri(config, tracking_uri)) as client:
        return load_model_version(client, name, alias)


def load_model_version(client: MlflowClient, name: str, alias: str) -> TrialcastModel:
    """Load ``name@alias`` with an open client (see ``use_tracking_uri``)."""
    model, _ = model_store.fetch_registered_model(
        client, name, alias, tracking_uri=mlflow.get_registry_uri()
    )
    return model
