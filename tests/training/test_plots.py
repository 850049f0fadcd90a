"""The run's diagnostic plots: drawn from a real model, nothing cut off at the edges."""

import matplotlib.pyplot as plt
import numpy as np
import pytest
from conftest import SMALL_PARAMS, SYNTHETIC_FEATURES
from matplotlib.backends.backend_agg import FigureCanvasAgg

from training.model import FitContext, fit_model
from training.plots import (
    build_lift_plot,
    build_reliability_plot,
    build_roc_pr_plot,
    build_shap_summary_plot,
)
from training.shap_sample import explain_rows, shap_rows
from training.split import build_time_split

#: A company's own names can be long; the longest must still fit on the plot.
LONG = "activation_ran_ten_successful_pipelines_in_the_first_week_days"
FEATURES, PARAMS = SYNTHETIC_FEATURES, SMALL_PARAMS


@pytest.fixture(scope="module")
def fitted(synthetic_frame):
    frame, _ = synthetic_frame(4000, seed=2, snapshots=("d1", "end"))
    frame = frame.rename(columns={"x1": LONG})
    features = [LONG if f == "x1" else f for f in FEATURES]
    split = build_time_split(frame, "conversion", valid_fraction=0.2, test_fraction=0.2)
    train, valid, test = split.frames(frame)
    model = fit_model(train, valid, features, PARAMS, ctx=FitContext("conversion"))
    test = test.assign(p_model=model.predict_proba(test))
    return model, test


def _sticks_out(fig) -> bool:
    """Whether anything drawn (names, ticks, labels) reaches past the figure's edges."""
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    drawn = fig.get_tightbbox(canvas.get_renderer())  # inches, drawn artists only
    width, height = fig.get_size_inches()
    slack = 0.02
    return bool(
        drawn.x0 < -slack or drawn.y0 < -slack
        or drawn.x1 > width + slack or drawn.y1 > height + slack
    )  # fmt: skip


def test_shap_summary_shows_every_name_whole(fitted):
    model, test = fitted
    fig = build_shap_summary_plot(model, test, sample=300)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert LONG in labels
    assert not _sticks_out(fig)
    # the sorted contributions: the top name is the one with the largest mean |SHAP|
    values = model.contributions(test.sample(n=300, random_state=0)).values
    assert labels[-1] == values.abs().mean().idxmax()


@pytest.mark.parametrize("build", [build_reliability_plot, build_roc_pr_plot, build_lift_plot])
def test_curve_plots_keep_their_text_inside(fitted, build):
    _, test = fitted
    fig = build(test, {"model": "p_model"}, "conversion (test)")
    assert not _sticks_out(fig)
    lines = [line for ax in fig.axes for line in ax.get_lines()]
    assert any(len(np.asarray(line.get_xdata())) > 2 for line in lines)


def _pixels(fig) -> np.ndarray:
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba()).copy()


def test_shap_values_computed_ahead_draw_the_same_plot(fitted):
    model, test = fitted
    ahead = explain_rows(model, shap_rows(test, sample=300), num_threads=1)
    plain = build_shap_summary_plot(model, test, sample=300)
    assert np.array_equal(
        _pixels(build_shap_summary_plot(model, test, sample=300, explained=ahead)), _pixels(plain)
    )
    # values of other rows are not drawn: the plot computes its own sample's
    other = explain_rows(model, shap_rows(test, sample=300, seed=1))
    assert not other.rows.equals(ahead.rows)
    assert np.array_equal(
        _pixels(build_shap_summary_plot(model, test, sample=300, explained=other)), _pixels(plain)
    )


def test_plots_are_agg_figures_outside_pyplot(fitted):
    model, test = fitted
    before = plt.get_fignums()
    figures = [
        build(test, {"model": "p_model"}, "t")
        for build in (build_reliability_plot, build_roc_pr_plot, build_lift_plot)
    ]
    figures.append(build_shap_summary_plot(model, test, sample=100))
    assert plt.get_fignums() == before  # nothing left open for a job to close
    assert all(isinstance(fig.canvas, FigureCanvasAgg) for fig in figures)
