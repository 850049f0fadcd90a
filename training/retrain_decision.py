"""What a retrain job decided, per model kind and in all, and where it is written.

The decision is the job's contract with whoever reads it (the CLI, cron mail, a
dashboard reading ``latest.json``): fixed statuses and actions (string enums, so
the JSON holds plain words), the numbers the duel was judged on, and an input
fingerprint that makes re-runs on the same data a no-op.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features.tables import Tables


class KindAction(StrEnum):
    """What the job did with one model kind."""

    PROMOTED = "promoted"  # the challenger is the new champion
    KEPT = "kept"  # trained and judged; the champion stays
    UNCHANGED = "unchanged"  # nothing new to train on
    REFUSED = "refused"  # too little data; the champion stays
    TO_PROMOTE = "promote?"  # judged better, promotion not yet attempted (never final)


class RetrainStatus(StrEnum):
    """The job's outcome over all kinds."""

    PROMOTED = "promoted"
    KEPT = "kept"
    UNCHANGED = "unchanged"
    REFUSED = "refused"
    BUSY = "busy"  # another retrain holds the lock; nothing done
    FAILED = "failed"  # an error; champions untouched unless a promotion had happened


@dataclass
class KindDecision:
    """What the job decided for one model kind, and on which numbers.

    Attributes:
        kind: ``"conversion"`` or ``"churn"``.
        action: ``promoted``, ``kept`` (champion stays), ``unchanged`` (nothing new
            to train) or ``refused`` (too little data; champion stays).
        reason: one sentence saying why.
        registered_name: the registered model.
        champion_before, champion_after: champion version before / after the job.
        challenger_version: the version this job registered (None if none).
        challenger_run_id: its training run.
        challenger_log_loss, champion_log_loss, base_rate_log_loss: on the holdout.
        log_loss_gain: champion minus challenger log loss (positive = challenger better).
        min_gain: the rule's required gain (``[model].promote_min_logloss_gain``).
        challenger_roc_auc, champion_roc_auc: ranking on the holdout.
        holdout_rows, holdout_positives: size of the holdout.
        holdout_from: first trial start (conversion) / snapshot (churn) in the holdout.
    """

    kind: str
    action: KindAction
    reason: str
    registered_name: str
    champion_before: str | None = None
    champion_after: str | None = None
    challenger_version: str | None = None
    challenger_run_id: str | None = None
    challenger_log_loss: float | None = None
    champion_log_loss: float | None = None
    base_rate_log_loss: float | None = None
    log_loss_gain: float | None = None
    min_gain: float = 0.0
    challenger_roc_auc: float | None = None
    champion_roc_auc: float | None = None
    holdout_rows: int = 0
    holdout_positives: int = 0
    holdout_from: str | None = None

    @property
    def promoted(self) -> bool:
        return self.action == KindAction.PROMOTED


@dataclass
class RetrainDecision:
    """Outcome of one ``run_retrain``.

    Attributes:
        status: ``promoted`` (some kind got a new champion), ``kept`` (trained, the
            champions stay), ``unchanged`` (nothing new: no training), ``refused``
            (too little data for every kind), ``busy`` (another retrain holds the
            lock; nothing done) or ``failed`` (an error; champions untouched unless
            a kind's promotion had already happened, see ``kinds``).
        message: a short human summary (one line per kind).
        retrain_id: id of this job (also on its MLflow run and registry versions).
        started_at: UTC start time (ISO 8601).
        fingerprint: the input fingerprint (tables + data time).
        config_hash: the company config hash.
        data_as_of: the data's "now" used for labels.
        kinds: per model kind, the decision and its numbers.
        tracking_uri: the MLflow store.
        run_id: the ``retrain`` MLflow run (None when nothing was trained).
        decision_path: the JSON decision file (None when busy).
        lock_path: the lock file used.
        seconds: wall time per step.
        error: the error message when ``failed``.
    """

    status: RetrainStatus
    message: str
    retrain_id: str
    started_at: str
    fingerprint: str
    config_hash: str
    data_as_of: str | None
    kinds: dict[str, KindDecision]
    tracking_uri: str
    run_id: str | None = None
    decision_path: Path | None = None
    lock_path: Path | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    error: str | None = None

    @property
    def promoted(self) -> bool:
        return any(k.promoted for k in self.kinds.values())

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("decision_path", "lock_path"):
            data[key] = None if data[key] is None else str(data[key])
        return data


def input_fingerprint(tables: Tables, data_as_of: pd.Timestamp) -> str:
    """SHA-256 of every table's columns, dtypes-independent values and the data time.

    Row order matters (loaders read sources in a stable order). Cheap: a vectorised
    64-bit hash per row (``pandas.util.hash_pandas_object``), about 10 ms per million
    events.
    """
    digest = hashlib.sha256(str(pd.Timestamp(data_as_of)).encode())
    for name in ("events", "accounts", "communications"):
        frame = getattr(tables, name)
        digest.update(f"|{name}|".encode())
        if frame is None:
            continue
        digest.update(json.dumps(sorted(map(str, frame.columns))).encode())
        ordered = frame[sorted(frame.columns, key=str)]
        hashed = pd.util.hash_pandas_object(ordered, index=False, categorize=True)
        digest.update(np.ascontiguousarray(hashed.to_numpy(dtype=np.uint64)).tobytes())
    return digest.hexdigest()


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write JSON through a temp file and ``os.replace``: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str))
    os.replace(tmp, path)


def summarise(kinds: dict[str, KindDecision]) -> tuple[RetrainStatus, str]:
    """The overall status and a one-line-per-kind message."""
    actions = {KindAction(k.action) for k in kinds.values()}
    if KindAction.PROMOTED in actions:
        status = RetrainStatus.PROMOTED
    elif actions == {KindAction.UNCHANGED}:
        status = RetrainStatus.UNCHANGED
    elif actions == {KindAction.REFUSED}:
        status = RetrainStatus.REFUSED
    else:
        status = RetrainStatus.KEPT
    message = "\n".join(f"{k.kind}: {k.action}: {k.reason}" for k in kinds.values())
    return status, message


def write_decision(decision: RetrainDecision, decisions_dir: Path, started: pd.Timestamp) -> Path:
    """Write the decision JSON (and ``latest.json``) atomically; returns its path."""
    path = decisions_dir / f"{started:%Y%m%dT%H%M%SZ}-{decision.retrain_id}.json"
    decision.decision_path = path
    write_json_atomic(path, decision.to_dict())
    write_json_atomic(decisions_dir / "latest.json", decision.to_dict())
    return path
