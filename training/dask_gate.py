"""The promotion gate for models trained on Dask: the same verdict as ``trialcast train``.

A Dask-trained model is a folder, not a registry version, but it is scored and
forecast from all the same: a leaky or useless one must be stopped just as
surely. ``judge_dask`` scores the Dask test part per partition, brings back only
``account_id``, ``label`` and the probability (a few MB even for millions of
rows), and hands them to ``training.gate.judge``; when the metrics look like a
leak, mean |SHAP| on up to 2,000 test rows names the features behind it.

``write_gate`` stores the verdict beside the model (``gate.json``) and
``require_promoted`` is what every Dask scoring job calls before using a folder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features.config import CompanyConfig
from training.gate import GateResult, Verdict, judge
from training.model import TrialcastModel

GATE_FILE = "gate.json"


def _scored(frame: pd.DataFrame, model: TrialcastModel, label: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "account_id": frame["account_id"].astype(str).to_numpy(),
            "label": frame[label].to_numpy(dtype=np.float64),
            "p": model.predict_proba(frame) if len(frame) else np.zeros(0),
        }
    )


def judge_dask(
    config: CompanyConfig, model: TrialcastModel, train: Any, test: Any, *, label: str = "label"
) -> GateResult:
    """The gate's verdict on a Dask test part (``train`` gives the drift report's rate)."""
    import dask

    meta = pd.DataFrame(
        {"account_id": pd.Series(dtype=str), "label": np.zeros(0), "p": np.zeros(0)}
    )
    shared = dask.delayed(model, pure=True)
    scored = test.map_partitions(_scored, shared, label, meta=meta).compute()
    train_rate = float(train[label].mean().compute())
    rows = scored[["account_id", "label"]]
    return judge(
        config,
        rows,
        scored["p"].to_numpy(),
        train_rate=train_rate,
        importance=lambda: model.contributions(test.head(2000, npartitions=-1)).values.abs().mean(),
    )


def write_gate(gate: GateResult, model_dir: str | Path, kind: str) -> Path:
    """Write the verdict and its evidence as ``<model_dir>/gate.json``."""
    path = Path(model_dir) / GATE_FILE
    path.write_text(
        json.dumps({"kind": kind, **gate.tags(), "message": gate.message(kind)}, indent=2)
    )
    return path


def require_promoted(model_dir: str | Path) -> None:
    """Refuse a model folder whose gate verdict is not ``promoted`` (fail closed).

    A folder without ``gate.json`` (saved by ``TrialcastModel.save`` outside the
    training jobs) was never judged, and is refused too.

    Raises:
        ValueError: the verdict, and what to do.
    """
    path = Path(model_dir) / GATE_FILE
    if not path.exists():
        raise ValueError(
            f"{model_dir}: no {GATE_FILE}, so the promotion gate never judged this model; "
            "train it with `trialcast dask train`, which judges and "
            "saves the verdict beside the model"
        )
    gate = json.loads(path.read_text())
    if gate.get("verdict") != Verdict.PROMOTED.value:
        raise ValueError(
            f"{model_dir}: the promotion gate refused this model ({gate.get('verdict_text')}); "
            "it is kept for inspection only. See gate.json, fix the data or the config, "
            "and train again."
        )
