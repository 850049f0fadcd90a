"""One alert: what kind of thing is wrong, about what, since when, and the evidence in words."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum


class AlertKind(StrEnum):
    """Where the problem is: the outcomes, the inputs or the data itself."""

    OUTCOMES = "outcomes"
    INPUTS = "inputs"
    DATA = "data"


@dataclass(frozen=True)
class Alert:
    """An alert as written to the monitoring JSON.

    Attributes:
        kind: outcomes, inputs or data.
        subject: what it is about (a model kind, a feature, an event type, a table).
        since: ISO date the problem starts (``None`` when unknown).
        evidence: the numbers, in words.
    """

    kind: AlertKind
    subject: str
    since: str | None
    evidence: str

    def to_dict(self) -> dict[str, str | None]:
        """Plain JSON-ready fields."""
        out = asdict(self)
        out["kind"] = self.kind.value
        return out
