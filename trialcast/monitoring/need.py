"""``retrain --when-needed``: read the monitor's verdict and decide whether to retrain.

Called at the start of the retrain job. A model trained on a broken week is
worse than a stale one, so ``data broken`` refuses (the job exits with
``EXIT_DATA_BROKEN``); ``outcomes shifted`` and material ``inputs shifted``
retrain; so does a champion older than the configured maximum age, or no
champion at all; otherwise the champion is kept and nothing is trained.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import pandas as pd
from mlflow import MlflowClient

from features.config import CompanyConfig
from features.tables import Tables
from trialcast.monitoring.champion import load_champion
from trialcast.monitoring.job import MonitorReport, run_monitor, write_report
from trialcast.monitoring.verdict import Verdict

#: Exit code of a retrain refused because the data is broken (apart from 1 and 2).
EXIT_DATA_BROKEN = 3
DEFAULT_MAX_AGE_DAYS = 90


class NeedAction(StrEnum):
    """What the retrain job does after reading the verdict."""

    RETRAIN = "retrain"
    KEEP = "keep"
    REFUSE = "refuse"


@dataclass(frozen=True)
class RetrainNeed:
    """The decision and why, in words."""

    action: NeedAction
    reason: str
    verdict: Verdict | None = None


def decide_need(
    verdict: Verdict | None,
    evidence: list[str],
    *,
    champion_age_days: float | None,
    max_age_days: float,
) -> RetrainNeed:
    """The decision from a verdict (``None``: no champion) and the champion's age."""
    if verdict is None or champion_age_days is None:
        return RetrainNeed(NeedAction.RETRAIN, "no champion yet: train one", verdict)
    if verdict is Verdict.DATA_BROKEN:
        return RetrainNeed(
            NeedAction.REFUSE,
            "refused: the data is broken, and a model trained on it would be worse than the "
            "champion: " + "; ".join(evidence),
            verdict,
        )
    if verdict in (Verdict.OUTCOMES_SHIFTED, Verdict.INPUTS_SHIFTED):
        return RetrainNeed(NeedAction.RETRAIN, f"{verdict.value}: " + "; ".join(evidence), verdict)
    if champion_age_days > max_age_days:
        return RetrainNeed(
            NeedAction.RETRAIN,
            f"{verdict.value}, but the champion was trained {champion_age_days:.0f} days ago "
            f"(maximum age {max_age_days:.0f} days)",
            verdict,
        )
    return RetrainNeed(
        NeedAction.KEEP,
        f"{verdict.value}: the champion is kept (trained {champion_age_days:.0f} days ago)",
        verdict,
    )


def assess_need(
    client: MlflowClient,
    config: CompanyConfig,
    tables: Tables,
    *,
    as_of: pd.Timestamp | None,
    output_root: Path,
    max_age_days: float = DEFAULT_MAX_AGE_DAYS,
) -> tuple[RetrainNeed, MonitorReport | None]:
    """Run the monitor on the champions (writing its report) and decide.

    The conversion champion must exist (else: train); a churn champion, when
    there is one, is judged too, so its shifted outcomes also retrain.
    """
    champion = load_champion(client, config, "conversion")
    if champion is None:
        return decide_need(None, [], champion_age_days=None, max_age_days=max_age_days), None
    champions = {"conversion": champion}
    churn = load_champion(client, config, "churn")
    if churn is not None:
        champions["churn"] = churn
    report = run_monitor(config, tables, champions, as_of=as_of)
    write_report(report, output_root)
    age = (report.as_of - champion.trained_at) / pd.Timedelta(days=1)
    need = decide_need(
        report.verdict,
        [a.evidence for a in report.alerts],
        champion_age_days=age,
        max_age_days=max_age_days,
    )
    return need, report
