"""Model registry: register each trained model, mark it ``challenger``, move ``champion``.

Fail closed. The gate's ``verdict`` tag (``training.gate.Verdict``) is the one
source of truth about a version:

- only a ``promoted`` verdict may become champion, and ``force`` never changes
  that (a ``probable leak``, ``no lift found``, ``flat model`` or ``too little
  data`` version stays out whatever the flag);
- a version without a verdict tag is *unjudged* and refused;
- ``challenger`` (the newest version) never points at a ``probable leak``: such
  a version is registered for inspection but gets no alias;
- ``force`` overrides one thing only: a ``promoted`` version that did not beat
  the champion on the same holdout (``beats_champion=false``).

The old ``beats_base_rate`` tag is ignored. Aliases, not stages (stages are
deprecated in MLflow); ``champion`` is what scoring and the service load.
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
from training.gate import Verdict
from training.model import TrialcastModel
from training.settings import resolve_tracking_uri
from training.tracking import use_tracking_uri

CHALLENGER = "challenger"
CHAMPION = "champion"
#: The version tag holding the gate's verdict (``training.gate.GateResult.tags``).
VERDICT_TAG = "verdict"

__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "VERDICT_TAG",
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
    """Register ``model_uri`` as a new version of ``name``; it gets the challenger alias
    unless its verdict is a probable leak."""
    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(
            name, description="trialcast calibrated LightGBM; pyfunc returns probabilities"
        )
    version = client.create_model_version(name, model_uri, run_id=run_id, tags=tags)
    if tags.get(VERDICT_TAG) != Verdict.PROBABLE_LEAK.value:
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
    """Why ``version`` may not become champion ('' when it may).

    The verdict decides; ``force`` only overrides a lost duel with the champion.
    """
    tags = version.tags or {}
    verdict = tags.get(VERDICT_TAG)
    if verdict is None:
        return (
            f"version {version.version} has no verdict tag: it was never judged by the "
            "promotion gate, so it is refused; train it again with this version of trialcast"
        )
    if verdict == Verdict.PROBABLE_LEAK.value:
        return (
            f"version {version.version} is a probable leak (test ROC AUC "
            f"{tags.get('test_auc', '?')}; top features {tags.get('leak_top_features', '?')}); "
            "it is never promoted, not even with --force"
        )
    if verdict != Verdict.PROMOTED.value:
        return (
            f"version {version.version} verdict: {tags.get('verdict_text', verdict)}; only a "
            "'promoted' verdict becomes champion (--force does not override the verdict)"
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

    Refuses any version whose verdict is not ``promoted`` (always) and a promoted
    version that lost to the champion on the same holdout (unless ``force``).
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
