"""Config sections for training: LightGBM settings, the promotion gate, the registry.

The ``[model]``, ``[promotion]`` and ``[registry]`` sections of the company config
are read by training (fit, gate, registry) and serving (registered names, tracking
URI), never by the feature code. They live here, a leaf that imports only the
config base class, so ``features.config.CompanyConfig`` can hold them without the
feature package owning them (``tests/test_import_graph.py`` allows exactly this
one import from ``features`` into ``models``).
"""

from __future__ import annotations

from pydantic import Field

from features.config_sources import StrictModel


class PromotionConfig(StrictModel):
    """The promotion gate: evidence a model adds something before it becomes champion.

    Attributes:
        min_test_accounts, min_test_positives: below these the verdict is "too
            little data" whatever the numbers say (positives count accounts
            with a positive row, not snapshot rows).
        bootstrap: bootstrap resamples (by account) of the test part.
        confidence: two-sided level of the reported intervals; promotion needs
            the lower bound of the log-loss gain above 0.
        small_data_trials, small_data_converters: below either, training runs in
            small-data mode (repeated time-ordered CV, stronger regularisation).
        min_segment_rows: no segment metric is reported on fewer rows.
        flat_spread: a model whose test probabilities span less than this
            (95th minus 5th percentile) gives everyone the same chance: a
            "flat model", no ranking, never promoted.
    """

    min_test_accounts: int = Field(100, ge=1)
    min_test_positives: int = Field(20, ge=1)
    bootstrap: int = Field(300, ge=50)
    confidence: float = Field(0.9, gt=0.5, lt=1)
    small_data_trials: int = Field(2000, ge=0)
    small_data_converters: int = Field(200, ge=0)
    min_segment_rows: int = Field(30, ge=1)
    flat_spread: float = Field(0.002, ge=0, lt=1)


DEFAULT_LIGHTGBM_PARAMS: dict[str, float | int | str] = {
    "objective": "binary",
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_child_samples": 50,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "verbose": -1,
    "seed": 0,
    "num_threads": 2,
}


class ModelConfig(StrictModel):
    """Model training settings (shared by the conversion and churn models).

    Attributes:
        lightgbm: LightGBM parameters (passed through; no class weights, so the
            raw scores stay calibratable).
        num_boost_round: maximum boosting rounds (early stopping on validation).
        early_stopping_rounds: stop after this many rounds without improvement.
        valid_fraction, test_fraction: newest cohorts held out for calibration /
            early stopping and for the final test (split by account, in time order).
        min_positives: refuse to train with fewer positive rows than this.
        leakage_auc: a single feature whose ROC AUC alone exceeds this is treated
            as a probable leak and excluded (unless forced).
        promote_min_logloss_gain: a challenger must beat the champion's log loss
            on the same holdout by at least this much to be promoted.
        tune_trials: Optuna trials for ``--tune``.
    """

    lightgbm: dict[str, float | int | str] = Field(
        default_factory=lambda: dict(DEFAULT_LIGHTGBM_PARAMS)  # type: ignore[arg-type]
    )
    num_boost_round: int = Field(1000, gt=0)
    early_stopping_rounds: int = Field(50, gt=0)
    valid_fraction: float = Field(0.15, gt=0, lt=0.5)
    test_fraction: float = Field(0.15, gt=0, lt=0.5)
    min_positives: int = Field(50, ge=1)
    leakage_auc: float = Field(0.98, gt=0.5, le=1.0)
    promote_min_logloss_gain: float = Field(0.0, ge=0)
    tune_trials: int = Field(30, gt=0)


class RegistryConfig(StrictModel):
    """Where models are tracked and registered (env vars override, see models.settings).

    Attributes:
        tracking_uri: MLflow tracking URI; default a SQLite store under the output
            root's ``models/`` folder.
        experiment: MLflow experiment name.
        conversion_model: registered model name of the trial-to-paid model.
        churn_model: registered model name of the churn model.
    """

    tracking_uri: str | None = None
    experiment: str = "trialcast"
    conversion_model: str = "trialcast-conversion"
    churn_model: str = "trialcast-churn"
