"""The verdict in words, from the alerts, and the exit code a scheduler reads."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from enum import StrEnum
from typing import Any

from models.kinds import model_kind
from trialcast.monitoring.alerts import Alert, AlertKind
from trialcast.monitoring.drift import DriftReport
from trialcast.monitoring.outcomes import OutcomeTest


class Verdict(StrEnum):
    """What the monitor concludes, most serious first in ``decide_verdict``."""

    HEALTHY = "healthy"
    TOO_EARLY = "too early to tell"
    INPUTS_SHIFTED = "inputs shifted"
    OUTCOMES_SHIFTED = "outcomes shifted"
    DATA_BROKEN = "data broken"

    @property
    def exit_code(self) -> int:
        """0 when healthy or too early to tell, 1 on an alert (2 is kept for errors)."""
        return 0 if self in (Verdict.HEALTHY, Verdict.TOO_EARLY) else 1


def outcome_alert(kind: str, test: OutcomeTest) -> Alert | None:
    """An outcomes alert when the sequential test rang."""
    if not test.alarm:
        return None
    since = None if test.since is None else test.since.date().isoformat()
    return Alert(
        AlertKind.OUTCOMES, f"{kind} model", since, test.evidence(model_kind(kind).counted)
    )


def _gain_text(row: Mapping[Hashable, Any], kind: str) -> str:
    """The feature's share of the model's gain, and with its near-copies when that is more."""
    own = 100 * float(row["importance"])
    group = 100 * float(row.get("group_importance", row["importance"]))
    text = f"{own:.0f}% of the {kind} model's gain"
    if round(group) > round(own):
        text += f", {group:.0f}% with the inputs that move with it"
    return text


def input_alerts(kind: str, drift: DriftReport, *, top: int = 3) -> list[Alert]:
    """Inputs alerts: the materially moved features (largest first) and the predictions."""
    if not drift.shifted:
        return []
    alerts = [
        Alert(
            AlertKind.INPUTS,
            f"feature {row['feature']}",
            None,
            f"{row['feature']}: PSI {float(row['psi']):.2f} vs the training window "
            f"({_gain_text(row, kind)})",
        )
        for row in drift.material.head(top).to_dict("records")
    ]
    alerts.append(
        Alert(
            AlertKind.INPUTS,
            f"{kind} predictions",
            None,
            f"{kind} probabilities: PSI {drift.prediction_psi:.2f} vs the training window "
            f"({drift.n_recent:,} recent trials vs {drift.n_reference:,})",
        )
    )
    return alerts


def decide_verdict(alerts: list[Alert], *, enough_outcomes: bool) -> Verdict:
    """Data broken > outcomes shifted > inputs shifted > too early to tell > healthy."""
    kinds = {a.kind for a in alerts}
    if AlertKind.DATA in kinds:
        return Verdict.DATA_BROKEN
    if AlertKind.OUTCOMES in kinds:
        return Verdict.OUTCOMES_SHIFTED
    if AlertKind.INPUTS in kinds:
        return Verdict.INPUTS_SHIFTED
    return Verdict.HEALTHY if enough_outcomes else Verdict.TOO_EARLY
