"""Features are byte-identical to those of the code before the reading / leak-scan rewrite."""

from __future__ import annotations

import json
from pathlib import Path

from feature_fingerprints import fingerprints, same_fingerprints

STORED = Path(__file__).parents[1] / "data" / "feature_fingerprints.json"


def test_features_identical_to_the_stored_fingerprints(tmp_path: Path) -> None:
    expected = json.loads(STORED.read_text())
    assert same_fingerprints(fingerprints(tmp_path), expected) == []
