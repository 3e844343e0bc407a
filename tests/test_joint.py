"""The joint choice-and-rating recommender on hand-built fits: numbers equal numpy and `predict`."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bayesmf import PMF, as_implicit
from bayesmf.data import IdEncoder, RatingsData, UnknownIdError
from bayesmf.joint import joint_scores, pair_draws, recommend_joint
from bayesmf.posterior import make_posterior
from bayesmf.predict import predict
from bayesmf.results import FitResult
from bayesmf.topn import evaluate_scores
from tests.helpers import fake_draws, fake_result, fake_train

N_USERS, N_ITEMS = 10, 14


def _choice(train: RatingsData, n_draws: int = 40, seed: int = 3) -> FitResult:
    spec = PMF(n_factors=2, likelihood="implicit")
    data = as_implicit(train)
    draws = fake_draws(spec, data, n_chains=2, n_draws=n_draws, seed=seed, factor_sd=0.4, sigma=0.3)
    draws["mu"] = 0.3 + 0.05 * np.random.default_rng(seed).standard_normal(draws["mu"].shape)
    return FitResult(spec, make_posterior(spec, data, draws), "gibbs", data)


@pytest.fixture(scope="module")
def fits() -> tuple[FitResult, FitResult]:
    train = fake_train(N_USERS, N_ITEMS, density=0.25, seed=2)
    rating = fake_result(PMF(n_factors=3), train=train, n_chains=1, n_draws=25, seed=4, jitter=0.3)
    return _choice(train), rating


def _eta(fit: FitResult, u: int, items: np.ndarray) -> np.ndarray:
    a = fit.arrays()
    dots = np.einsum("sjk,sk->sj", a.V[:, items].astype(float), a.U[:, u].astype(float))
    return a.mu[:, None] + a.user_bias[:, [u]] + a.item_bias[:, items] + dots


def _unseen(fit: FitResult, u: int) -> np.ndarray:
    return np.setdiff1d(np.arange(N_ITEMS), fit.train.item_idx[fit.train.user_idx == u])


def test_numbers_equal_numpy_with_resampled_draws(fits: tuple[FitResult, FitResult]) -> None:
    choice, rating = fits
    u, seed = 3, 11
    raw_user = int(rating.train.users.to_raw([u])[0])
    items = _unseen(rating, u)
    chosen = np.clip(_eta(choice, u, items), 0, 1)  # 80 draws
    likes = stats.norm.sf(3.5, _eta(rating, u, items), rating.arrays().sigma[:, None])  # 25 draws
    pc, pr = pair_draws(80, 25, np.random.default_rng(seed))
    assert len(pc) == len(pr) == 80 and np.array_equal(pc, np.arange(80)) and pr.max() < 25
    joint = chosen[pc] * likes[pr]
    out = recommend_joint(choice, rating, raw_user, n=5, prob=0.8, threshold=3.5, random_seed=seed)
    order = np.argsort(-joint.mean(axis=0), kind="stable")[:5]
    assert out["item"].tolist() == rating.train.items.to_raw(items[order]).tolist()
    np.testing.assert_allclose(out["mean"], joint.mean(axis=0)[order])
    np.testing.assert_allclose(out["score"], out["mean"])
    np.testing.assert_allclose(out[["lower", "upper"]].T, np.quantile(joint[:, order], [0.1, 0.9], axis=0))
    np.testing.assert_allclose(out["p_chosen"], chosen.mean(axis=0)[order])
    np.testing.assert_allclose(out[["p_at_least_lower", "p_at_least_upper"]].T, np.quantile(likes[:, order], [0.1, 0.9], axis=0))
    # independent routes: each marginal is what predict says
    pairs = pd.DataFrame({"user": raw_user, "item": out["item"]})
    np.testing.assert_allclose(out["p_chosen"], predict(choice, pairs)["mean"], rtol=1e-10)
    np.testing.assert_allclose(out["p_at_least"], predict(rating, pairs, threshold=3.5)["p_at_least"], rtol=1e-10)
    lower = recommend_joint(choice, rating, raw_user, n=5, prob=0.8, rank_by="lower", threshold=3.5, random_seed=seed)
    bound = np.quantile(joint, 0.1, axis=0)
    assert lower["item"].tolist() == rating.train.items.to_raw(items[np.argsort(-bound, kind="stable")[:5]]).tolist()
    scores = joint_scores(choice, rating, threshold=3.5, random_seed=seed)
    assert scores.shape == (N_USERS, N_ITEMS)
    np.testing.assert_allclose(scores[u, items], joint.mean(axis=0))


def test_ordinal_rating_fit_and_equal_draw_counts() -> None:
    train = fake_train(N_USERS, N_ITEMS, density=0.25, seed=5)
    rating = fake_result(PMF(n_factors=2, likelihood="ordinal"), train=train, n_chains=2, n_draws=40, seed=6)
    choice = _choice(train)
    out = recommend_joint(choice, rating, [100, 101], n=4, threshold=4.0, random_seed=0)
    assert out.groupby("user").size().tolist() == [4, 4]
    pairs = out[["user", "item"]]
    np.testing.assert_allclose(out["p_at_least"], predict(rating, pairs, threshold=4.0)["p_at_least"], rtol=1e-10)
    items = _unseen(rating, 0)
    chosen = np.clip(_eta(choice, 0, items), 0, 1)
    a = rating.arrays()
    eta_r = a.user_bias[:, [0]] + a.item_bias[:, items] + np.einsum("sjk,sk->sj", a.V[:, items].astype(float), a.U[:, 0].astype(float))
    cdf_3 = 1 / (1 + np.exp(-(a.cutpoints[:, [2]] - eta_r)))  # P(r <= 3): levels 1..5, cutpoint 3 of 4
    joint = chosen * (1 - cdf_3)  # equal counts: draw s with draw s
    np.testing.assert_allclose(out["mean"][:4], np.sort(joint.mean(axis=0))[::-1][:4])


def test_thompson_is_reproducible_and_aligned_ids_give_the_same_lists(fits: tuple[FitResult, FitResult]) -> None:
    choice, rating = fits
    users = [100, 104, 107]
    a = recommend_joint(choice, rating, users, n=6, rank_by="thompson", random_seed=9)
    b = recommend_joint(choice, rating, users, n=6, rank_by="thompson", random_seed=9)
    pd.testing.assert_frame_equal(a, b)
    c = recommend_joint(choice, rating, users, n=6, rank_by="thompson", random_seed=10)
    assert not a["item"].equals(c["item"])
    np.testing.assert_array_equal(
        joint_scores(choice, rating, rank_by="thompson", random_seed=2), joint_scores(choice, rating, rank_by="thompson", random_seed=2)
    )
    # the same choice posterior under encoders in the reverse order
    tr = choice.train
    users_r = IdEncoder("user", tr.users.classes[::-1])
    items_r = IdEncoder("item", tr.items.classes[::-1])
    flipped = RatingsData(N_USERS - 1 - tr.user_idx, N_ITEMS - 1 - tr.item_idx, tr.rating, tr.scale, users_r, items_r)
    post = choice.posterior
    draws = {k: post[k].values for k in ("mu", "sigma", "sigma_factor", "sigma_user_bias", "sigma_item_bias")}
    draws |= {"U": post["U"].values[:, :, ::-1], "V": post["V"].values[:, :, ::-1]}
    draws |= {"user_bias": post["user_bias"].values[:, :, ::-1], "item_bias": post["item_bias"].values[:, :, ::-1]}
    reordered = FitResult(choice.spec, make_posterior(choice.spec, flipped, draws), "gibbs", flipped)
    pd.testing.assert_frame_equal(
        recommend_joint(reordered, rating, users, n=6, random_seed=1), recommend_joint(choice, rating, users, n=6, random_seed=1)
    )
    for kw in ({"exclude_rated": True, "top_m": 5}, {"rank_by": "lower", "top_m": 3}):  # the screen and exclusions map ids
        np.testing.assert_array_equal(joint_scores(reordered, rating, random_seed=1, **kw),
                                      joint_scores(choice, rating, random_seed=1, **kw))


def test_scores_feed_the_top_n_evaluation(fits: tuple[FitResult, FitResult]) -> None:
    choice, rating = fits
    test = fake_train(N_USERS, N_ITEMS, density=0.2, seed=9)
    test = test.subset(~np.isin(test.user_idx * N_ITEMS + test.item_idx, rating.train.user_idx * N_ITEMS + rating.train.item_idx))
    test = RatingsData(test.user_idx, test.item_idx, test.rating, test.scale, rating.train.users, rating.train.items)
    per_user, summary = evaluate_scores(joint_scores(choice, rating, random_seed=0), rating.train, test, k=3, random_seed=0)
    assert len(per_user) > 0 and np.isfinite(summary.loc["ndcg@3", "mean"])
    assert per_user.attrs["rank_by"] == "scores"


def test_bad_input(fits: tuple[FitResult, FitResult]) -> None:
    choice, rating = fits
    with pytest.raises(ValueError, match="implicit-feedback fit"):
        recommend_joint(rating, rating, 100)
    with pytest.raises(ValueError, match="rating must be a rating fit"):
        recommend_joint(choice, choice, 100)
    with pytest.raises(TypeError, match="FitResult"):
        joint_scores(choice, "fit")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"threshold=7\.0 is outside"):
        recommend_joint(choice, rating, 100, threshold=7.0)
    with pytest.raises(ValueError, match="'prob'"):
        recommend_joint(choice, rating, 100, rank_by="prob")
    with pytest.raises(UnknownIdError, match="999"):
        recommend_joint(choice, rating, 999)
    other = fake_result(PMF(n_factors=3), train=fake_train(N_USERS + 1, N_ITEMS, seed=2), n_draws=5)
    with pytest.raises(ValueError, match=r"same users: \[110\] only in the rating fit"):
        recommend_joint(choice, other, 100)


# -- joint_scores: every pair, or only the candidates --------------------------------------------
def _reference_scores(choice: FitResult, rating: FitResult, rank_by: str, seed: int, threshold: float = 3.5) -> np.ndarray:
    """Every (user, item) by numpy, as joint_scores scored them before it could score fewer pairs."""
    rng = np.random.default_rng(seed)
    pc, pr = pair_draws(80, 25, rng)
    every = np.arange(N_ITEMS)
    out = np.empty((N_USERS, N_ITEMS))
    for u in range(N_USERS):
        chosen = np.clip(_eta(choice, u, every), 0, 1)
        likes = stats.norm.sf(threshold, _eta(rating, u, every), rating.arrays().sigma[:, None])
        joint = chosen[pc] * likes[pr]
        if rank_by == "mean":
            out[u] = joint.mean(axis=0)
        elif rank_by == "lower":
            out[u] = np.quantile(joint, 0.05, axis=0)
        else:
            out[u] = joint[rng.integers(len(pc))]
    return out


def _mean_eta(fit: FitResult) -> np.ndarray:
    """Posterior mean choice score of every pair, (users, items), by numpy."""
    return np.stack([_eta(fit, u, np.arange(N_ITEMS)).mean(axis=0) for u in range(N_USERS)])


@pytest.mark.parametrize("rank_by", ["mean", "lower", "thompson"])
def test_joint_scores_of_every_pair_equal_numpy(fits: tuple[FitResult, FitResult], rank_by: str) -> None:
    choice, rating = fits
    got = joint_scores(choice, rating, threshold=3.5, rank_by=rank_by, random_seed=7)
    np.testing.assert_allclose(got, _reference_scores(choice, rating, rank_by, 7), rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("rank_by", ["mean", "lower", "thompson"])
def test_joint_scores_of_the_candidates_only_are_the_same_bits(fits: tuple[FitResult, FitResult], rank_by: str) -> None:
    """Scoring fewer pairs changes no scored pair's score (Thompson draws included); the rest is -inf."""
    choice, rating = fits
    kw = {"threshold": 3.5, "rank_by": rank_by, "random_seed": 7}
    full = joint_scores(choice, rating, **kw)
    rated = np.zeros((N_USERS, N_ITEMS), dtype=bool)
    rated[rating.train.user_idx, rating.train.item_idx] = True
    unrated = joint_scores(choice, rating, exclude_rated=True, **kw)
    np.testing.assert_array_equal(np.isfinite(unrated), ~rated)
    np.testing.assert_array_equal(unrated[~rated], full[~rated])
    m = 3
    screened = joint_scores(choice, rating, exclude_rated=True, top_m=m, **kw)
    scored = np.isfinite(screened)
    np.testing.assert_array_equal(screened[scored], full[scored])
    assert (screened[~scored] == -np.inf).all()
    mean_eta = _mean_eta(choice)  # the screen: each user's top m unrated items by E[eta]
    for u in range(N_USERS):
        cand = np.flatnonzero(~rated[u])
        expected = cand[np.argsort(-mean_eta[u, cand], kind="stable")[:m]]
        assert set(np.flatnonzero(scored[u])) == set(expected.tolist()), u
    # a screen wider than the candidates scores them all
    np.testing.assert_array_equal(joint_scores(choice, rating, exclude_rated=True, top_m=N_ITEMS, **kw), unrated)


