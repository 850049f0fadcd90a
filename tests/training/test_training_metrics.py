"""Metrics on tiny hand-computed examples, and the time split."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import brier_score_loss
from sklearn.metrics import log_loss as sk_log_loss

from training.metrics import (
    brier,
    capture_top30,
    evaluate_models,
    evaluate_predictions,
    expected_calibration_error,
    lift_top_decile,
    log_loss,
    snapshot_order,
    top_share_positives,
)
from training.split import build_time_split

Y = np.array([1, 0, 1, 0, 0, 0, 0, 0, 0, 1])
P = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05])


def test_lift_and_capture_by_hand():
    # top 10% = 1 row (0.9, a positive): rate 1.0 vs 0.3 overall
    assert lift_top_decile(Y, P) == pytest.approx(1 / 0.3)
    # top 30% = 3 rows (1, 0, 1): 2 of the 3 positives
    assert capture_top30(Y, P) == pytest.approx(2 / 3)


def test_ties_at_the_cut_count_fractionally():
    # all scores tied: any top-k holds the overall rate in expectation
    flat = np.full(10, 0.5)
    assert lift_top_decile(Y, flat) == pytest.approx(1.0)
    assert capture_top30(Y, flat) == pytest.approx(0.3)
    # 2 rows above, 4 tied (1 positive among them), need 3: 1 + 1 * 1/4 expected
    y = np.array([1, 0, 1, 0, 0, 0, 1, 0, 0, 0])
    p = np.array([0.9, 0.8, 0.5, 0.5, 0.5, 0.5, 0.1, 0.1, 0.1, 0.1])
    pos, k = top_share_positives(y, p, 0.3)
    assert k == 3 and pos == pytest.approx(1 + 1 * 1 / 4)


def test_ece_equal_mass_by_hand():
    p = np.array([0.1, 0.2, 0.3, 0.4])
    y = np.array([0, 0, 1, 1])
    # bins {0.1, 0.2} (mean 0.15, observed 0) and {0.3, 0.4} (mean 0.35, observed 1)
    assert expected_calibration_error(y, p, n_bins=2) == pytest.approx(0.5 * 0.15 + 0.5 * 0.65)
    # perfectly calibrated bins give zero
    p2 = np.array([0.25] * 4 + [0.75] * 4)
    y2 = np.array([1, 0, 0, 0, 1, 1, 1, 0])
    assert expected_calibration_error(y2, p2, n_bins=2) == pytest.approx(0.0)
    # default: 15 equal-mass bins of 2 rows on 30 rows
    rng = np.random.default_rng(0)
    p3 = np.sort(rng.random(30))
    y3 = (rng.random(30) < p3).astype(int)
    by_hand = np.mean([abs(y3[i : i + 2].mean() - p3[i : i + 2].mean()) for i in range(0, 30, 2)])
    assert expected_calibration_error(y3, p3) == pytest.approx(by_hand)


def test_log_loss_and_brier_match_sklearn():
    assert log_loss(Y, P) == pytest.approx(sk_log_loss(Y, P))
    assert brier(Y, P) == pytest.approx(brier_score_loss(Y, P))


def test_evaluate_predictions_overall_and_by_snapshot():
    frame = pd.DataFrame(
        {
            "snapshot": ["end", "d1", "d14", "d3"] * 5,
            "label": [1, 0, 0, 1, 0] * 4,
            "p": np.linspace(0.1, 0.9, 20),
        }
    )
    table = evaluate_predictions(frame, "p")
    assert table["segment"].tolist() == ["all", "d1", "d3", "d14", "end"]
    assert table.loc[0, "n"] == 20 and table.loc[0, "positives"] == 8
    assert table["n"].iloc[1:].sum() == 20
    both = evaluate_models(frame.assign(q=0.4), {"model": "p", "base_rate": "q"})
    assert set(both["model"]) == {"model", "base_rate"}
    assert both.loc[both["model"] == "base_rate", "roc_auc"].eq(0.5).all()


def test_snapshot_order():
    assert snapshot_order(["m10", "end", "m2", "d14", "d1"]) == ["d1", "d14", "end", "m2", "m10"]


def test_time_split_by_account(synthetic_frame):
    frame, _ = synthetic_frame(500, snapshots=("d1", "d7", "end"))
    split = build_time_split(frame, "conversion", valid_fraction=0.15, test_fraction=0.15)
    parts = [set(frame["account_id"].iloc[idx]) for idx in (split.train, split.valid, split.test)]
    assert not (parts[0] & parts[1]) and not (parts[0] & parts[2]) and not (parts[1] & parts[2])
    assert sum(len(p) for p in parts) == 500
    starts = [frame["trial_start"].iloc[idx] for idx in (split.train, split.valid, split.test)]
    assert starts[0].max() <= starts[1].min() and starts[1].max() <= starts[2].min()
    sizes = split.sizes()
    assert sizes["test"] == pytest.approx(0.15 * len(frame), rel=0.1)
    with pytest.raises(ValueError, match="cannot be split"):
        build_time_split(frame.head(2), "conversion", valid_fraction=0.15, test_fraction=0.15)


@pytest.mark.parametrize("trial_days,window", [((14, 30), 30), ((21,), 10)])
def test_ceiling_covers_every_snapshot_and_matches_the_truth_columns(trial_days, window):
    """The demo ceiling is the truth's open probability at each row's moment: equal to
    the generator's own ``p_convert_open_<snapshot>`` columns where they exist, and
    defined for the days after trial end too (so "all" compares the same rows)."""
    from features.build import FeatureBuilder
    from features.config import load_demo_config
    from features.demo.generator import generate_demo_data
    from features.snapshots import build_trial_training_set
    from training.baselines import build_ceiling

    demo = generate_demo_data(1500, seed=9, trial_days=trial_days, conversion_window_days=window)
    config = load_demo_config()
    config = config.model_copy(
        update={"trial": config.trial.model_copy(update={"conversion_window_days": window})}
    )
    rows = build_trial_training_set(FeatureBuilder.from_tables(demo.tables, config))
    ceiling = build_ceiling(rows, demo.truth, "conversion")
    assert not np.isnan(ceiling).any()
    truth = demo.truth.set_index("account_id")
    snaps = rows["snapshot"].astype(str).to_numpy()
    checked = 0
    for snap in np.unique(snaps):
        col = f"p_convert_open_{snap}"
        if col in truth.columns:
            mask = snaps == snap
            expected = truth[col].reindex(rows["account_id"].astype(str)[mask]).to_numpy()
            np.testing.assert_allclose(ceiling[mask], expected, rtol=0, atol=1e-9)
            checked += 1
    assert checked >= 3 and any(s.startswith("end_") for s in snaps)
    # Still open days after trial end: the chance left can only fall.
    later = rows.assign(c=ceiling).pivot_table(index="account_id", columns="snapshot", values="c")
    post = sorted((c for c in later.columns if c.startswith("end_")), key=lambda c: int(c[4:-1]))
    both = later[["end", post[-1]]].dropna()
    assert len(both) > 20 and (both[post[-1]] <= both["end"] + 1e-12).all()


def test_mlflow_metrics_keep_the_model_per_segment_and_comparators_overall():
    """The run's MLflow metrics: every segment of the logged model, the rest overall."""
    from training.tracking import metrics_to_mlflow

    table = pd.DataFrame(
        {
            "model": ["model", "model", "logistic", "logistic", "champion"],
            "segment": ["all", "d7", "all", "d7", "all"],
            "roc_auc": [0.8, 0.7, 0.75, float("nan"), 0.79],
            "n": [100, 40, 100, 40, 100],
        }
    )
    assert metrics_to_mlflow(table) == {
        "model.all.roc_auc": 0.8,
        "model.all.n": 100.0,
        "model.d7.roc_auc": 0.7,
        "model.d7.n": 40.0,
        "logistic.all.roc_auc": 0.75,
        "logistic.all.n": 100.0,
        "champion.all.roc_auc": 0.79,
        "champion.all.n": 100.0,
    }
    assert "logistic.d7.n" in metrics_to_mlflow(table, every_segment=("model", "logistic"))
