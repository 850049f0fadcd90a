"""Per-event-type counts for the spec's top-K event types, in any vocabulary."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.event_index import EventCut
from features.spec import FeatureSpec


def compute_event_count_features(cut: EventCut, spec: FeatureSpec) -> dict[str, np.ndarray]:
    """``count_<slug>_all``: events of each top-K type before ``as_of`` (events)."""
    k = len(spec.top_event_types)
    if k == 0:
        return {}
    # Map this data's event codes onto the spec's top-K positions (-1 = not a top type).
    positions = np.full(len(cut.index.vocabulary), -1, dtype=np.int64)
    found = cut.index.vocabulary.get_indexer(pd.Index(spec.top_event_types))
    positions[found[found >= 0]] = np.flatnonzero(found >= 0)
    pos = positions[cut.event]
    hit = pos >= 0
    flat = np.bincount(cut.row[hit] * k + pos[hit], minlength=cut.n_rows * k)
    matrix = flat.reshape(cut.n_rows, k).astype(np.float64)
    return {f"count_{slug}_all": matrix[:, j] for j, slug in enumerate(spec.event_slugs)}
