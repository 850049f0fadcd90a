"""Before any worker starts: is there a model the service may serve? Exit clearly if not.

Without this, a service with no model anywhere started workers that crashed in
``__init__`` and were restarted by BentoML forever, while ``/livez`` accepted
connections and never answered. ``bentoml serve`` imports the service module in
its supervisor process first; ``exit_without_model`` runs there (not in the
workers) and exits with code 2 and one message when:

- the registry answers but has no version under the alias, and nothing is cached;
- the alias points at a version not judged ``promoted`` (fail closed);
- the registry does not answer within ``TRIALCAST_REGISTRY_WAIT`` seconds and no
  promoted copy is cached.

When the registry is down but a promoted copy is cached, the service starts from
the cache: the workers are told not to wait for the registry again
(``TRIALCAST_REGISTRY_WAIT=0``), and ``/info`` says ``source: cache`` and why. The
probes never create a registry file (a missing SQLite file is "down", not "empty").
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from features.config import CompanyConfig
from models.loader import (
    ENV_REGISTRY_WAIT,
    has_cached_copy,
    registered_name,
    registry_has_none,
    registry_wait_seconds,
    resolve_alias,
    resolve_cache_root,
    verdict_problem,
    wait_until_reachable,
)
from models.settings import resolve_tracking_uri

log = logging.getLogger("trialcast.serving")

#: MLflow's HTTP client retries for minutes by default; after our probe answered,
#: a registry that stops answering mid-start must not hold the start-up that long.
MLFLOW_HTTP_LIMITS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_TIMEOUT": "15"}


@dataclass(frozen=True)
class StartupCheck:
    """What the check found.

    Attributes:
        problem: why the service cannot start (``None`` when it can).
        registry_down: the registry did not answer; the cached copy will be served.
        detail: the registry's error when it is down.
        no_alias: the registry answered but has no version under the alias (the
            caller may say why, e.g. the last version's verdict).
    """

    problem: str | None
    registry_down: bool = False
    detail: str = ""
    no_alias: bool = False


def check_startup(
    config: CompanyConfig,
    *,
    alias: str | None = None,
    tracking_uri: str | None = None,
    cache_root: str | Path | None = None,
) -> StartupCheck:
    """Whether the conversion model can be served (registry, else the cache)."""
    for key, value in MLFLOW_HTTP_LIMITS.items():
        os.environ.setdefault(key, value)
    name = registered_name(config, "conversion")
    alias = resolve_alias(alias)
    root = resolve_cache_root(cache_root)
    uri = resolve_tracking_uri(config, tracking_uri)
    cached = has_cached_copy(root, name, alias)
    wait = registry_wait_seconds()
    try:
        wait_until_reachable(uri, wait)
    except Exception as exc:
        detail = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        if cached:
            return StartupCheck(None, registry_down=True, detail=detail)
        if isinstance(exc, FileNotFoundError):
            return StartupCheck(
                f"no model to serve: there is no model registry at {uri} (nothing trained "
                f"for this config yet?) and no promoted copy of {name}@{alias} is cached under "
                f"{root}. Train one first (`trialcast train -c CONFIG`), or point -c / "
                "TRIALCAST_CONFIG and --tracking-uri at the company whose models you want."
            )
        return StartupCheck(
            f"the model registry {uri} did not answer within {wait:.0f} s ({detail}) and no "
            f"promoted copy of {name}@{alias} is cached under {root}. Start the registry or "
            "point --tracking-uri / TRIALCAST_TRACKING_URI at it; once the service has served "
            "a model, later restarts use its cached copy while the registry is down."
        )
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    try:
        version = client.get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        absent = registry_has_none(exc)
        if cached and not absent:
            return StartupCheck(None)  # the loader serves the cached copy, with a warning
        where = (
            f"(the copy cached under {root} is not served in its place: the registry says "
            "nothing holds the alias)"
            if cached
            else f"and nothing is cached under {root}"
        )
        return StartupCheck(
            f"no model to serve: {name} has no {alias!r} version in {uri} {where}. Train one "
            "first (`trialcast train -c CONFIG`), or point -c / TRIALCAST_CONFIG and "
            "--tracking-uri at the company whose models you want.",
            no_alias=True,
        )
    return StartupCheck(verdict_problem(name, str(version.version), version.tags))


def in_bentoml_worker() -> bool:
    """True inside a BentoML worker process (the supervisor has no worker index)."""
    from bentoml._internal.context import server_context

    return server_context.worker_index is not None


def exit_without_model(prog: str = "trialcast serve") -> None:
    """In the supervisor: exit with code 2 and one message when nothing can be served.

    When the registry is down but a promoted copy is cached, logs that and lets the
    workers take the cache without waiting again.
    """
    if in_bentoml_worker():
        return
    from features.config import ConfigError
    from serving.state import load_company_config

    try:
        check = check_startup(load_company_config())
    except ConfigError as exc:
        sys.stderr.write(f"{prog}: {exc}\n")
        raise SystemExit(2) from None
    if check.problem:
        sys.stderr.write(f"{prog}: {check.problem}\n")
        sys.stderr.flush()
        raise SystemExit(2)
    if check.registry_down:
        sys.stderr.write(
            f"{prog}: the model registry is down ({check.detail}); starting from the cached "
            "copy of the model (see /info)\n"
        )
        os.environ[ENV_REGISTRY_WAIT] = "0"
