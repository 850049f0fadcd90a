"""The Dask commands print trialcast's answer, not the cluster's log.

Dask's ``distributed`` configures its own loggers when it is imported, after the CLI
has quieted the libraries: every ``trialcast dask`` run printed the scheduler's INFO
lines and, at shutdown, a ``CommClosedError`` traceback. Run as a user runs it (a new
process), on a small generated company unlike the demo (10-day trials).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

TRIALCAST = [sys.executable, "-m", "trialcast.cli"]


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    # As from a user's shell: not the setting an in-process CLI test left in this one.
    env = {k: v for k, v in os.environ.items() if not k.startswith("DASK_LOGGING")}
    return subprocess.run(
        [*TRIALCAST, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300,
        check=False,
    )  # fmt: skip


def test_dask_features_prints_no_cluster_log_unless_verbose(tmp_path: Path) -> None:
    made = _run(["demo-data", "--out", "co", "--accounts", "600", "--seed", "5",
                 "--trial-days", "10"], tmp_path)  # fmt: skip
    assert made.returncode == 0, made.stderr[-2000:]
    config = str(tmp_path / "co" / "trialcast.toml")
    quiet = _run(["dask", "features", "-c", config, "--workers", "1"], tmp_path)
    text = quiet.stdout + quiet.stderr
    assert quiet.returncode == 0, text[-2000:]
    assert "account_features" in text and "trial_training" in text
    assert "INFO distributed" not in text and "Traceback" not in text, text[-2000:]
    loud = _run(["--verbose", "dask", "features", "-c", config, "--workers", "1",
                 "--out", str(tmp_path / "again")], tmp_path)  # fmt: skip
    assert loud.returncode == 0, (loud.stdout + loud.stderr)[-2000:]
    assert "INFO distributed" in loud.stdout + loud.stderr  # --verbose still shows them
