"""Tests of bayesmf.plots on fake posteriors (Agg backend): they run, label axes, accept ax=."""

from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
from helpers import fake_result

from bayesmf import plots
from bayesmf.metrics import calibration_table
from bayesmf.recommend import recommend
from bayesmf.spec import PMF

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def fits():
    spec = PMF(n_factors=2, priors="fixed")
    return {
        "posterior": fake_result(spec, n_users=15, n_items=10, n_draws=20, seed=1),
        "MAP": fake_result(spec, n_users=15, n_items=10, method="map", seed=1),
    }


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def _labelled(ax):
    return ax.get_xlabel() != "" and ax.get_ylabel() != "" and ax.get_title() != ""


def test_plot_calibration(fits):
    test = fits["MAP"].train
    ax = plots.plot_calibration(fits, test, probs=(0.5, 0.9))
    assert isinstance(ax, matplotlib.axes.Axes) and _labelled(ax)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["ideal", "posterior", "MAP"]
    _, given = plt.subplots()
    table = calibration_table(fits, test, probs=(0.5, 0.8))
    assert plots.plot_calibration(table, ax=given) is given
    with pytest.raises(ValueError, match="test="):
        plots.plot_calibration(fits)


def test_plot_recommendations(fits):
    result = fits["posterior"]
    user = result.train.users.classes[0]
    ax = plots.plot_recommendations(result, user, n=4, prob=0.8)
    assert _labelled(ax)
    assert len(ax.get_yticks()) == 4
    table = recommend(result, user, n=4, prob=0.8)
    assert [t.get_text() for t in ax.get_yticklabels()] == [str(i) for i in table["item"]]
    assert "80%" in ax.get_xlabel()
    _, given = plt.subplots()
    assert plots.plot_recommendations(table, ax=given) is given
    with pytest.raises(ValueError, match="one user"):
        plots.plot_recommendations(recommend(result, result.train.users.classes[:2].tolist(), n=2))


def test_plot_interval_width(fits):
    test = fits["MAP"].train
    ax = plots.plot_interval_width(fits, test, prob=0.9, bins=(0, 5, 8, np.inf))
    assert _labelled(ax)
    assert len(ax.get_lines()) == 2
    assert "90%" in ax.get_ylabel()
    with pytest.raises(ValueError, match="test="):
        plots.plot_interval_width(fits)


def test_plot_calibration_deviation_draws_coverage_minus_nominal(fits):
    test = fits["MAP"].train
    table = calibration_table(fits, test, probs=(0.5, 0.9))
    ax = plots.plot_calibration(table, deviation=True)
    assert _labelled(ax)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["posterior", "MAP"]
    # each model's points sit at coverage - nominal (percentage points), dodged apart in x
    lines = [container.lines[0] for container in ax.containers]
    assert len(lines) == 2
    for line, (_, group) in zip(lines, table.groupby("model", sort=False), strict=True):
        expected = 100 * (group.sort_values("prob")["coverage"] - group.sort_values("prob")["prob"])
        np.testing.assert_allclose(np.asarray(line.get_ydata(), float), expected.to_numpy(float))
    assert not np.allclose(lines[0].get_xdata(), lines[1].get_xdata())
