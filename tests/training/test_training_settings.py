"""Tracking URI precedence, artifact location, git commit, and the Optuna search."""

from pathlib import Path

from features.config import load_demo_config
from training.settings import ENV_TRACKING_URI, resolve_artifact_location, resolve_tracking_uri
from training.tracking import git_commit
from training.train import fit_and_evaluate


def test_tracking_uri_precedence(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV_TRACKING_URI, raising=False)
    config = load_demo_config()
    default = resolve_tracking_uri(config, project_dir=tmp_path)
    assert default == f"sqlite:///{tmp_path.resolve() / 'models' / 'mlflow.db'}"
    assert (tmp_path / "models").is_dir()
    in_config = config.model_copy(
        update={"registry": config.registry.model_copy(update={"tracking_uri": "sqlite:///c.db"})}
    )
    assert resolve_tracking_uri(in_config) == "sqlite:///c.db"
    monkeypatch.setenv(ENV_TRACKING_URI, "postgresql+psycopg://x@h/db")
    assert resolve_tracking_uri(in_config) == "postgresql+psycopg://x@h/db"
    assert resolve_tracking_uri(in_config, "sqlite:///explicit.db") == "sqlite:///explicit.db"


def test_artifacts_live_next_to_a_sqlite_store_or_under_models(tmp_path, monkeypatch):
    monkeypatch.delenv("TRIALCAST_ARTIFACT_ROOT", raising=False)
    db = tmp_path / "store" / "mlflow.db"
    assert (
        resolve_artifact_location(f"sqlite:///{db}") == (tmp_path / "store" / "artifacts").as_uri()
    )
    other = resolve_artifact_location("postgresql+psycopg://x@h/db", project_dir=tmp_path)
    assert other == (tmp_path / "models" / "artifacts").as_uri()
    monkeypatch.setenv("TRIALCAST_ARTIFACT_ROOT", "s3://bucket/trialcast")
    assert resolve_artifact_location("sqlite:///x.db") == "s3://bucket/trialcast"


def test_git_commit_reads_dot_git_or_says_unknown(tmp_path, monkeypatch):
    monkeypatch.delenv("TRIALCAST_GIT_COMMIT", raising=False)
    assert git_commit(tmp_path) == "unknown" or len(git_commit(tmp_path)) == 40
    repo = tmp_path / "repo"
    (repo / ".git" / "refs" / "heads").mkdir(parents=True)
    (repo / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (repo / ".git" / "refs" / "heads" / "main").write_text("a" * 40 + "\n")
    (repo / "sub").mkdir()
    assert git_commit(repo / "sub") == "a" * 40  # found from a subfolder too
    monkeypatch.setenv("TRIALCAST_GIT_COMMIT", "deadbeef")
    assert git_commit(Path("/")) == "deadbeef"


def test_tuning_searches_and_keeps_fixed_params(synthetic_frame):
    base = load_demo_config()
    config = base.model_copy(update={"model": base.model.model_copy(update={"tune_trials": 3})})
    frame, _ = synthetic_frame(3000, seed=4, snapshots=("d1", "end"))
    fitted = fit_and_evaluate(config, frame, "churn", tune=True)
    assert fitted.tuning is not None and fitted.tuning.trials == 3
    params = fitted.model.params
    assert {
        "num_leaves",
        "learning_rate",
        "min_child_samples",
        "feature_fraction",
        "lambda_l2",
    } <= set(params)
    assert params["bagging_freq"] == 1 and params["seed"] == 0  # untouched settings survive
    assert 0 < fitted.tuning.best_log_loss < fitted.base_rate.base_log_loss
