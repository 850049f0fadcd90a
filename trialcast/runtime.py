"""Process-wide runtime settings for the command-line jobs."""

from __future__ import annotations

#: BentoML's own switch for its usage statistics (``bentoml serve`` reads it).
BENTOML_TRACKING_ENV = "BENTOML_DO_NOT_TRACK"


def disable_telemetry() -> None:
    """No usage telemetry from MLflow or BentoML in this process and the ones it starts.

    Both libraries report anonymous usage over the internet by default; a
    trialcast job needs no internet and should not wait on it. Set as
    environment variables (a value the user set is kept) before either library
    is imported, so ``trialcast serve``'s ``bentoml serve`` inherits them.
    """
    import os

    from models.mlflow_env import disable_mlflow_telemetry

    disable_mlflow_telemetry()
    os.environ.setdefault(BENTOML_TRACKING_ENV, "true")


#: OpenMP's switch between spinning and sleeping while its threads wait for work.
OPENMP_WAIT_ENV = "OMP_WAIT_POLICY"
#: GNU OpenMP's own spin setting (a user who set it chose the waiting already).
GOMP_SPIN_ENV = "GOMP_SPINCOUNT"


def openmp_wait_policy(load: float, cores: int) -> str | None:
    """``"PASSIVE"`` when the machine is busy (the 1-minute load average already fills
    every usable core), else None (OpenMP's default: spin a while, then sleep).

    Measured with ``trialcast train`` on the 10,000-account demo (docs/benchmarks.md,
    session 10): alone on a quiet machine, sleeping threads cost 30% (conversion
    4.5 -> 5.9 s); with a second training job running, spinning threads fight each
    other and sleeping is 1.5x faster (conversion 12-15 -> 6.5-7.2 s, the pair's
    wall 32 -> 21-24 s).
    """
    return "PASSIVE" if load >= cores else None


def passive_openmp_when_busy() -> None:
    """Let LightGBM's OpenMP threads sleep instead of spin when the machine is busy.

    Decided once, at a command's start, from the load average (``openmp_wait_policy``);
    set before LightGBM is imported (OpenMP reads it once, when it loads) and
    inherited by the processes the command starts. A value the user set is kept.
    """
    import os

    from features.parallel import usable_cores

    if OPENMP_WAIT_ENV in os.environ or GOMP_SPIN_ENV in os.environ:
        return
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # not on Unix / no load average
        return
    policy = openmp_wait_policy(load, usable_cores())
    if policy is not None:
        os.environ[OPENMP_WAIT_ENV] = policy


#: Libraries whose INFO lines and warnings are noise in a command's output.
NOISY_LIBRARIES = (
    "mlflow",
    "alembic",
    "bentoml",
    "shap",
    "lightgbm",
    "sklearn",
    "optuna",
    "distributed",
    "dask",
    "numba",
    "urllib3",
    "git",
    "matplotlib",
    "PIL",
    "httpx",
    "pandera",
)


def quiet_libraries(verbose: bool = False) -> None:
    """Hide library INFO lines and warnings unless ``--verbose`` asked for them.

    A user reads trialcast's own output (summaries, tables, errors); MLflow's
    "Registered model ..." lines, Alembic migrations, SHAP and scikit-learn
    deprecation warnings say nothing they can act on. With ``verbose`` every
    library logs at INFO and every warning is shown once.
    """
    import logging
    import os
    import warnings

    if verbose:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
        warnings.simplefilter("default")
        return
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "ERROR")  # MLflow sets its own level on import
    os.environ.setdefault("TQDM_DISABLE", "1")
    # Dask's distributed sets its loggers' levels from its config when imported (after
    # this): INFO lines and a "CommClosedError" traceback at every cluster shutdown.
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "error")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for name in NOISY_LIBRARIES:
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.simplefilter("ignore", FutureWarning)
    warnings.simplefilter("ignore", DeprecationWarning)
    warnings.simplefilter("ignore", PendingDeprecationWarning)
    pattern = "|".join(NOISY_LIBRARIES)
    warnings.filterwarnings("ignore", module=rf"^({pattern})(\.|$)")
    warnings.filterwarnings("ignore", category=UserWarning, message=".*(pip|MLflow|mlflow).*")