def test_screened_scores_give_the_same_top_n_when_the_lists_fit(fits: tuple[FitResult, FitResult]) -> None:
    """With top_m at least every user's unrated count, the evaluation is that of the full scores."""
    choice, rating = fits
    test = fake_train(N_USERS, N_ITEMS, density=0.3, seed=9)
    test = test.subset(~np.isin(test.user_idx * N_ITEMS + test.item_idx, rating.train.user_idx * N_ITEMS + rating.train.item_idx))
    test = RatingsData(test.user_idx, test.item_idx, test.rating, test.scale, rating.train.users, rating.train.items)
    full = evaluate_scores(joint_scores(choice, rating, random_seed=0), rating.train, test, k=3, random_seed=0)
    fewer = evaluate_scores(joint_scores(choice, rating, random_seed=0, exclude_rated=True, top_m=N_ITEMS),
                            rating.train, test, k=3, random_seed=0)
    pd.testing.assert_frame_equal(full.per_user, fewer.per_user)


def test_joint_scores_bad_options(fits: tuple[FitResult, FitResult]) -> None:
    choice, rating = fits
    with pytest.raises(ValueError, match="top_m must be >= 1, got 0"):
        joint_scores(choice, rating, top_m=0)
    with pytest.raises(TypeError, match="exclude_rated"):
        joint_scores(choice, rating, exclude_rated="yes")  # type: ignore[arg-type]
