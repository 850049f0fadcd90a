"""A generated company made ready to serve: models trained into the config's own output
folder (``<config folder>/models/mlflow.db``, where ``trialcast serve`` looks), both
champions judged ``promoted``, the serving cache filled, batch scores written, and
the environment that starts the real service on it."""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import requests
from company_factory import SHAPES, Company, make_company
from factories import make_champions
from servers import REPO, free_port

from features.build import FeatureBuilder
from serving.scoring import ScoringModels, load_scoring_models
from training.train import RecordTarget, train_models
from trialcast.bench.serving_load import stop_server
from trialcast.serve_job import ModelSource, run_score_job

#: An open trial's id is renamed to this (links must encode the "/").
SLASH_ID = "north/eu-7"


@dataclass
class ServedCompany:
    """Everything a serving test needs about one generated company."""

    company: Company
    uri: str
    cache: Path
    scores: Path
    models: ScoringModels
    token: str
    env: dict[str, str] = field(default_factory=dict)

    @property
    def config_path(self) -> Path:
        return self.company.root / "trialcast.toml"


def serve_company(
    root: Path, shape: str, *, n_accounts: int, seed: int, token: str
) -> ServedCompany:
    """Generate ``shape`` (``tests.company_factory.SHAPES``), train, promote, cache, score."""
    company = make_company(root / "company", n_accounts=n_accounts, seed=seed, **SHAPES[shape])
    tables = company.tables
    acc = tables.accounts
    export = tables.export_time()
    open_now = (acc["trial_end"] > export) & acc["converted_at"].isna()
    first = str(acc.loc[open_now, "account_id"].iloc[0])
    for frame in (tables.accounts, tables.events, tables.communications):
        if frame is not None:
            ids = frame["account_id"].astype(str)
            frame["account_id"] = ids.where(ids != first, SLASH_ID)
    models_dir = company.config.output_root / "models"
    models_dir.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{models_dir / 'mlflow.db'}"
    train_models(
        company.config,
        FeatureBuilder.from_tables(tables, company.config),
        target=RecordTarget(tracking_uri=uri),
    )
    make_champions(company.config, uri)
    cache = models_dir / "serving_cache"
    models = load_scoring_models(company.config, tracking_uri=uri, cache_root=str(cache))
    scores = run_score_job(company.config, out=root / "scores" / "latest.parquet", tables=tables, source=ModelSource(models=models)).path  # fmt: skip
    env = {
        "TRIALCAST_API_TOKEN": token,
        "TRIALCAST_CONFIG": str(company.root / "trialcast.toml"),
        "TRIALCAST_TRACKING_URI": uri,
        "TRIALCAST_SERVING_CACHE": str(cache),
        "TRIALCAST_SCORES_PATH": str(scores),
        "TRIALCAST_STATE_DIR": str(root / "state"),
        "TRIALCAST_REGISTRY_WAIT": "2",
        "OMP_NUM_THREADS": "1",
    }
    return ServedCompany(company, uri, cache, scores, models, token, env)


def start_process(
    command: list[str], env: dict[str, str], log: Path, *, cwd: Path = REPO, port: int | None = None
) -> tuple[subprocess.Popen, str]:
    """Start ``command --host 127.0.0.1 --port N`` in its own session; returns it and its URL."""
    port = port or free_port()
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [*command, "--host", "127.0.0.1", "--port", str(port)],
            cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    return proc, f"http://127.0.0.1:{port}"


def wait_ready(proc: subprocess.Popen, base: str, log: Path, *, within: float) -> float:
    """Seconds until ``/readyz`` answers 200; fails with the log if the process dies or
    the time is up (then the process is stopped)."""
    t0 = time.monotonic()
    while True:
        if proc.poll() is not None:
            raise AssertionError(
                f"the service exited ({proc.returncode}):\n{log.read_text()[-3000:]}"
            )
        try:
            if requests.get(f"{base}/readyz", timeout=1).status_code == 200:
                return time.monotonic() - t0
        except requests.RequestException:
            pass
        if time.monotonic() - t0 > within:
            stop_server(proc)
            raise AssertionError(f"not ready within {within:.0f} s:\n{log.read_text()[-3000:]}")
        time.sleep(0.25)


def scores_frame(served: ServedCompany) -> pd.DataFrame:
    """The batch scores the service reads."""
    return pd.read_parquet(served.scores)
