"""Top-N evaluation (bayesmf.topn, bayesmf.mean_ranking) on posteriors whose answer is known."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from helpers import fake_draws, fake_result, fake_train

from bayesmf import mean_ranking
from bayesmf.data import IdEncoder, RatingsData, UnknownIdError
from bayesmf.interactions import as_implicit
from bayesmf.mean_ranking import exact_summary, top_by_mean
from bayesmf.options import PredictOptions
from bayesmf.posterior import make_posterior
from bayesmf.predictive.view import model_view
from bayesmf.recommend import rank_items
from bayesmf.results import FitResult
from bayesmf.spec import PMF
from bayesmf.topn import evaluate_scores, evaluate_topn, popularity_scores

N_USERS, N_ITEMS = 8, 20


@pytest.fixture(scope="module")
def oracle():
    """A fit whose posterior means put each user's relevant test items first.

    Each user gets 3 unrated items rated 5 in test (relevant) and 2 rated 2 (not); user 7
    gets only the two low ratings (no relevant item: skipped). One-hot factors: the user's
    factors mark its relevant items, V is the identity, so eta = 3 + 2 [relevant] (+ 0.01
    noise per draw).
    """
    rng = np.random.default_rng(0)
    train = fake_train(N_USERS, N_ITEMS, density=0.2, seed=4)
    relevant = np.zeros((N_USERS, N_ITEMS))
    rows = []
    for u in range(N_USERS):
        unrated = np.setdiff1d(np.arange(N_ITEMS), train.item_idx[train.user_idx == u])
        picked = rng.choice(unrated, size=5, replace=False)
        high = picked[:3] if u < N_USERS - 1 else picked[:0]
        relevant[u, high] = 1
        rows += [(u, j, 5.0 if j in high else 2.0) for j in (picked if u < N_USERS - 1 else picked[3:])]
    uidx, iidx, rating = (np.array(c) for c in zip(*rows, strict=True))
    test = RatingsData(uidx, iidx, rating, train.scale, train.users, train.items)
    spec = PMF(n_factors=N_ITEMS)
    draws = fake_draws(spec, train, n_chains=2, n_draws=30, seed=1)
    noise = lambda shape: 0.01 * rng.standard_normal(shape)  # noqa: E731
    draws["U"] = 2 * relevant + noise(draws["U"].shape)
    draws["V"] = np.eye(N_ITEMS) + noise(draws["V"].shape)
    draws["mu"] = 3 + noise(draws["mu"].shape)
    draws["user_bias"] = noise(draws["user_bias"].shape)
    draws["item_bias"] = noise(draws["item_bias"].shape)
    idata = make_posterior(spec, train, draws, attrs={"method": "gibbs"})
    return FitResult(spec=spec, idata=idata, method="gibbs", train=train, info={}), test, relevant


@pytest.mark.parametrize("rank_by", ["mean", "lower", "prob", "thompson"])
def test_relevant_items_first_gives_perfect_lists(oracle, rank_by):
    result, test, _ = oracle
    out = evaluate_topn(result, test, k=3, rank_by=rank_by, random_seed=0)
    per = out.per_user
    assert len(per) == N_USERS - 1  # user 7 has no relevant item
    assert (per["n_relevant"] == 3).all()
    for metric in ("precision", "recall", "ndcg", "ap", "rr", "hit"):
        np.testing.assert_allclose(per[metric], 1.0, err_msg=metric)
    assert per.attrs["n_users_skipped"] == 1 and per.attrs["n_users_evaluated"] == N_USERS - 1
    assert out.summary.attrs == per.attrs
    # k = 5 > R = 3: precision 3/5, recall/NDCG/AP (normalised by min(k, R)) still 1
    five = evaluate_topn(result, test, k=5, rank_by=rank_by, random_seed=0).summary
    assert five.loc["precision@5", "mean"] == pytest.approx(0.6)
    for metric in ("recall@5", "ndcg@5", "map@5", "mrr@5", "hit_rate@5"):
        assert five.loc[metric, "mean"] == pytest.approx(1.0)


def test_summary_means_standard_errors_and_beyond_accuracy(oracle):
    result, test, relevant = oracle
    # an oracle score matrix, but ranking item 0 first for everyone: precision 2/3 or 1
    scores = relevant.copy()
    scores[:, 0] = 10.0
    out = evaluate_scores(scores, result.train, test, k=3, random_seed=0, name="oracle")
    per, summary = out.per_user, out.summary
    rated_0 = {int(u) for u in result.train.user_idx[result.train.item_idx == 0]}
    relevant_0 = set(np.flatnonzero(relevant[:, 0]).tolist())
    expected = [1.0 if (u in rated_0 or u in relevant_0) else 2 / 3 for u in range(N_USERS - 1)]
    np.testing.assert_allclose(per["precision"], expected)
    p = per["precision"].to_numpy()
    assert summary.loc["precision@3", "mean"] == pytest.approx(p.mean())
    assert summary.loc["precision@3", "se"] == pytest.approx(p.std(ddof=1) / np.sqrt(len(p)))
    assert (summary["n_users"] == N_USERS - 1).all()
    # coverage: distinct items in all lists over the catalogue
    counts = result.train.item_counts()
    assert 0 < summary.loc["coverage@3", "mean"] <= 1 and np.isnan(summary.loc["coverage@3", "se"])
    assert summary.attrs["rank_by"] == "oracle" and summary.attrs["method"] is None
    # popularity: mean training count of the lists (every list holds item 0 unless user rated it)
    assert per["popularity"].min() >= 0 and per["popularity"].max() <= counts.max()


def test_popularity_baseline_ranks_by_training_counts(oracle):
    result, test, _ = oracle
    train = result.train
    np.testing.assert_array_equal(popularity_scores(train), train.item_counts())
    out = evaluate_scores(popularity_scores(train), train, test, k=1, random_seed=3)
    # every list's single item is a most-rated unrated item of that user
    counts = train.item_counts()
    for _, row in out.per_user.iterrows():
        u = int(train.users.to_index([row["user"]])[0])
        unrated = np.setdiff1d(np.arange(N_ITEMS), train.item_idx[train.user_idx == u])
        assert row["popularity"] == counts[unrated].max()
    again = evaluate_scores(popularity_scores(train), train, test, k=1, random_seed=3)
    assert again.per_user.equals(out.per_user)


@pytest.mark.parametrize("budgets", [None, (120, 100)])
def test_batched_mean_ranking_equals_recommend(monkeypatch, budgets):
    # random posterior, items differ: the batched two-stage ranking must equal recommend's
    if budgets is not None:  # batches of 2 users, blocks of 1 draw
        monkeypatch.setattr(mean_ranking, "BATCH_BUDGET", budgets[0])
        monkeypatch.setattr(mean_ranking, "BLOCK_BUDGET", budgets[1] * 3)
    result = fake_result(PMF(n_factors=3), n_users=30, n_items=60, n_draws=40, seed=7, factor_sd=0.8, jitter=0.2)
    train = result.train
    users = list(range(train.n_users))
    cands = [np.setdiff1d(np.arange(train.n_items), train.item_idx[train.user_idx == u]) for u in users]
    for kind, clip in (("predictive", True), ("predictive", False), ("expected", False)):
        opts = PredictOptions(kind=kind, clip=clip, unknown="raise")
        fast = top_by_mean(result, users, cands, 7, opts)
        raw = ((train.users.classes[u], train.items.classes[c]) for u, c in zip(users, cands, strict=True))
        slow = [train.items.to_index(top) for _, top, _ in rank_items(result, raw, 7, "mean", opts)]
        for a, b in zip(fast, slow, strict=True):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("block", [10**6, 3 * 60 * 7])
def test_mean_ranking_stage_one_is_the_exact_mean_and_an_sd_bound(monkeypatch, block):
    monkeypatch.setattr(mean_ranking, "BLOCK_BUDGET", block)  # one block, or blocks of 7 draws
    result = fake_result(PMF(n_factors=3), n_users=6, n_items=60, n_draws=20, seed=3, factor_sd=0.8, jitter=0.3)
    view = model_view(result)
    users = np.arange(6)
    u, s = mean_ranking._mean_and_sd_bound(view, users, mean_ranking._item_side(view))
    pairs_u, pairs_i = np.repeat(users, 60), np.tile(np.arange(60), 6)
    exact = exact_summary(result, view, pairs_u, pairs_i, PredictOptions(clip=False))
    np.testing.assert_allclose(u.ravel(), exact.mean, rtol=0, atol=1e-10)
    assert (s.ravel() >= exact.sd - 1e-10).all()


def test_sampled_candidates_warn_and_hold_negatives_plus_test_items(oracle):
    result, test, _ = oracle
    with pytest.warns(UserWarning, match="Krichene and Rendle"):
        out = evaluate_topn(result, test, k=3, candidates="sampled", n_negatives=4, random_seed=0)
    # 4 sampled negatives + the user's 5 test items
    assert (out.per_user["n_candidates"] == 9).all()
    np.testing.assert_allclose(out.per_user["precision"], 1.0)
    with pytest.warns(UserWarning):
        many = evaluate_topn(result, test, k=3, candidates="sampled", n_negatives=1000, random_seed=0)
    assert many.per_user.attrs["n_users_short_of_negatives"] == N_USERS - 1
    with pytest.warns(UserWarning):
        a = evaluate_scores(popularity_scores(result.train), result.train, test, candidates="sampled", n_negatives=3, random_seed=5)
        b = evaluate_scores(popularity_scores(result.train), result.train, test, candidates="sampled", n_negatives=3, random_seed=5)
    assert a.per_user.equals(b.per_user)


def test_unknown_test_ids_raise_or_are_dropped_and_counted(oracle):
    result, test, _ = oracle
    train = result.train
    users = IdEncoder("user", np.append(train.users.classes, 999))
    items = IdEncoder("item", np.append(train.items.classes, 888))
    wider = RatingsData(
        np.append(test.user_idx, [N_USERS, 0]), np.append(test.item_idx, [1, N_ITEMS]),
        np.append(test.rating, [5.0, 5.0]), train.scale, users, items,
    )
    with pytest.raises(UnknownIdError, match=r"users \[999\], items \[888\]"):
        evaluate_topn(result, wider, k=3)
    out = evaluate_topn(result, wider, k=3, unknown="drop")
    assert out.summary.attrs["n_unknown_dropped"] == 2
    np.testing.assert_allclose(out.per_user["precision"], 1.0)


def test_test_items_rated_in_training_are_left_out_and_counted(oracle):
    result, test, _ = oracle
    train = result.train
    both = RatingsData(
        np.append(test.user_idx, train.user_idx[:2]), np.append(test.item_idx, train.item_idx[:2]),
        np.append(test.rating, [5.0, 5.0]), train.scale, train.users, train.items,
    )
    out = evaluate_topn(result, both, k=3)
    assert out.summary.attrs["n_test_in_train"] == 2
    assert (out.per_user["n_relevant"] == 3).all()


def test_bad_input(oracle):
    result, test, _ = oracle
    with pytest.raises(ValueError, match="k must be >= 1, got 0"):
        evaluate_topn(result, test, k=0)
    with pytest.raises(TypeError, match="progressbar must be True or False, got 'yes'"):
        evaluate_topn(result, test, k=3, progressbar="yes")
    with pytest.raises(TypeError, match=r"got 2\.5"):
        evaluate_topn(result, test, k=2.5)
    with pytest.raises(ValueError, match=r"threshold=6\.0 is outside the rating scale"):
        evaluate_topn(result, test, threshold=6.0)
    with pytest.raises(ValueError, match="threshold=0 is outside"):
        evaluate_scores(popularity_scores(result.train), result.train, test, threshold=0)
    with pytest.raises(ValueError, match="n_negatives=5 needs candidates='sampled'"):
        evaluate_topn(result, test, n_negatives=5)
    with pytest.raises(TypeError, match="n_negatives must be an integer >= 1, got None"):
        evaluate_topn(result, test, candidates="sampled")
    with pytest.raises(ValueError, match="'all'"):
        evaluate_topn(result, test, candidates="all")
    with pytest.raises(ValueError, match="'best'"):
        evaluate_topn(result, test, rank_by="best")
    with pytest.raises(ValueError, match="'keep'"):
        evaluate_topn(result, test, unknown="keep")
    with pytest.raises(ValueError, match="no test user has a relevant item"):
        evaluate_topn(result, test.subset(test.rating < 3), k=1)  # only the ratings of 2
    with pytest.raises(TypeError, match="test must be a RatingsData or a pandas DataFrame"):
        evaluate_topn(result, test.to_dataframe().to_numpy(), k=1)
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        evaluate_scores(np.ones(3), result.train, test)
    with pytest.raises(ValueError, match="without NaN"):
        evaluate_scores(np.full(N_ITEMS, np.nan), result.train, test)


def test_no_warning_with_all_unrated_candidates(oracle):
    result, test, _ = oracle
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        evaluate_topn(result, test, k=2)


def test_progressbar_changes_nothing(oracle):
    result, test, _ = oracle
    quiet = evaluate_topn(result, test, k=3, rank_by="lower", random_seed=0, progressbar=False)
    shown = evaluate_topn(result, test, k=3, rank_by="lower", random_seed=0, progressbar=True)
    pd.testing.assert_frame_equal(quiet.per_user, shown.per_user)


def test_a_frame_of_raw_ids_gives_the_same_evaluation(oracle):
    result, test, _ = oracle
    frame = test.to_dataframe().sample(frac=1.0, random_state=0)  # row order does not matter
    before = frame.copy()
    for rank_by in ("mean", "lower", "prob", "thompson"):
        a = evaluate_topn(result, test, k=3, rank_by=rank_by, random_seed=2)
        b = evaluate_topn(result, frame, k=3, rank_by=rank_by, random_seed=2)
        pd.testing.assert_frame_equal(a.per_user, b.per_user)
        pd.testing.assert_frame_equal(a.summary, b.summary)
    pd.testing.assert_frame_equal(frame, before)  # the caller's frame is untouched
    scores = popularity_scores(result.train)
    pd.testing.assert_frame_equal(
        evaluate_scores(scores, result.train, frame, k=2, random_seed=1).per_user,
        evaluate_scores(scores, result.train, test, k=2, random_seed=1).per_user,
    )


def test_a_bad_test_frame_is_named(oracle):
    result, test, _ = oracle
    frame = test.to_dataframe()
    with pytest.raises(ValueError, match="rating column 'rating' not found"):
        evaluate_topn(result, frame.drop(columns="rating"), k=1)
    with pytest.raises(ValueError, match="item column 'item' not found"):
        evaluate_scores(popularity_scores(result.train), result.train, frame.rename(columns={"item": "movieId"}))
    bad = frame.copy()
    bad.loc[3, "rating"] = 7.0
    with pytest.raises(ValueError, match=r"rating 7\.0 in row 3 .* outside the scale"):
        evaluate_topn(result, bad, k=1)
    bad.loc[3, "rating"] = np.nan
    with pytest.raises(ValueError, match=r"rating nan in row 3 .* not finite"):
        evaluate_topn(result, bad, k=1)
    unknown = pd.concat([frame, pd.DataFrame({"user": [999], "item": [frame["item"].iloc[0]], "rating": [5.0]})])
    with pytest.raises(UnknownIdError, match=r"users \[999\]"):
        evaluate_topn(result, unknown, k=3)
    dropped = evaluate_topn(result, unknown, k=3, unknown="drop")
    assert dropped.summary.attrs["n_unknown_dropped"] == 1
    np.testing.assert_allclose(dropped.per_user["precision"], 1.0)


@pytest.fixture(scope="module")
def choice_oracle(oracle):
    """An implicit-feedback fit on the oracle's training pairs (`as_implicit`: same encoders).

    eta = 0.2 + 0.6 [relevant] (+ 0.01 noise per draw): P(chosen) puts each user's relevant
    test items first, as the rating oracle's means do.
    """
    rating_fit, test, relevant = oracle
    train = as_implicit(rating_fit.train, value="one")
    spec = PMF(n_factors=N_ITEMS, likelihood="implicit")
    rng = np.random.default_rng(5)
    draws = fake_draws(spec, train, n_chains=2, n_draws=30, seed=2)
    noise = lambda shape: 0.01 * rng.standard_normal(shape)  # noqa: E731
    draws["U"] = 0.6 * relevant + noise(draws["U"].shape)
    draws["V"] = np.eye(N_ITEMS) + noise(draws["V"].shape)
    draws["mu"] = 0.2 + noise(draws["mu"].shape)
    draws["user_bias"] = noise(draws["user_bias"].shape)
    draws["item_bias"] = noise(draws["item_bias"].shape)
    idata = make_posterior(spec, train, draws, attrs={"method": "gibbs"})
    return FitResult(spec=spec, idata=idata, method="gibbs", train=train, info={}), test


@pytest.mark.parametrize("rank_by", ["mean", "lower", "prob", "thompson"])
def test_an_implicit_fit_is_evaluated_on_held_out_ratings(choice_oracle, rank_by):
    fit, test = choice_oracle
    assert fit.train.scale == (0.0, 1.0) and test.scale == (1.0, 5.0)
    out = evaluate_topn(fit, test, k=3, rank_by=rank_by, random_seed=0)  # threshold 4 on the test's 1-5
    per = out.per_user
    assert len(per) == N_USERS - 1 and out.summary.attrs["scale"] == (1.0, 5.0)
    for metric in ("precision", "recall", "ndcg", "ap", "rr", "hit"):
        np.testing.assert_allclose(per[metric], 1.0, err_msg=metric)
    # candidates: every item the user did not choose in training
    chosen = np.bincount(fit.train.user_idx, minlength=N_USERS)
    users = fit.train.users.to_index(per["user"].to_numpy())
    np.testing.assert_array_equal(per["n_candidates"], N_ITEMS - chosen[users])
    # a frame of raw ids gives the same evaluation (its scale: [0, 1] and its ratings)
    frame = evaluate_topn(fit, test.to_dataframe(), k=3, rank_by=rank_by, random_seed=0)
    pd.testing.assert_frame_equal(frame.per_user, per)
    assert frame.summary.attrs["scale"] == (0.0, 5.0)


def test_an_implicit_fit_lower_threshold_and_scale(choice_oracle):
    fit, test = choice_oracle
    # relevance threshold 2 (every test rating): 5 relevant items per user, each user counted
    low = evaluate_topn(fit, test, k=5, threshold=2.0, random_seed=0).per_user
    assert len(low) == N_USERS and (low["n_relevant"] == np.where(np.arange(N_USERS) < N_USERS - 1, 5, 2)).all()
    with pytest.raises(ValueError, match=r"threshold=6\.0 is outside the rating scale \[1, 5\] of the test ratings"):
        evaluate_topn(fit, test, threshold=6.0)
    with pytest.raises(ValueError, match=r"threshold=4\.0 is outside the rating scale \[0, 1\]"):
        evaluate_topn(fit, test, threshold=4.0, scale=(0.0, 1.0))  # a stated scale wins
    bad = test.to_dataframe()
    bad.loc[2, "rating"] = -1.0
    with pytest.raises(ValueError, match=r"rating -1\.0 in row 2 .* outside the scale"):
        evaluate_topn(fit, bad, scale=(1.0, 5.0))
    # evaluate_scores on the implicit training data: same protocol, same candidates
    scores = evaluate_scores(popularity_scores(fit.train), fit.train, test, k=3, random_seed=0)
    ref = evaluate_scores(popularity_scores(fit.train), oracle_train(fit), test, k=3, random_seed=0)
    pd.testing.assert_frame_equal(scores.per_user, ref.per_user)


def oracle_train(fit: FitResult) -> RatingsData:
    """The implicit fit's training pairs as ratings on 1-5 (what the rating oracle trained on)."""
    t = fit.train
    return RatingsData(t.user_idx, t.item_idx, np.full(t.n_ratings, 3.0), (1.0, 5.0), t.users, t.items)
