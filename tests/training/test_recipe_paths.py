"""Every training path fits and judges through the one recipe (``training.recipe.fit_kind``).

``RECIPE_CALLS`` counts the recipe's calls per path; a path that assembled its own
recipe again (its own split, guards or fit) would leave its count unchanged and
fail here. The Dask path is checked in ``tests/trialcast/test_dask_parity.py``.
"""

from __future__ import annotations

import pytest
from company_factory import SHAPES, make_company

from training.recipe import RECIPE_CALLS
from training.retrain import RetrainOptions, run_retrain
from training.train import RecordTarget, train_models
from trialcast.backtest import list_cohorts, run_rolling_backtest

pytestmark = pytest.mark.slow  # real LightGBM fits and an MLflow store per path


@pytest.fixture(scope="module")
def company(tmp_path_factory):
    root = tmp_path_factory.mktemp("paths")
    return make_company(root, n_accounts=1500, seed=4, **SHAPES["short"])


def _calls(path: str) -> int:
    return RECIPE_CALLS.get(path, 0)


def test_train_and_retrain_call_the_recipe(company, tmp_path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    before = _calls("train")
    result = train_models(
        company.config,
        company.tables,
        kinds=("conversion",),
        target=RecordTarget(tracking_uri=uri, project_dir=tmp_path),
    )
    assert _calls("train") == before + 1
    assert result.models["conversion"].gate is not None

    before = _calls("retrain")
    decision = run_retrain(
        company.config,
        company.tables,
        kinds=("conversion",),
        options=RetrainOptions(tracking_uri=uri, project_dir=tmp_path),
    )
    assert _calls("retrain") == before + 1, decision.message


def test_backtest_calls_the_recipe_and_names_skipped_cohorts(company) -> None:
    config, tables = company.config, company.tables
    plan = list_cohorts(
        tables.accounts,
        window_days=config.trial.conversion_window_days,
        export_time=tables.export_time(),
    )
    first, last = plan[0][0], plan[-1][0]
    before = _calls("backtest")
    result = run_rolling_backtest(tables, config, cohorts=[first, last], num_threads=1)
    assert _calls("backtest") >= before + 1
    assert set(result.cohorts["cohort"]) | set(result.skipped) == {first, last}
    assert last in set(result.cohorts["cohort"])
    assert result.cohorts["verdict"].astype(str).str.len().gt(0).all()
    for cohort, reason in result.skipped.items():  # the first cohort has no closed history
        assert reason and cohort == first
