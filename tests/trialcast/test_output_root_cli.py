"""The output root follows the config of each command in one process, unless the user set it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from features.config import demo_config_text
from models.settings import ENV_OUTPUT_DIR
from trialcast.cli_common import load_config_or_exit


def _config(folder: Path) -> Path:
    folder.mkdir(parents=True)
    path = folder / "trialcast.toml"
    path.write_text(demo_config_text())  # output_dir "." : the config's own folder
    return path


def test_two_configs_in_one_process_write_into_their_own_folders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV_OUTPUT_DIR, raising=False)
    first = load_config_or_exit(_config(tmp_path / "first"))
    assert os.environ[ENV_OUTPUT_DIR] == str(first.output_root)
    second = load_config_or_exit(_config(tmp_path / "second"))
    assert second.output_root != first.output_root
    assert os.environ[ENV_OUTPUT_DIR] == str(second.output_root)  # not the first's


def test_an_output_root_the_user_set_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mine = str(tmp_path / "mine")
    monkeypatch.setenv(ENV_OUTPUT_DIR, mine)
    load_config_or_exit(_config(tmp_path / "company"))
    assert os.environ[ENV_OUTPUT_DIR] == mine
