"""What one service worker holds while it serves: config, models, snapshot, session keys.

Kept apart from ``serving.service`` so that importing the service (which ``bentoml
serve`` does once in its supervisor process before starting any worker) stays
light: the heavy imports (LightGBM, scikit-learn, MLflow, pandera) happen in
``ServiceState.load``, inside each worker, not in the supervisor. The routes
(``serving.web``, ``serving.ui_routes``) read this object through
``current_state``.
"""

from __future__ import annotations

import gc
import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from features.config import CompanyConfig, load_config, load_demo_config
from models.settings import ENV_OUTPUT_DIR
from serving.auth_state import FailureThrottle, SessionRevocations
from serving.input_checks import TrainingRanges
from serving.security import SessionSigner, read_api_token

if TYPE_CHECKING:
    from serving.scoring import ScoringModels
    from serving.store import ScoreStore

log = logging.getLogger("trialcast.serving")

ENV_CONFIG = "TRIALCAST_CONFIG"
#: Allocations between young-generation collections (CPython's default is 700).
GC_GEN0_THRESHOLD = 50_000


def load_company_config() -> CompanyConfig:
    """The company config named by ``TRIALCAST_CONFIG``, else the demo config.

    A named config's ``output_dir`` becomes the output root (``TRIALCAST_OUTPUT_DIR``,
    unless set), as for the CLI: the service finds the models, cache and scores of
    that company whatever the working directory of ``bentoml serve``.
    """
    path = os.environ.get(ENV_CONFIG)
    if not path:
        return load_demo_config()
    config = load_config(path)
    os.environ.setdefault(ENV_OUTPUT_DIR, str(config.output_root))
    return config


@dataclass
class ServiceState:
    """Everything a worker's endpoints read.

    Attributes:
        token: the API token (the session and CSRF keys derive from it).
        config: the company config.
        models: the conversion (and churn) model with their reason contexts.
        ranges: the feature ranges seen in training (out-of-range values get a warning).
        signer: signs sales-view sessions and login-form CSRF tokens.
        throttle: the login back-off, shared by all workers.
        revocations: the sessions that signed out, shared by all workers.
        store: the latest batch scores (the sales view and ``/accounts``).
    """

    token: str
    config: CompanyConfig
    models: ScoringModels
    ranges: TrainingRanges
    signer: SessionSigner
    throttle: FailureThrottle
    revocations: SessionRevocations
    store: ScoreStore

    @classmethod
    def load(cls) -> ServiceState:
        """Load the models (registry, else the last good copy) and the score snapshot,
        warm the scoring path, and take the long-lived objects out of the GC's view."""
        from serving.schemas import FeatureCatalog
        from serving.scoring import load_scoring_models, score_feature_records
        from serving.store import ScoreStore

        token = read_api_token()  # refuses to start without a token
        config = load_company_config()
        models = load_scoring_models(config)
        FeatureCatalog.set(models.numeric, models.categorical)
        state = cls(
            token=token,
            config=config,
            models=models,
            ranges=TrainingRanges.from_models(m.model for m in models.loaded()),
            signer=SessionSigner(token),
            throttle=FailureThrottle.for_token(token),
            revocations=SessionRevocations.for_token(token),
            store=ScoreStore.open(),
        )
        # Warm up (first predictions allocate; the batch dispatcher learns from them).
        score_feature_records(models, [{}], top_k=5)
        # Long-lived objects (models, snapshot, imported modules) leave the GC's view,
        # and young-generation collections run less often: fewer pauses in the p99.
        gc.collect()
        gc.freeze()
        gc.set_threshold(GC_GEN0_THRESHOLD, 20, 20)
        for loaded in models.loaded():
            log.info(
                "serving %s v%s (%s) from %s",
                loaded.name,
                loaded.version,
                loaded.alias,
                loaded.source,
            )
        return state


def current_state() -> ServiceState:
    """The running worker's state (a FastAPI dependency of the GET routes)."""
    import bentoml

    return bentoml.get_current_service().state  # type: ignore[no-any-return]
