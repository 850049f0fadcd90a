"""Why there is no model to score with, and what to do: for ``score``, ``forecast`` and ``serve``.

Without a champion these commands used to end in a traceback. Now they read the
registry: no model trained yet, or the last trained version's verdict (``no lift
found``, ``too little data (n=..., positives=...)``, ``probable leak``) with the
next step.
"""

from __future__ import annotations

import os

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from features.config import CompanyConfig
from models.loader import check_reachable, registered_name
from models.settings import resolve_tracking_uri

ENV_ALIAS = "TRIALCAST_MODEL_ALIAS"


def missing_model_message(
    config: CompanyConfig,
    *,
    kind: str = "conversion",
    tracking_uri: str | None = None,
    alias: str | None = None,
) -> str | None:
    """``None`` when ``<model>@alias`` exists and its verdict is ``promoted``, else a
    plain explanation with the next step (fail closed: whatever the alias, an
    unjudged or refused version is never scored, forecast or served)."""
    alias = alias or os.environ.get(ENV_ALIAS) or "champion"
    uri = resolve_tracking_uri(config, tracking_uri)
    name = registered_name(config, kind)
    try:
        check_reachable(uri)  # MLflow would create an empty database where none is
    except Exception as exc:
        return (
            f"the model registry {uri} is not reachable ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}): train first with "
            "`trialcast train -c CONFIG`, or point --tracking-uri at the right store"
        )
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    try:
        found = client.get_model_version_by_alias(name, alias)
    except MlflowException:
        found = None
    if found is not None:
        verdict = (found.tags or {}).get("verdict")
        if verdict == "promoted":
            return None
        said = (found.tags or {}).get("verdict_text") or verdict or "none: never judged"
        return (
            f"{name}@{alias} is version {found.version}, whose verdict is '{said}': only a "
            "version the promotion gate promoted is scored, forecast or served. Retrain "
            "(`trialcast train -c CONFIG`) or point --alias at a promoted version"
        )
    try:
        versions = list(client.search_model_versions(f"name = '{name}'"))
    except MlflowException:
        versions = []
    if not versions:
        return (
            f"no {kind} model is registered as {name!r} in {uri}: train one first with "
            "`trialcast train -c CONFIG` (or point --tracking-uri at the right store)"
        )
    last = max(versions, key=lambda v: int(v.version))
    tags = last.tags or {}
    verdict = tags.get("verdict_text") or tags.get("verdict") or "not recorded"
    advice = {
        "no lift found": "the model adds nothing over the base rate yet: add history or "
        "better signals and retrain",
        "probable leak": "keep the leaking input out (an event: [leakage].exclude_events; a "
        "feature-table column: [feature_table].exclude_columns; an accounts column: "
        '[firmographics] known_at = "current") and retrain',
    }.get(tags.get("verdict", ""), "retrain when more trials have finished")
    return (
        f"{name} has no {alias!r} version in {uri}. The last trained version "
        f"{last.version} was not promoted: verdict '{verdict}'. Next: {advice}. Only a "
        "version with the verdict 'promoted' becomes champion (--force does not override it)."
    )
