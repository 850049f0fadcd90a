"""Opening the MLflow store early: overlapped with the fit, never twice, never remote."""

from __future__ import annotations

import time
from pathlib import Path

from training import tracking
from training.tracking import open_store_early, use_tracking_uri


def test_a_database_store_opens_in_the_background_and_the_run_waits_for_it(
    tmp_path: Path,
) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    open_store_early(uri)
    assert uri in tracking._OPENING  # opening while the caller goes on
    with use_tracking_uri(uri) as client:  # waits, then uses the opened store
        assert uri not in tracking._OPENING
        experiment = client.create_experiment("early")
        assert client.get_experiment(experiment).name == "early"
    assert (tmp_path / "mlflow.db").stat().st_size > 0


def test_a_remote_store_is_not_opened_early() -> None:
    started = time.perf_counter()
    open_store_early("http://127.0.0.1:9")  # nothing listens: opening would retry for minutes
    assert "http://127.0.0.1:9" not in tracking._OPENING
    assert time.perf_counter() - started < 1.0


def test_a_store_that_cannot_open_is_silent_and_the_run_reports_it(tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    uri = f"sqlite:///{blocker / 'mlflow.db'}"  # cannot be created
    tracking._open_store(uri)  # what the background thread runs: no exception escapes
    assert blocker.read_text() == "not a folder"
