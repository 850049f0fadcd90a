"""Writes notebooks/02_model_report.ipynb (outputs empty). Run: python notebooks/build_02_model_report.py"""

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

cells = [
    new_markdown_cell(
        "# Model report: the conversion model against its baselines\n\n"
        "Trains the conversion model on a small demo company into a temporary MLflow store "
        "(`training.train.train_models`), loads the registered champion back, and scores it on the "
        "recent holdout (the newest cohorts' test part) next to the baselines and the true-probability "
        "ceiling the demo data knows. Everything is computed by the `features` and `training` "
        "packages; the notebook only calls them and draws.\n\n"
        "Set `TRIALCAST_NOTEBOOK_ACCOUNTS` for a bigger demo set, `TRIALCAST_TRACKING_URI` to use "
        "another MLflow store."
    ),
    new_code_cell(
        "import os\n"
        "import tempfile\n"
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
        "from training.holdout import recent_holdout\n"
        "from training.plots import build_lift_plot, build_reliability_plot, build_roc_pr_plot, build_shap_summary_plot\n"
        "from training.registry import load_registered_model\n"
        "from training.train import build_training_sets, summary_table, train_models"
    ),
    new_code_cell(
        'n_accounts = int(os.environ.get("TRIALCAST_NOTEBOOK_ACCOUNTS", "2000"))\n'
        'work_dir = tempfile.mkdtemp(prefix="trialcast-report-")\n'
        'tracking_uri = os.environ.get("TRIALCAST_TRACKING_URI") or f"sqlite:///{work_dir}/mlflow.db"\n'
        "demo = generate_demo_data(n_accounts, seed=0)\n"
        "config = load_demo_config()\n"
        "builder = FeatureBuilder.from_tables(demo.tables, config)\n"
        'sets = build_training_sets(config, builder, kinds=("conversion",))\n'
        "sets.conversion.shape"
    ),
    new_markdown_cell("## Train, log and register"),
    new_code_cell(
        "result = train_models(\n"
        '    config, sets, kinds=("conversion",), tracking_uri=tracking_uri, truth=demo.truth, project_dir=work_dir\n'
        ")\n"
        'outcome = result.models["conversion"]\n'
        'print(outcome.registered_name, "version", outcome.version, "-", outcome.base_rate.message("conversion"))\n'
        "summary_table(result).round(4)"
    ),
    new_markdown_cell(
        "## The champion on the recent holdout\n"
        "The registered champion, loaded back from the store, scored on the newest cohorts with the "
        "baselines: base rate, the seven lead types' stated chances (persona), a logistic regression, "
        "and the demo's true probabilities (ceiling: the best any model could do)."
    ),
    new_code_cell(
        'champion = load_registered_model(config, "conversion", tracking_uri=tracking_uri)\n'
        "holdout = recent_holdout(\n"
        '    sets.conversion, "conversion",\n'
        "    valid_fraction=config.model.valid_fraction, test_fraction=config.model.test_fraction,\n"
        ")\n"
        'holdout.score("champion", champion, builder)\n'
        "holdout.add_baselines(champion.features, truth=demo.truth)\n"
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
        "TreeSHAP values of the booster scaled by the Platt slope: contributions in calibrated log-odds, "
        "the same ones sales see as the reasons behind a score."
    ),
    new_code_cell("build_shap_summary_plot(champion, holdout.test, sample=1000)"),
    new_code_cell(
        "contributions = champion.contributions(holdout.test)\n"
        "importance = contributions.values.abs().mean().sort_values(ascending=False)\n"
        'display(importance.head(15).rename("mean |contribution| (log-odds)").round(4).to_frame())\n'
        'plt.close("all")'
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
