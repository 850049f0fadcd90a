"""Record a monitor run in MLflow: one run per (as-of, champion versions), reused on rerun."""

from __future__ import annotations

import mlflow
from mlflow import MlflowClient

from features.config import CompanyConfig
from training.settings import resolve_artifact_location
from training.tracking import get_or_create_experiment
from trialcast.monitoring.job import MonitorReport

#: Experiment of the monitor runs: the training experiment's name plus this.
EXPERIMENT_SUFFIX = "-monitoring"
VERDICT_CODE = {
    "healthy": 0,
    "too early to tell": 1,
    "inputs shifted": 2,
    "outcomes shifted": 3,
    "data broken": 4,
}


def monitor_metrics(report: MonitorReport) -> dict[str, float]:
    """Scalar metrics of a report (finite values only)."""
    out: dict[str, float] = {
        "verdict_code": float(VERDICT_CODE[report.verdict.value]),
        "alerts": float(len(report.alerts)),
        "alerts_data": float(sum(a.kind.value == "data" for a in report.alerts)),
        "seconds": report.seconds,
    }
    for kind, health in report.kinds.items():
        test, drift = health.test, health.drift
        out[f"{kind}.outcome_log_lr"] = test.log_lr
        out[f"{kind}.expected_so_far"] = test.expected
        out[f"{kind}.realised_so_far"] = float(test.realised)
        out[f"{kind}.outcome_p_value"] = test.p_value
        out[f"{kind}.prediction_psi"] = drift.prediction_psi
        if len(drift.features):
            out[f"{kind}.max_feature_psi"] = float(drift.features["psi"].max())
        cohorts = health.cohorts
        if "auc_error" in cohorts:
            errors = cohorts["auc_error"].dropna()
            if len(errors):
                out[f"{kind}.estimated_auc_mae"] = float(errors.abs().mean())
                out[f"{kind}.realised_auc_mean"] = float(cohorts["auc_realised"].dropna().mean())
        for key in ("monthly_mean_abs", "pooled_error", "weekly_noise_mean_abs"):
            value = health.estimation.get(key)
            if value is not None:
                out[f"{kind}.estimated_auc_{key}"] = float(value)
        out[f"{kind}.outcome_threshold"] = test.threshold
    return {k: float(v) for k, v in out.items() if v == v and abs(v) != float("inf")}


def record_monitor_run(
    client: MlflowClient, config: CompanyConfig, report: MonitorReport, *, tracking_uri: str
) -> str:
    """Log ``report`` to MLflow (inside ``use_tracking_uri``); returns the run id.

    A run already holding the same as-of and champion versions is reused, so a
    second run of the job overwrites the same metrics instead of adding a run.
    """
    experiment_id = get_or_create_experiment(
        client,
        config.registry.experiment + EXPERIMENT_SUFFIX,
        resolve_artifact_location(tracking_uri),
    )
    tags = {
        "trialcast.job": "monitor",
        "trialcast.monitor_as_of": report.as_of.isoformat(),
        "company": config.company,
        "verdict": report.verdict.value,
    }
    for kind, health in report.kinds.items():
        tags[f"trialcast.{kind}_version"] = health.champion.version
    query = " and ".join(
        f"tags.`{k}` = '{v}'" for k, v in tags.items() if k not in ("verdict", "company")
    )
    found = client.search_runs([experiment_id], filter_string=query, max_results=1)
    run_id = found[0].info.run_id if found else None
    with mlflow.start_run(
        run_id=run_id, experiment_id=experiment_id, run_name=f"monitor-{report.as_of.date()}"
    ) as run:
        mlflow.set_tags(tags)
        mlflow.log_metrics(monitor_metrics(report))
        mlflow.log_dict(report.to_json(), "monitoring.json")
        return str(run.info.run_id)
