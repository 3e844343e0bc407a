"""Reliability of P(chosen) (bayesmf.choice_calibration): calibrated and miscalibrated predictors."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from bayesmf import PMF, choice_reliability, interactions_from_dataframe
from bayesmf.choice_calibration import plot_choice_reliability, reliability_table
from bayesmf.data import RatingsData, UnknownIdError
from bayesmf.posterior import make_posterior
from bayesmf.results import FitResult
from tests.helpers import fake_draws, fake_result

ALPHA = 1e-6  # family-wise false-alarm rate of each Monte Carlo bound below


def hoeffding_ece_bound(predicted: np.ndarray, n_bins: int) -> float:
    """A bound on the ECE of a calibrated predictor, exceeded with probability < ALPHA.

    Given the predictions, bin b's observed minus predicted frequency is a mean of n_b
    independent centred terms y - p, each in [-p, 1 - p] (width 1), so by Hoeffding
    P(|.| > t_b) <= 2 exp(-2 n_b t_b^2); t_b = sqrt(log(2 B / ALPHA) / (2 n_b)) holds for
    every bin at once with probability >= 1 - ALPHA, and then ECE <= sum_b n_b / N t_b.
    """
    bins = np.minimum((predicted * n_bins).astype(int), n_bins - 1)
    n = np.bincount(bins, minlength=n_bins)
    n = n[n > 0]
    return float(np.sum(n / n.sum() * np.sqrt(np.log(2 * n_bins / ALPHA) / (2 * n))))


def test_a_calibrated_predictor_has_ece_near_zero_and_its_table_is_numpy():
    rng = np.random.default_rng(0)
    p = rng.beta(0.5, 2.0, 200_000)
    y = rng.random(p.size) < p
    rel = reliability_table(p, y, n_bins=10)
    bound = hoeffding_ece_bound(p, 10)
    assert rel.ece <= bound < 0.05
    # Brier of a calibrated predictor: E[p (1 - p)], terms in [0, 1]
    assert abs(rel.brier - np.mean(p * (1 - p))) <= np.sqrt(np.log(2 / ALPHA) / (2 * p.size))
    assert rel.brier == pytest.approx(np.mean((p - y) ** 2))
    t = rel.table
    bins = np.minimum((p * 10).astype(int), 9)
    for _, row in t.iterrows():
        inside = bins == row["bin"]
        assert row["n"] == inside.sum() and row["weight"] == pytest.approx(inside.sum())
        assert row["mean_predicted"] == pytest.approx(p[inside].mean())
        assert row["observed"] == pytest.approx(y[inside].mean())
        assert row["se"] == pytest.approx(np.sqrt(y[inside].mean() * (1 - y[inside].mean()) / inside.sum()))
        assert row["low"] <= row["mean_predicted"] <= row["high"]
    assert t.attrs["n_pairs"] == p.size and t.attrs["n_positive"] == y.sum()


def test_a_miscalibrated_predictor_p_squared_has_a_large_ece():
    rng = np.random.default_rng(1)
    p = rng.random(200_000)
    y = rng.random(p.size) < p
    q = p**2  # says p^2 where the truth is p: too low everywhere
    rel = reliability_table(q, y, n_bins=10)
    # ECE >= mean(p - q) - (Monte Carlo error of the bins) ; mean(p - p^2) ~ 1/6
    assert rel.ece >= np.mean(p - q) - hoeffding_ece_bound(q, 10)
    assert rel.ece > 0.1 > hoeffding_ece_bound(q, 10)
    assert (rel.table["observed"] > rel.table["mean_predicted"]).all()


def test_weights_count_as_repeated_pairs():
    rng = np.random.default_rng(2)
    p, y = rng.random(500), rng.random(500) < 0.3
    w = rng.integers(1, 4, 500).astype(float)
    a = reliability_table(p, y, w, n_bins=5)
    b = reliability_table(np.repeat(p, w.astype(int)), np.repeat(y, w.astype(int)), n_bins=5)
    cols = ["bin", "mean_predicted", "observed", "weight"]
    pd.testing.assert_frame_equal(a.table[cols], b.table[cols])
    assert a.ece == pytest.approx(b.ece) and a.brier == pytest.approx(b.brier)
    assert (a.table["se"] >= b.table["se"] - 1e-12).all()  # fewer effective pairs, wider


def test_bad_input_is_named():
    with pytest.raises(ValueError, match=r"predicted\[1\] = 1\.5 must be a probability"):
        reliability_table([0.1, 1.5], [0, 1])
    with pytest.raises(ValueError, match=r"observed\[0\] = 2\.0 must be 0 or 1"):
        reliability_table([0.1, 0.5], [2, 1])
    with pytest.raises(ValueError, match=r"weights\[1\] = 0\.0 must be finite and > 0"):
        reliability_table([0.1, 0.5], [0, 1], [1.0, 0.0])
    with pytest.raises(ValueError, match="one length"):
        reliability_table([0.1, 0.5], [0])
    with pytest.raises(ValueError, match="n_bins"):
        reliability_table([0.1], [0], n_bins=0)


@pytest.fixture(scope="module")
def choice():
    """A hand-built implicit posterior, its training choices and held-out choices (frame)."""
    rng = np.random.default_rng(3)
    n_users, n_items = 10, 25
    cells = rng.random((n_users, n_items)) < 0.3
    cells[:, 0] = True
    u, i = np.nonzero(cells)
    train = interactions_from_dataframe(pd.DataFrame({"user": u + 100, "item": i + 500}))
    spec = PMF(n_factors=2, likelihood="implicit")
    draws = fake_draws(spec, train, n_chains=2, n_draws=20, seed=4, factor_sd=0.4, sigma=0.3)
    draws["mu"] = 0.2 + 0.05 * rng.standard_normal(draws["mu"].shape)
    fit = FitResult(spec, make_posterior(spec, train, draws), "gibbs", train)
    free = np.argwhere(~cells)
    picked = free[rng.choice(len(free), 30, replace=False)]
    test = pd.DataFrame({"user": picked[:, 0] + 100, "item": picked[:, 1] + 500, "rating": 4.0})
    test = pd.concat([test, pd.DataFrame({"user": [100], "item": [500], "rating": [5.0]})])  # chosen in training
    return fit, test, cells


def _numpy_reference(fit, test, cells):
    a = fit.arrays()
    p_all = np.clip(
        a.mu[:, None, None] + a.user_bias[:, :, None] + a.item_bias[:, None, :] + np.einsum("suk,sik->sui", a.U, a.V),
        0, 1,
    ).mean(axis=0)
    users = np.unique(test["user"].to_numpy() - 100)
    chosen = np.zeros_like(cells)
    chosen[test["user"] - 100, test["item"] - 500] = True
    p, y = [], []
    for u in users:
        keep = ~cells[u]
        p.append(p_all[u, keep])
        y.append(chosen[u, keep])
    return np.concatenate(p), np.concatenate(y)


def test_choice_reliability_scores_held_out_positives_against_every_unchosen_pair(choice):
    fit, test, cells = choice
    rel = choice_reliability(fit, test, n_bins=8)
    p, y = _numpy_reference(fit, test, cells)
    ref = reliability_table(p, y, n_bins=8)
    pd.testing.assert_frame_equal(rel.table[ref.table.columns], ref.table, check_exact=False, rtol=1e-10)
    assert rel.ece == pytest.approx(ref.ece) and rel.brier == pytest.approx(ref.brier)
    attrs = rel.table.attrs
    assert attrs["n_test_in_train"] == 1 and attrs["n_positive"] == 30 and attrs["negatives"] is None
    # the same pairs as a RatingsData sharing the fit's encoders
    data = RatingsData.from_dataframe(test.iloc[:-1], user="user", item="item", rating="rating", scale=(1.0, 5.0), users=fit.train.users, items=fit.train.items)
    assert choice_reliability(fit, data, n_bins=8).ece == pytest.approx(ref.ece)


def test_sampled_negatives_are_weighted_to_stand_for_all(choice):
    fit, test, _ = choice
    full = choice_reliability(fit, test, n_bins=8)
    sampled = choice_reliability(fit, test, n_bins=8, negatives=5, random_seed=0)
    assert sampled.table["weight"].sum() == pytest.approx(full.table["weight"].sum())
    assert sampled.table["n"].sum() < full.table["n"].sum()
    again = choice_reliability(fit, test, n_bins=8, negatives=5, random_seed=0)
    pd.testing.assert_frame_equal(sampled.table, again.table)
    every = choice_reliability(fit, test, n_bins=8, negatives=10_000, random_seed=0)
    pd.testing.assert_frame_equal(every.table, full.table)  # more than the pool: all, weight 1


def test_choice_reliability_bad_input(choice):
    fit, test, _ = choice
    with pytest.raises(ValueError, match="needs an implicit-feedback fit"):
        choice_reliability(fake_result(), test)
    unknown = pd.concat([test, pd.DataFrame({"user": [999], "item": [500], "rating": [1.0]})])
    with pytest.raises(UnknownIdError, match=r"users \[999\]"):
        choice_reliability(fit, unknown)
    assert choice_reliability(fit, unknown, unknown="drop").table.attrs["n_unknown_dropped"] == 1
    with pytest.raises(ValueError, match="column 'item' not found"):
        choice_reliability(fit, test.drop(columns="item"))
    with pytest.raises(ValueError, match="no held-out choice"):
        choice_reliability(fit, test.iloc[-1:])
    with pytest.raises(ValueError, match="negatives"):
        choice_reliability(fit, test, negatives=0)


def test_plot_is_titled_and_labelled(choice):
    import matplotlib

    matplotlib.use("Agg")
    fit, test, _ = choice
    ax = plot_choice_reliability(choice_reliability(fit, test, n_bins=5), label="fit")
    assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel()
    assert "ECE" in ax.get_legend().get_texts()[1].get_text()


def test_a_horizon_spreads_each_users_held_out_choices_over_their_unchosen_items(choice):
    from bayesmf.choice_horizon import chosen_within, isotonic_calibrator

    fit, test, cells = choice
    p, y = _numpy_reference(fit, test, cells)
    users = np.unique(test["user"].to_numpy()[:-1] - 100)  # the last pair was chosen in training
    starts = np.cumsum([0] + [(~cells[u]).sum() for u in users])  # each user's slice of p and y
    slices = list(itertools.pairwise(starts))
    expected = np.concatenate([chosen_within(p[a:b], int(y[a:b].sum())) for a, b in slices])
    rel = choice_reliability(fit, test, n_bins=8, horizon="held-out")
    ref = reliability_table(expected, y, n_bins=8)
    pd.testing.assert_frame_equal(rel.table[ref.table.columns], ref.table, check_exact=False, rtol=1e-10)
    assert rel.table.attrs["horizon"] == "held-out"
    fixed = choice_reliability(fit, test, n_bins=8, horizon=2)
    two = np.concatenate([chosen_within(p[a:b], 2) for a, b in slices])
    assert fixed.brier == pytest.approx(reliability_table(two, y, n_bins=8).brier)
    # sampled negatives stand for all of them in each user's sum
    sampled = choice_reliability(fit, test, n_bins=8, horizon="held-out", negatives=5, random_seed=0)
    assert sampled.table["weight"].sum() == pytest.approx(rel.table["weight"].sum())
    # a calibrator changes the shape: the identity changes nothing
    identity = isotonic_calibrator([0.0, 1.0], [0, 1])
    assert choice_reliability(fit, test, n_bins=8, calibration=identity).ece == pytest.approx(
        choice_reliability(fit, test, n_bins=8).ece)
    with pytest.raises(ValueError, match="horizon must be 'held-out'"):
        choice_reliability(fit, test, horizon="test")
    with pytest.raises(ValueError, match="horizon must be a finite number > 0, got -1"):
        choice_reliability(fit, test, horizon=-1)
