"""The verdict beside a Dask-trained model folder, and the check every Dask scoring job makes.

Dask models are judged by the one recipe (``training.recipe.fit_kind``, the same
verdict as ``trialcast train``) and registered in MLflow; the Dask scoring jobs
read a model *folder*, so the verdict also travels as ``gate.json`` in it.
``write_gate`` writes it; ``require_promoted`` refuses any folder whose verdict
is not ``promoted``, and any folder without one (never judged).
"""

from __future__ import annotations

import json
from pathlib import Path

from training.gate import GateResult, Verdict

GATE_FILE = "gate.json"


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
