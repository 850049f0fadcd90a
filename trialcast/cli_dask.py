"""``trialcast dask ...``: the feature, training and scoring jobs on a Dask cluster.

``--dask-scheduler ADDRESS`` (or env ``TRIALCAST_DASK_SCHEDULER``) points at a real
cluster; without it a ``LocalCluster`` with ``--workers`` processes is started.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from trialcast.cli_common import console, fail, load_config_or_exit, say

dask_app = typer.Typer(
    help="Run features, training and batch scoring on Dask.", no_args_is_help=True
)

Scheduler = Annotated[
    str | None,
    typer.Option("--dask-scheduler", help="Scheduler address (default: a LocalCluster)."),
]
Workers = Annotated[int, typer.Option(min=1, help="LocalCluster worker processes.")]


@dask_app.command("features")
def dask_features(
    config: Annotated[Path, typer.Option("--config", "-c", help="Company config (TOML).")],
    out: Annotated[
        Path | None, typer.Option(help="Output folder (default: <config folder>/features_dask).")
    ] = None,
    dask_scheduler: Scheduler = None,
    workers: Workers = 2,
) -> None:
    """Validated features and training sets, partitioned by account (same values as `features`)."""
    from trialcast.dask_jobs import run_features_dask

    cfg = load_config_or_exit(config)
    target = out or config.parent / "features_dask"
    try:
        with console.status("Building features on Dask..."):
            result = run_features_dask(cfg, target, scheduler=dask_scheduler, n_workers=workers)
    except ValueError as exc:  # InputError included: bad input, said in words
        fail(str(exc))
    console.print(
        f"{result.n_events:,} events in {result.n_partitions} partitions, {result.seconds}"
    )
    for name, path in result.outputs.items():
        console.print(f"  {name:<22} {path}")


@dask_app.command("train")
def dask_train(
    config: Annotated[Path, typer.Option("--config", "-c", help="Company config (TOML).")],
    features_dir: Annotated[Path, typer.Option(help="Output of `trialcast dask features`.")],
    model_dir: Annotated[Path, typer.Option(help="Where to save the models.")],
    dask_scheduler: Scheduler = None,
    workers: Workers = 2,
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow tracking URI.")] = None,
) -> None:
    """Train and judge with lightgbm.dask through the recipe of `trialcast train`; each
    judged model is logged and registered in MLflow and saved as a model folder."""
    from training.train import RecordTarget
    from trialcast.dask_jobs import run_train_dask

    result = run_train_dask(
        load_config_or_exit(config),
        features_dir,
        model_dir,
        scheduler=dask_scheduler,
        n_workers=workers,
        record=RecordTarget(tracking_uri=tracking_uri),
    )
    for kind, path in result.models.items():
        say(f"{kind}: {result.verdicts.get(kind, '')} -> {path} {result.metrics.get(kind, {})}")
    for kind, version in result.versions.items():
        say(f"{kind}: registered as version {version} in {result.tracking_uri}")
    for kind, reason in result.refused.items():
        rejected = kind in result.verdicts
        say(f"{kind} {'refused by the promotion gate' if rejected else 'not trained'}: {reason}")


@dask_app.command("score")
def dask_score(
    model_dir: Annotated[
        Path, typer.Option(help="A saved model folder (e.g. <model-dir>/conversion).")
    ],
    out: Annotated[Path, typer.Option(help="Output Parquet folder.")],
    features_path: Annotated[
        Path | None, typer.Option(help="Feature rows (Parquet file or folder).")
    ] = None,
    dask_scheduler: Scheduler = None,
    workers: Workers = 2,
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="Score open trials at --as-of (shipping path)."),
    ] = None,
    as_of: Annotated[
        str | None, typer.Option(help="Scoring moment (default: the export time).")
    ] = None,
) -> None:
    """Batch-score feature rows with probabilities and top reasons via map_partitions.

    With ``--config``: score at ``--as-of`` through the shipping path instead
    (``--features-path`` is then not read): the open trials for a conversion model,
    the paying customers for a churn model.
    """
    import pandas as pd

    from trialcast.dask_jobs import run_customers_dask, run_open_trials_dask, run_score_dask

    if config is not None:
        try:
            moment = pd.Timestamp(as_of) if as_of else None
        except ValueError:
            fail(f"--as-of: not a date/time: {as_of!r}")
        from models.kinds import model_kind
        from training.model import TrialcastModel

        try:
            kind = model_kind(TrialcastModel.load(model_dir).kind)
        except (OSError, ValueError, KeyError) as exc:
            fail(f"{model_dir}: not a saved model folder ({exc})")
        job = run_customers_dask if kind.scores_customers else run_open_trials_dask
        try:
            done = job(
                load_config_or_exit(config),
                model_dir,
                out,
                scheduler=dask_scheduler,
                n_workers=workers,
                as_of=moment,
            )
        except ValueError as exc:
            fail(str(exc))
        what = (
            "paying customers for churn"
            if kind.scores_customers
            else f"open trials ({done['closed']:,} more past their window: closed, p = 0)"
        )
        say(f"Scored {done['rows']:,} {what} as of {done['as_of']} -> {done['path']}")
        return
    if features_path is None:
        fail("--features-path is required without --config")

    try:
        result = run_score_dask(
            model_dir, features_path, out, scheduler=dask_scheduler, n_workers=workers
        )
    except ValueError as exc:
        fail(str(exc))
    console.print(f"Scored: {result}")
