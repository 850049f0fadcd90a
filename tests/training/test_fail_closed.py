"""The registry and the Dask scoring jobs fail closed: only a ``promoted`` verdict passes.

Fast checks of the rules themselves (``decide_promotion``, ``require_promoted``);
the same rules on real trained models are in ``test_training_e2e.py`` and
``test_gate_companies.py``.
"""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest

from training.dask_gate import GATE_FILE, require_promoted
from training.registry import decide_promotion


def _version(number: int, **tags: str) -> Any:
    """What ``decide_promotion`` reads of an MLflow ``ModelVersion``: number and tags."""
    return SimpleNamespace(version=str(number), tags=tags)


@pytest.mark.parametrize("force", [False, True])
@pytest.mark.parametrize(
    ("tags", "words"),
    [
        ({}, "no verdict tag"),
        ({"verdict": "probable leak"}, "never promoted, not even with --force"),
        ({"verdict": "no lift found", "beats_base_rate": "true"}, "does not override"),
        ({"verdict": "no lift beyond timing"}, "does not override"),
        ({"verdict": "flat model"}, "does not override"),
        (
            {"verdict": "too little data", "verdict_text": "too little data (n=9, positives=2)"},
            "n=9",
        ),
    ],
)
def test_only_a_promoted_verdict_may_become_champion(tags, words, force) -> None:
    reason = decide_promotion(_version(2, **tags), _version(1, verdict="promoted"), force=force)
    assert reason and words in reason


def test_force_overrides_only_a_lost_duel_with_the_champion() -> None:
    lost = _version(2, verdict="promoted", beats_champion="false")
    champion = _version(1, verdict="promoted")
    assert "did not beat champion" in decide_promotion(lost, champion, force=False)
    assert decide_promotion(lost, champion, force=True) == ""
    # beats_base_rate is ignored: the verdict is the one source of truth
    old = _version(3, verdict="promoted", beats_base_rate="false")
    assert decide_promotion(old, None, force=False) == ""


def test_dask_scoring_refuses_a_folder_never_judged(tmp_path) -> None:
    with pytest.raises(ValueError, match="never judged"):
        require_promoted(tmp_path)
    (tmp_path / GATE_FILE).write_text(json.dumps({"verdict": "no lift found"}))
    with pytest.raises(ValueError, match="promotion gate refused"):
        require_promoted(tmp_path)
    (tmp_path / GATE_FILE).write_text(json.dumps({"verdict": "promoted"}))
    require_promoted(tmp_path)
