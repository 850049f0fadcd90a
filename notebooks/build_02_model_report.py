"""Writes notebooks/02_model_report.ipynb (outputs empty). Run: python notebooks/build_02_model_report.py"""

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

cells = [
    new_markdown_cell(
        "# Model report: the conversion model against its baselines\n\n"
        "Fits the conversion model on a small demo company with the library API "
        "(`features.transformer.PointInTimeFeatures` and `training.estimator.TrialcastClassifier`): "
        "no MLflow, no registry, no config file beyond the demo's. The newest cohorts are held out "
        "(the same time-ordered split `trialcast train` makes) and the model is compared with the "
        "baselines and the true-probability ceiling the demo data knows. `trialcast train` runs the "
        "same fit and records it in MLflow.\n\n"
        "Set `TRIALCAST_NOTEBOOK_ACCOUNTS` for a bigger demo set."
    ),
    new_code_cell(
        "import os\n"
        "\n"
        "import matplotlib\n"
        "\n"
        'matplotlib.use("Agg")\n'
        "import matplotlib.pyplot as plt\n"
        "import pandas as pd\n"
        "from IPython.display import display\n"
        "\n"
        "from features.build import FeatureBuilder\n"
        "from features.config import load_demo_config\n"
        "from features.demo.generator import generate_demo_data\n"
        "from features.transformer import PointInTimeFeatures\n"
        "from training.estimator import TrialcastClassifier\n"
        "from training.holdout import recent_holdout\n"
        "from training.plots import build_lift_plot, build_reliability_plot, build_roc_pr_plot, build_shap_summary_plot"
    ),
    new_code_cell(
        'n_accounts = int(os.environ.get("TRIALCAST_NOTEBOOK_ACCOUNTS", "2000"))\n'
        "demo = generate_demo_data(n_accounts, seed=0)\n"
        "config = load_demo_config()\n"
        "features = PointInTimeFeatures(config).fit(demo.tables)\n"
        'snapshots = features.training_set(demo.tables, kind="conversion")\n'
        "snapshots.shape"
    ),
    new_markdown_cell(
        "## Fit\n"
        "Time-ordered split by account: older cohorts train, the newest are the test part. "
        "`fit` holds out the last rows of the training part for early stopping and Platt scaling."
    ),
    new_code_cell(
        "holdout = recent_holdout(\n"
        '    snapshots, "conversion",\n'
        "    valid_fraction=config.model.valid_fraction, test_fraction=config.model.test_fraction,\n"
        ")\n"
        'train = holdout.train.sort_values("trial_start", kind="stable")\n'
        "X_cols = features.feature_names_out_\n"
        'clf = TrialcastClassifier(num_boost_round=500).fit(train[X_cols], train["label"])\n'
        'print(f"Platt slope a = {clf.a_:.3f}, intercept b = {clf.b_:.3f}, {clf.model_.best_iteration} trees")'
    ),
    new_markdown_cell(
        "## The model on the recent holdout\n"
        "Scored on the newest cohorts with the baselines: base rate, the seven lead types' stated "
        "chances (persona), a logistic regression, and the demo's true probabilities (ceiling: the "
        "best any model could do)."
    ),
    new_code_cell(
        "builder = FeatureBuilder.from_tables(demo.tables, config, features.spec_)\n"
        'holdout.score("model", clf.model_, builder)\n'
        "holdout.add_baselines(X_cols, truth=demo.truth)\n"
        "metrics = holdout.metrics()\n"
        'overall = metrics[metrics["segment"] == "all"].set_index("model")\n'
        'overall[["n", "rate", "roc_auc", "pr_auc", "log_loss", "brier", "ece", "lift_top10", "capture_top30"]].round(4)'
    ),
    new_markdown_cell("Per snapshot day (the model is one model for every day of the trial):"),
    new_code_cell(
        'metrics.pivot(index="segment", columns="model", values="roc_auc").round(3)'
    ),
    new_markdown_cell(
        "## Calibration\nObserved conversion rate against the mean predicted probability, 15 equal-mass bins. "
        "Finance multiplies these probabilities by deal sizes, so the curve should hug the diagonal."
    ),
    new_code_cell(
        'build_reliability_plot(holdout.test, holdout.prob_cols, "conversion (recent holdout)")'
    ),
    new_markdown_cell(
        "## Lift and ranking\nShare of converters captured when sales work the top x% of trials by score."
    ),
    new_code_cell('build_lift_plot(holdout.test, holdout.prob_cols, "conversion (recent holdout)")'),
    new_code_cell('build_roc_pr_plot(holdout.test, holdout.prob_cols, "conversion (recent holdout)")'),
    new_markdown_cell(
        "## What drives the score (SHAP beeswarm)\n"
        "`clf.explain` gives TreeSHAP values of the booster scaled by the Platt slope: contributions "
        "in calibrated log-odds that add up (with `base`) to the logit of `predict_proba`, the same "
        "ones sales see as the reasons behind a score."
    ),
    new_code_cell("build_shap_summary_plot(clf.model_, holdout.test, sample=1000)"),
    new_code_cell(
        "contributions = clf.explain(holdout.test[X_cols])\n"
        "gap = (contributions.sum(axis=1) - clf.decision_function(holdout.test[X_cols])).abs().max()\n"
        'assert gap < 1e-9, gap  # explanations add up to the score\n'
        'importance = contributions.drop(columns="base").abs().mean().sort_values(ascending=False)\n'
        'display(importance.head(15).rename("mean |contribution| (log-odds)").round(4).to_frame())\n'
        'plt.close("all")'
    ),
    new_code_cell(
        "import sys\n"
        "\n"
        'assert "mlflow" not in sys.modules  # fitted, evaluated and explained without tracking'
    ),
]

notebook = new_notebook(
    cells=cells,
    metadata={
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    },
)
target = Path(__file__).with_name("02_model_report.ipynb")
nbformat.write(notebook, target)
print(f"wrote {target}")
