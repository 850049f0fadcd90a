"""The latest trial funnel as the service serves it (``GET /funnel``, ``/ui/funnel``).

``trialcast funnel`` writes its long table (``funnel.csv``), metadata
(``funnel_meta.json``) and picture into one folder (``TRIALCAST_FUNNEL_DIR``,
default ``models/funnel`` under the output root); the service reads the newest
on each request, so a new run shows up without a restart.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from models.settings import output_root

ENV_FUNNEL_DIR = "TRIALCAST_FUNNEL_DIR"
DEFAULT_FUNNEL_DIR = Path("models") / "funnel"
TABLE_FILE, META_FILE, PICTURE_FILE = "funnel.csv", "funnel_meta.json", "funnel.png"


def resolve_funnel_dir(path: str | Path | None = None) -> Path:
    """The funnel folder: ``path``, else ``TRIALCAST_FUNNEL_DIR``, else ``models/funnel``."""
    if path is not None:
        return Path(path)
    env = os.environ.get(ENV_FUNNEL_DIR)
    return Path(env) if env else output_root() / DEFAULT_FUNNEL_DIR


@dataclass(frozen=True)
class LatestFunnel:
    """A written funnel: the long table and its metadata (as_of, cohort period, model)."""

    table: pd.DataFrame
    meta: dict[str, Any]

    def views(self) -> list[tuple[str, str]]:
        """The (dimension, segment) pairs of the table: the whole funnel first, then motions."""
        pairs = self.table[["dimension", "segment"]].drop_duplicates()
        rank = {"total": 0, "motion": 1}
        ordered = sorted(
            pairs.itertuples(index=False), key=lambda r: (rank.get(r[0], 2), r[0], r[1])
        )
        return [(str(d), str(s)) for d, s in ordered]

    def view(self, dimension: str, segment: str) -> pd.DataFrame:
        """The rows of one motion / segment, by cohort then stage order."""
        t = self.table
        part = t[(t["dimension"] == dimension) & (t["segment"] == segment)]
        return part.sort_values(["cohort", "stage_order"]).reset_index(drop=True)


def read_latest_funnel(folder: str | Path | None = None) -> LatestFunnel | None:
    """The funnel in ``folder`` (see ``resolve_funnel_dir``), or ``None`` if there is none."""
    root = resolve_funnel_dir(folder)
    table, meta = root / TABLE_FILE, root / META_FILE
    if not table.exists() or not meta.exists():
        return None
    frame = pd.read_csv(table, dtype={"cohort": str, "segment": str, "dimension": str})
    return LatestFunnel(table=frame, meta=json.loads(meta.read_text()))


def _clean(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def funnel_payload(
    funnel: LatestFunnel, *, dimension: str | None = None, segment: str | None = None
) -> dict[str, Any]:
    """The JSON body of ``GET /funnel``: metadata and the rows (optionally one dimension /
    segment), numbers exactly as written (missing values are ``null``)."""
    t = funnel.table
    if dimension is not None:
        t = t[t["dimension"] == dimension]
    if segment is not None:
        t = t[t["segment"] == segment]
    rows = [{k: _clean(v) for k, v in r.items()} for r in t.to_dict("records")]
    return {**funnel.meta, "rows": rows}
