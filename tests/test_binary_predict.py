"""Predictions and scores of a ``PMF(likelihood="bernoulli")`` fit: P(y = 1) per pair, metrics.

The predictions are checked against the posterior draws directly (fake posteriors from
`tests/helpers.py`, so no sampler is involved); the metrics against brute-force definitions.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from helpers import fake_result, fake_train
from scipy import special

from bayesmf import PMF
from bayesmf.binary_metrics import (
    auc,
    binary_scores,
    brier_score,
    log_loss,
    plot_reliability,
    reliability,
)

SPEC = PMF(n_factors=3, likelihood="bernoulli")


@pytest.fixture(scope="module")
def result():
    train = fake_train(30, 20, scale=(0.0, 1.0), seed=3)
    return fake_result(SPEC, train=train, n_draws=60, seed=3)


def _probabilities(result, users, items) -> np.ndarray:
    """Phi(eta) per (draw, pair), straight from the posterior arrays."""
    post = result.idata["posterior"]
    S = post.sizes["chain"] * post.sizes["draw"]
    flat = {k: post[k].values.reshape(S, *post[k].shape[2:]).astype(float) for k in ("U", "V", "mu", "user_bias", "item_bias")}
    u, i = result.train.users.to_index(users), result.train.items.to_index(items)
    eta = flat["mu"][:, None] + flat["user_bias"][:, u] + flat["item_bias"][:, i] + np.einsum("spk,spk->sp", flat["U"][:, u], flat["V"][:, i])
    return special.ndtr(eta)


def test_predict_gives_p_like_with_an_interval(result):
    pairs = result.train.to_dataframe().head(12)
    out = result.predict(pairs, prob=0.8, progressbar=False)
    assert out.attrs["kind"] == "expected"
    draws = _probabilities(result, pairs["user"], pairs["item"])
    np.testing.assert_allclose(out["mean"], draws.mean(axis=0), rtol=1e-9)
    np.testing.assert_allclose(out["sd"], draws.std(axis=0, ddof=1), rtol=1e-6)
    np.testing.assert_allclose(out["lower"], np.quantile(draws, 0.1, axis=0), atol=1e-9)
    np.testing.assert_allclose(out["upper"], np.quantile(draws, 0.9, axis=0), atol=1e-9)
    assert ((out["lower"] >= 0) & (out["upper"] <= 1)).all()


def test_predictive_kind_proba_and_draws_agree(result):
    """The Bernoulli predictive: mean P(y = 1), sd sqrt(p(1 - p)), 0/1 quantiles; proba and draws match.

    The draws' frequency of 1 is within 5 binomial sds of P(y = 1) for each pair (family-wise
    false alarm below 1e-5 over 12 pairs).
    """
    pairs = result.train.to_dataframe().head(12)
    p = _probabilities(result, pairs["user"], pairs["item"]).mean(axis=0)
    pred = result.predict(pairs, kind="predictive", progressbar=False)
    np.testing.assert_allclose(pred["mean"], p, rtol=1e-9)
    np.testing.assert_allclose(pred["sd"], np.sqrt(p * (1 - p)), rtol=1e-9)
    assert set(np.unique(pred[["median", "lower", "upper"]].to_numpy())) <= {0.0, 1.0}
    proba = result.predict_proba(pairs)
    np.testing.assert_allclose(proba["p_1"], p, rtol=1e-9)
    np.testing.assert_allclose(proba["p_0"] + proba["p_1"], 1.0)
    draws = result.predict_draws(pairs, kind="predictive", n_draws=6000, random_seed=4)
    assert set(np.unique(draws)) <= {0.0, 1.0}
    n = draws.shape[0]
    assert (np.abs(draws.mean(axis=0) - p) < 5 * np.sqrt(p * (1 - p) / n)).all()


def test_recommend_ranks_by_p_like(result):
    rec = result.recommend(user=result.train.users.classes[0], n=5)
    assert rec["mean"].is_monotonic_decreasing
    assert ((rec["mean"] >= 0) & (rec["mean"] <= 1)).all()


# ---------------------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------------------
def _brute_auc(y, p):
    pos, neg = p[y == 1], p[y == 0]
    diff = pos[:, None] - neg[None, :]
    return float(np.mean((diff > 0) + 0.5 * (diff == 0)))


def test_metrics_match_their_definitions():
    rng = np.random.default_rng(0)
    p = np.round(rng.random(300), 2)  # ties on purpose
    y = (rng.random(300) < p).astype(float)
    assert auc(y, p) == pytest.approx(_brute_auc(y, p), abs=1e-12)
    groups = rng.integers(0, 7, 300)
    per_group = [_brute_auc(y[groups == g], p[groups == g]) for g in range(7)]
    assert auc(y, p, groups=groups) == pytest.approx(np.mean(per_group), abs=1e-12)
    clipped = np.clip(p, 1e-15, 1 - 1e-15)
    assert log_loss(y, p) == pytest.approx(-np.mean(y * np.log(clipped) + (1 - y) * np.log(1 - clipped)))
    assert brier_score(y, p) == pytest.approx(np.mean((p - y) ** 2))
    assert auc([1, 1, 0], [0.2, 0.3, 0.9]) == 0.0 and np.isnan(auc([1, 1], [0.2, 0.3]))


def test_calibrated_predictions_have_small_ece_and_distorted_ones_do_not():
    """20,000 outcomes drawn from p: ECE < 0.02 (its sd is ~0.003); from p^2 it is > 0.1."""
    rng = np.random.default_rng(1)
    p = rng.random(20_000)
    y = (rng.random(p.size) < p).astype(float)
    good = reliability(y, p)
    assert good.ece < 0.02
    assert reliability(y, p**2).ece > 0.1
    assert good.brier == pytest.approx(brier_score(y, p))


def test_binary_scores_of_a_prediction_frame(result):
    pairs = result.train.to_dataframe()
    scores = binary_scores(result.predict(pairs, progressbar=False))
    assert set(scores.index) == {"auc", "auc_grouped", "log_loss", "brier", "ece", "n", "n_positive"}
    assert scores["n"] == len(pairs) and scores["n_positive"] == pairs["rating"].sum()
    ax = plot_reliability(reliability(pairs["rating"], result.predict(pairs, progressbar=False)["mean"]))
    assert "P(y = 1)" in ax.get_title()


@pytest.mark.parametrize(("y", "p", "match"), [
    ([0, 1, 2], [0.1, 0.2, 0.3], r"y must be 0 or 1, got 2\.0 at position 2"),
    ([0, 1, 1], [0.1, 1.2, 0.3], r"p must be a probability in \[0, 1\], got 1\.2 at position 1"),
    ([0, 1], [0.1, 0.2, 0.3], "one length"),
    ([0, 1, 1], [0.1, np.nan, 0.3], "non-finite"),
])
def test_bad_metric_input_is_named(y, p, match):
    with pytest.raises(ValueError, match=match):
        auc(y, p)


def test_binary_scores_names_a_missing_column():
    with pytest.raises(ValueError, match="no column 'mean'"):
        binary_scores(pd.DataFrame({"rating": [0, 1], "user": [1, 2]}))
