"""Tests of bayesmf.metrics: definitions, scoring-rule properties, calibration tables."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from helpers import fake_result
from scipy import stats

from bayesmf import metrics
from bayesmf.data import RatingsData
from bayesmf.predict import predict
from bayesmf.spec import PMF


def _normal_crps(m, s, y):
    """Closed form CRPS of N(m, s^2) at y (Gneiting & Raftery 2007, eq. 21)."""
    z = (y - m) / s
    return s * (z * (2 * stats.norm.cdf(z) - 1) + 2 * stats.norm.pdf(z) - 1 / math.sqrt(math.pi))


# -- point accuracy and validation ------------------------------------------------------------
def test_rmse_mae_definitions():
    y, pred = [1.0, 2.0, 3.0], [1.0, 3.0, 5.0]
    assert metrics.rmse(y, pred) == pytest.approx(math.sqrt(5 / 3))
    assert metrics.mae(y, pred) == pytest.approx(1.0)
    assert metrics.rmse(y, y) == 0.0


@pytest.mark.parametrize(
    "args,match",
    [
        (([1.0, 2.0], [1.0]), "differ in length"),
        (([1.0, np.nan], [1.0, 2.0]), "non-finite.*position 1"),
        (([[1.0, 2.0]], [1.0, 2.0]), "1-d"),
        (([], []), "empty"),
    ],
)
def test_validation_messages(args, match):
    with pytest.raises(ValueError, match=match):
        metrics.rmse(*args)


def test_coverage_and_width():
    y = np.array([1.0, 2.0, 3.0, 4.0])
    lower = np.array([0.5, 2.0, 3.5, 3.0])
    upper = np.array([1.5, 2.5, 4.0, 4.0])
    assert metrics.coverage(y, lower, upper) == 0.75  # closed intervals: 2.0 and 4.0 count
    assert metrics.interval_width(lower, upper) == pytest.approx(np.mean(upper - lower))
    with pytest.raises(ValueError, match="lower > upper at position 1"):
        metrics.coverage(y, [0, 3, 0, 0], [1, 2, 5, 5])


# -- baselines ------------------------------------------------------------------------------
@pytest.fixture
def tiny():
    df = pd.DataFrame(
        {"user": [1, 1, 2, 2, 3], "item": ["a", "b", "a", "c", "c"], "rating": [5.0, 3.0, 4.0, 2.0, 1.0]}
    )
    return RatingsData.from_dataframe(df, user="user", item="item", rating="rating", scale=(1, 5))


def test_baselines_by_hand(tiny):
    test = pd.DataFrame({"user": [1, 3, 9], "item": ["c", "a", "z"]})
    g = 15 / 5
    np.testing.assert_allclose(metrics.global_mean_baseline(tiny, test), [g, g, g])
    np.testing.assert_allclose(metrics.user_mean_baseline(tiny, test), [4.0, 1.0, g])  # user 9 unseen
    np.testing.assert_allclose(metrics.item_mean_baseline(tiny, test), [1.5, 4.5, g])  # item z unseen
    np.testing.assert_allclose(metrics.mean_of_means_baseline(tiny, test), [(g + 4 + 1.5) / 3, (g + 1 + 4.5) / 3, g])


def test_baselines_accept_ratingsdata_with_other_encoders(tiny):
    other = RatingsData.from_dataframe(
        pd.DataFrame({"user": [3, 1], "item": ["a", "c"], "rating": [2.0, 2.0]}),
        user="user", item="item", rating="rating", scale=(1, 5),
    )
    np.testing.assert_allclose(metrics.user_mean_baseline(tiny, other), [1.0, 4.0])
    same = tiny.subset(np.array([0, 3]))
    np.testing.assert_allclose(metrics.item_mean_baseline(tiny, same), [4.5, 1.5])
    with pytest.raises(TypeError, match="train must be a RatingsData"):
        metrics.user_mean_baseline(pd.DataFrame(), other)


# -- scoring rules --------------------------------------------------------------------------
def test_crps_converges_to_the_normal_closed_form():
    rng = np.random.default_rng(0)
    y = np.array([0.0, 1.0, -2.5, 0.3])
    draws = rng.normal(0.2, 1.3, size=(40000, 4))
    got = metrics.crps(y, draws, pointwise=True)
    np.testing.assert_allclose(got, _normal_crps(0.2, 1.3, y), atol=0.01)


def test_crps_fair_estimator_is_unbiased_with_few_draws():
    # with m = 4 draws the naive estimator is biased by E|X-X'| / (2m); the fair one is not
    rng = np.random.default_rng(1)
    n = 20000
    y = rng.normal(size=n)
    draws = rng.normal(size=(4, n))
    est = metrics.crps(y, draws)
    truth = _normal_crps(0.0, 1.0, y).mean()
    se = metrics.crps(y, draws, pointwise=True).std() / math.sqrt(n)
    assert abs(est - truth) < 4 * se
    naive_bias = (2 / math.sqrt(math.pi)) / (2 * 4)  # E|X-X'| = 2/sqrt(pi) for N(0,1)
    assert naive_bias > 10 * se  # the test could tell the naive estimator apart


def test_crps_chunking_and_validation():
    rng = np.random.default_rng(2)
    y = rng.normal(size=50)
    draws = rng.normal(size=(30, 50))
    a = metrics.crps(y, draws, chunk_size=1, pointwise=True)
    b = metrics.crps(y, draws, chunk_size=1000, pointwise=True)
    np.testing.assert_allclose(a, b, rtol=1e-12)
    with pytest.raises(ValueError, match="at least 2 draws"):
        metrics.crps(y, draws[:1])
    with pytest.raises(ValueError, match="columns"):
        metrics.crps(y, draws[:, :10])


def test_log_predictive_density_routes():
    rng = np.random.default_rng(3)
    y = rng.normal(size=6)
    # one component: the normal log density
    got = metrics.log_predictive_density(y, mean=np.full(6, 0.5), sd=2.0, pointwise=True)
    np.testing.assert_allclose(got, stats.norm.logpdf(y, 0.5, 2.0), rtol=1e-12)
    # mixture over draws with per-draw sd
    means = rng.normal(size=(7, 6))
    sds = rng.uniform(0.5, 1.5, size=7)
    got = metrics.log_predictive_density(y, mean=means, sd=sds, pointwise=True)
    direct = np.log(stats.norm.pdf(y[None], means, sds[:, None]).mean(0))
    np.testing.assert_allclose(got, direct, rtol=1e-10)
    # draws of a continuous predictive: kernel density estimate, close to the truth
    draws = rng.normal(size=(20000, 6))
    kde = metrics.log_predictive_density(y, draws, pointwise=True)
    np.testing.assert_allclose(kde, stats.norm.logpdf(y), atol=0.05)
    # discrete draws: the empirical frequency of the observed level
    levels = rng.integers(1, 6, size=(1000, 3)).astype(float)
    obs = np.array([1.0, 3.0, 5.0])
    freq = (levels == obs).mean(0)
    np.testing.assert_allclose(metrics.log_predictive_density(obs, levels, pointwise=True), np.log(freq))
    with pytest.raises(ValueError, match="either draws= or mean="):
        metrics.log_predictive_density(y)
    with pytest.raises(ValueError, match="sd="):
        metrics.log_predictive_density(y, mean=np.zeros(6))


def test_pit_uniform_when_calibrated_and_ties_count_half():
    rng = np.random.default_rng(4)
    y = rng.normal(size=3000)
    draws = rng.normal(size=(500, 3000))
    values = metrics.pit(y, draws)
    assert stats.kstest(values, "uniform").pvalue > 1e-3
    shifted = metrics.pit(y + 1.0, draws)
    assert stats.kstest(shifted, "uniform").pvalue < 1e-6  # the check has power
    np.testing.assert_allclose(metrics.pit([2.0], [[1.0], [2.0], [3.0], [2.0]]), [0.5])


# -- calibration tables -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def two_fits():
    spec = PMF(n_factors=2, priors="fixed")
    post = fake_result(spec, n_users=20, n_items=12, n_draws=30, seed=3)
    mapr = fake_result(spec, n_users=20, n_items=12, method="map", seed=3)
    return {"posterior": post, "MAP": mapr}


def test_calibration_table_agrees_with_predict(two_fits):
    test = two_fits["MAP"].train
    table = metrics.calibration_table(two_fits, test, probs=(0.5, 0.9))
    assert list(table.columns) == ["model", "method", "prob", "coverage", "coverage_se", "width", "n"]
    assert table["model"].tolist() == ["posterior", "posterior", "MAP", "MAP"]
    for row in table.itertuples():
        out = predict(two_fits[row.model], test, prob=row.prob)
        assert row.coverage == pytest.approx(metrics.coverage(test.rating, out["lower"], out["upper"]))
        assert row.width == pytest.approx(metrics.interval_width(out["lower"], out["upper"]))
        assert row.n == test.n_ratings
    single = metrics.calibration_table(two_fits["MAP"], test, probs=[0.8])
    assert single["model"].tolist() == ["map"]
    with pytest.raises(ValueError, match="probs"):
        metrics.calibration_table(two_fits, test, probs=(0.5, 1.5))
    with pytest.raises(TypeError, match="FitResult"):
        metrics.calibration_table({"x": 3}, test)


def test_interval_width_by_count(two_fits):
    test = two_fits["MAP"].train
    table = metrics.interval_width_by_count(two_fits, test, prob=0.9, bins=(0, 5, 10, np.inf))
    assert {"model", "method", "bin", "count_low", "count_high", "width", "coverage", "n"} <= set(table.columns)
    for _, group in table.groupby("model"):
        assert group["n"].sum() == test.n_ratings
    with pytest.raises(ValueError, match="increasing"):
        metrics.interval_width_by_count(two_fits, test, bins=(5, 1))


def test_calibration_progress_bar_is_shown_and_changes_nothing(two_fits, monkeypatch):
    """A bar over the chunks of test pairs (small chunks here, so that there are several); off by flag.

    The bar is recorded by a stand-in for ``tqdm.auto.tqdm``: tqdm reads ``TQDM_DISABLE`` once,
    when first imported, and the benchmark scripts other tests import set it (CI of a95694f).
    """
    from bayesmf import PredictOptions

    bars: list[str] = []

    def fake_tqdm(items, desc="", **kwargs):  # type: ignore[no-untyped-def]
        bars.append(desc)
        return items

    monkeypatch.setattr("tqdm.auto.tqdm", fake_tqdm)
    test = two_fits["MAP"].train
    options = PredictOptions(chunk_size=10)
    shown = metrics.calibration_table(two_fits, test, probs=(0.5, 0.9), options=options, progressbar=True)
    assert bars == ["predict", "predict"]  # one per fit
    quiet = metrics.calibration_table(two_fits, test, probs=(0.5, 0.9), options=options, progressbar=False)
    assert len(bars) == 2
    pd.testing.assert_frame_equal(shown, quiet)
    widths = [metrics.interval_width_by_count(two_fits, test, options=options, progressbar=flag) for flag in (True, False)]
    assert len(bars) == 4
    pd.testing.assert_frame_equal(*widths)
