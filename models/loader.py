"""Load the registered models for scoring, with a local copy of the last good one.

The service and the batch scoring job load ``<registered name>@<alias>``
(``champion`` unless ``TRIALCAST_MODEL_ALIAS`` says otherwise) from the MLflow
registry at the tracking URI that training used (``models.settings``). Every
successful load also writes the model files to
``models/serving_cache/<name>/<alias>/`` (``TRIALCAST_SERVING_CACHE`` moves the
root), so that a restart while the registry is down (database unreachable, file
moved) still serves the last good model instead of failing; the result says
which source it came from.

Fail closed: only a version whose ``verdict`` tag is ``promoted`` (the training
gate's ``Verdict.PROMOTED``) is served or scored, whatever the alias points at. A
version without a verdict is unjudged and refused like any other verdict
(``NotServableError``, which never falls back to the cache: the registry said what
to serve, and it may not be served). The cached copy carries the verdict too. A
registry that answers that the model or alias does not exist (an alias withdrawn, a
challenger never promoted) is not stood in for by the cache either.

A registry that does not answer is waited for ``TRIALCAST_REGISTRY_WAIT`` seconds
(default 10; probes that never create a database file), then the cached copy is
served and ``LoadedModel.detail`` says why.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from features.config import CompanyConfig
from models.settings import MODELS_DIR, output_root, resolve_tracking_uri
from models.artifact import ARTIFACT_KEY, CALIBRATION_FILE, MODEL_FILES, TrialcastModel
from models.kinds import model_kind
from models.mlflow_env import disable_mlflow_telemetry

if TYPE_CHECKING:  # MLflow itself is imported where a model is fetched
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

log = logging.getLogger("trialcast.serving")

ENV_MODEL_ALIAS = "TRIALCAST_MODEL_ALIAS"
ENV_SERVING_CACHE = "TRIALCAST_SERVING_CACHE"
DEFAULT_ALIAS = "champion"
CACHE_DIR = "serving_cache"
META_FILE = "registry.json"
_PROGRESS_BAR_ENV = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
#: How long one registry probe may take.
PROBE_TIMEOUT_SECONDS = 5.0
ENV_REGISTRY_WAIT = "TRIALCAST_REGISTRY_WAIT"
#: How long a down registry is waited for before the cached model is used.
DEFAULT_REGISTRY_WAIT_SECONDS = 10.0
#: The registry tag holding the training gate's verdict, and the one verdict that is
#: served (``training.gate.Verdict.PROMOTED``; ``models`` sits below ``training``).
VERDICT_TAG = "verdict"
PROMOTED = "promoted"


class ModelUnavailableError(RuntimeError):
    """Neither the registry nor the local cache could provide the model."""


class NotServableError(ModelUnavailableError):
    """The version the alias points at (or the cached copy) is not judged ``promoted``."""


def verdict_problem(name: str, version: str, tags: dict[str, str] | None) -> str | None:
    """Why ``name`` version ``version`` may not be served (``None`` when its verdict is
    ``promoted``)."""
    tags = tags or {}
    verdict = tags.get(VERDICT_TAG)
    if verdict == PROMOTED:
        return None
    if verdict is None:
        what = "has no verdict (unjudged: trained before the gate, or tagged by hand)"
    else:
        text = tags.get("verdict_text") or ""
        what = f"has the verdict {text if text.startswith(verdict) else verdict!r}"
    return (
        f"{name} version {version} {what}; only a version the training gate judged "
        f"{PROMOTED!r} is served. Retrain (`trialcast train -c CONFIG`) or point the alias "
        "at a promoted version"
    )


def registry_wait_seconds() -> float:
    """How long to wait for a down registry (``TRIALCAST_REGISTRY_WAIT``, default 10 s)."""
    raw = os.environ.get(ENV_REGISTRY_WAIT, "").strip()
    try:
        return max(0.0, float(raw)) if raw else DEFAULT_REGISTRY_WAIT_SECONDS
    except ValueError:
        return DEFAULT_REGISTRY_WAIT_SECONDS


@dataclass(frozen=True)
class LoadedModel:
    """A model ready to score, and where it came from.

    Attributes:
        model: the booster plus calibration.
        kind: ``"conversion"`` or ``"churn"``.
        name: registered model name.
        version: registered version number (text).
        alias: the alias it was loaded by.
        source: ``"registry"`` or ``"cache"`` (the registry was unreachable).
        detail: why the cache was used (empty when loaded from the registry).
    """

    model: TrialcastModel
    kind: str
    name: str
    version: str
    alias: str
    source: str
    detail: str = ""


def registered_name(config: CompanyConfig, kind: str) -> str:
    """The registered model name of ``kind`` (from ``[registry]``)."""
    return model_kind(kind).registered_name(config.registry)


def resolve_alias(explicit: str | None = None) -> str:
    """The alias to serve: ``explicit``, else ``TRIALCAST_MODEL_ALIAS``, else ``champion``."""
    return explicit or os.environ.get(ENV_MODEL_ALIAS) or DEFAULT_ALIAS


def resolve_cache_root(explicit: str | Path | None = None) -> Path:
    """Root of the last-good-model cache: ``explicit``, ``TRIALCAST_SERVING_CACHE``,
    else ``<cwd>/models/serving_cache``."""
    if explicit is not None:
        return Path(explicit)
    env = os.environ.get(ENV_SERVING_CACHE)
    return Path(env) if env else output_root() / MODELS_DIR / CACHE_DIR


def check_reachable(uri: str, *, timeout: float = PROBE_TIMEOUT_SECONDS) -> None:
    """Fail fast when the registry cannot answer.

    MLflow itself retries an unreachable database for about 100 s (and creates an
    empty SQLite file where one is missing); one quick probe first lets the
    service fall back to its cached model within seconds instead.

    Raises:
        OSError / sqlalchemy.exc.SQLAlchemyError / requests.RequestException: unreachable.
    """
    if uri.startswith("sqlite:"):
        path = Path(uri.removeprefix("sqlite:///"))
        if uri.startswith("sqlite:////"):
            path = Path("/" + str(path).lstrip("/"))
        if not path.exists():
            raise FileNotFoundError(f"the registry database {path} does not exist")
    elif uri.startswith(("postgresql", "mysql", "mssql")):
        import sqlalchemy
        from sqlalchemy.pool import NullPool

        args = (
            {"connect_timeout": max(1, int(timeout))}
            if uri.startswith(("postgresql", "mysql"))
            else {}
        )
        engine = sqlalchemy.create_engine(uri, poolclass=NullPool, connect_args=args)
        try:
            with engine.connect():
                pass
        finally:
            engine.dispose()
    elif uri.startswith(("http://", "https://")):
        import requests

        requests.get(uri.rstrip("/") + "/health", timeout=timeout).raise_for_status()


def wait_until_reachable(uri: str, wait: float) -> None:
    """``check_reachable`` again every second until it passes or ``wait`` seconds are over.

    Raises:
        the last probe's error when the registry did not answer in time.
    """
    deadline = time.monotonic() + wait
    while True:
        left = deadline - time.monotonic()
        try:
            check_reachable(uri, timeout=max(1.0, min(PROBE_TIMEOUT_SECONDS, left)))
            return
        except Exception:
            if time.monotonic() + 1.0 > deadline:
                raise
            log.warning("model registry %s not answering; retrying for %.0f s more", uri, left)
            time.sleep(1.0)


def download_model_files(
    client: MlflowClient, name: str, alias: str, dest: str | Path, *, tracking_uri: str
) -> tuple[Path, ModelVersion]:
    """Download the ``trialcast_model`` files of ``name@alias`` into ``dest``.

    Returns:
        The folder holding ``booster.txt`` / ``calibration.json`` and the version.
    """
    import mlflow.artifacts

    version = client.get_model_version_by_alias(name, alias)
    problem = verdict_problem(name, str(version.version), version.tags)
    if problem:
        raise NotServableError(f"{name}@{alias}: {problem}")
    saved = os.environ.get(_PROGRESS_BAR_ENV)
    os.environ[_PROGRESS_BAR_ENV] = "false"  # no download bars in service logs
    try:
        # The version's storage location, resolved through this client: a
        # ``models:/`` URI would be resolved against MLflow's global registry URI.
        location = client.get_model_version_download_uri(name, str(version.version))
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=location, dst_path=str(dest), tracking_uri=tracking_uri
        )
    finally:
        if saved is None:
            os.environ.pop(_PROGRESS_BAR_ENV, None)
        else:
            os.environ[_PROGRESS_BAR_ENV] = saved
    found = sorted(Path(local).rglob(CALIBRATION_FILE))
    if not found:
        raise FileNotFoundError(
            f"{name}@{alias} has no {ARTIFACT_KEY} files (not a trialcast model?)"
        )
    return found[0].parent, version


def fetch_registered_model(
    client: MlflowClient, name: str, alias: str, *, tracking_uri: str
) -> tuple[TrialcastModel, str]:
    """Load ``name@alias`` through an open client; returns the model and its version."""
    with tempfile.TemporaryDirectory() as tmp:
        folder, version = download_model_files(client, name, alias, tmp, tracking_uri=tracking_uri)
        return TrialcastModel.load(folder), str(version.version)


def _cache_folder(root: Path, name: str, alias: str) -> Path:
    return root / name / alias


def save_to_cache(model: TrialcastModel, root: Path, name: str, alias: str, version: str) -> Path:
    """Write ``model`` as the last good ``name@alias`` (atomically: a new folder, then a rename)."""
    target = _cache_folder(root, name, alias)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{alias}-", dir=target.parent))
    model.save(staging)
    meta = {
        "name": name,
        "alias": alias,
        "version": version,
        VERDICT_TAG: PROMOTED,  # only promoted versions are loaded, hence cached
        "saved_at": time.time(),
    }
    (staging / META_FILE).write_text(json.dumps(meta, indent=2))
    old = target.with_name(f".{alias}-old-{os.getpid()}")
    if target.exists():
        target.rename(old)
    staging.rename(target)
    shutil.rmtree(old, ignore_errors=True)
    return target


def load_from_cache(root: Path, name: str, alias: str) -> tuple[TrialcastModel, str]:
    """The last good ``name@alias`` and its version; raises ``FileNotFoundError`` if none."""
    folder = _cache_folder(root, name, alias)
    if not all((folder / f).exists() for f in MODEL_FILES):
        raise FileNotFoundError(f"no cached copy of {name}@{alias} under {folder}")
    meta = json.loads((folder / META_FILE).read_text())
    version = str(meta.get("version", "?"))
    problem = verdict_problem(name, version, meta)
    if problem:
        raise NotServableError(f"cached copy under {folder}: {problem}")
    return TrialcastModel.load(folder), version


def has_cached_copy(root: Path, name: str, alias: str) -> bool:
    """True when a servable (promoted) copy of ``name@alias`` is cached under ``root``."""
    folder = _cache_folder(root, name, alias)
    try:
        meta = json.loads((folder / META_FILE).read_text())
    except (OSError, ValueError):
        return False
    files = all((folder / f).exists() for f in MODEL_FILES)
    return files and verdict_problem(name, str(meta.get("version", "?")), meta) is None


#: MLflow's error codes for a name or alias the registry does not hold.
ABSENT_CODES = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE")


def registry_has_none(exc: BaseException) -> bool:
    """True when the registry answered that the registered model or its alias does not
    exist (an answer, not a failure: the cache must not stand in for it)."""
    code = getattr(exc, "error_code", None)
    return code in ABSENT_CODES and "not found" in str(exc)


def load_serving_model(
    config: CompanyConfig,
    kind: str,
    *,
    alias: str | None = None,
    tracking_uri: str | None = None,
    cache_root: str | Path | None = None,
    wait: float | None = None,
) -> LoadedModel:
    """``<registered name of kind>@alias`` from the registry, or else the local cache.

    Args:
        config: the company config (registered names, configured tracking URI).
        kind: ``"conversion"`` or ``"churn"``.
        alias: alias to load (default: ``resolve_alias()``).
        tracking_uri: explicit URI (default: ``models.settings.resolve_tracking_uri``).
        cache_root: where the last good copies live (default: ``resolve_cache_root()``).
        wait: seconds to wait for a down registry (default: ``registry_wait_seconds()``).

    Raises:
        NotServableError: the alias points at a version not judged ``promoted``.
        ModelUnavailableError: the registry holds no such model or alias (a withdrawn
            alias is not served from the cache), or it failed and no cached copy exists.
    """
    name = registered_name(config, kind)
    alias = resolve_alias(alias)
    root = resolve_cache_root(cache_root)
    uri = resolve_tracking_uri(config, tracking_uri)
    waited = registry_wait_seconds() if wait is None else wait
    try:
        wait_until_reachable(uri, waited)
        disable_mlflow_telemetry()
        from mlflow import MlflowClient

        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        model, version = fetch_registered_model(client, name, alias, tracking_uri=uri)
    except NotServableError:
        raise
    except Exception as exc:  # any registry failure: fall back to the last good copy
        first = str(exc).splitlines()[0] if str(exc) else ""
        if registry_has_none(exc):  # it answered: nothing holds the alias, nothing is served
            raise ModelUnavailableError(
                f"cannot load {name}@{alias}: the registry {uri} has no such model or alias "
                f"({first}). A version gets the alias only when its verdict is promoted: "
                f"run `trialcast train` (it says why a model was refused), or `trialcast "
                f"promote` a promoted version"
            ) from exc
        reason = (
            f"registry failed: {uri} did not answer within {waited:.0f} s "
            f"({type(exc).__name__}: {first})"
        )
        try:
            model, version = load_from_cache(root, name, alias)
        except FileNotFoundError as missing:
            raise ModelUnavailableError(
                f"cannot load {name}@{alias}: {reason} and {missing}"
            ) from exc
        log.warning("%s; serving the cached copy of %s@%s v%s", reason, name, alias, version)
        return LoadedModel(model, kind, name, version, alias, "cache", reason)
    try:
        save_to_cache(model, root, name, alias, version)
    except OSError as exc:  # a read-only disk must not stop serving
        log.warning("could not cache %s@%s: %s", name, alias, exc)
    return LoadedModel(model, kind, name, version, alias, "registry")
