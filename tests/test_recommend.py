"""Tests of bayesmf.recommend: ranking rules, exclusion of rated items, fold-in of new users."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from helpers import exact_user_posterior, fake_draws, fake_result, fake_train, known_truth_result
from scipy import stats

from bayesmf.binary import binarize
from bayesmf.data import IdEncoder, RatingsData
from bayesmf.datasets import simulate
from bayesmf.fold_in import fold_in_items
from bayesmf.inference.gibbs import fit_gibbs
from bayesmf.metrics import item_mean_baseline, rmse
from bayesmf.posterior import make_posterior
from bayesmf.predict import predict
from bayesmf.recommend import fold_in, recommend
from bayesmf.results import FitResult
from bayesmf.spec import PMF


@pytest.fixture(scope="module")
def post():
    return fake_result(PMF(n_factors=3), n_users=20, n_items=25, n_draws=60, seed=11)


def _rated(result, user):
    u = result.train.users.to_index([user])[0]
    return set(result.train.items.to_raw(result.train.item_idx[result.train.user_idx == u]).tolist())


# -- recommend ------------------------------------------------------------------------------
def test_columns_ranks_and_exclusion(post):
    user = post.train.users.classes[0]
    out = recommend(post, user, n=5)
    assert list(out.columns) == [
        "user", "rank", "item", "mean", "sd", "median", "lower", "upper", "p_at_least", "score", "new_user", "new_item",
    ]
    assert out["rank"].tolist() == [1, 2, 3, 4, 5]
    assert not set(out["item"].tolist()) & _rated(post, user)
    everything = recommend(post, user, n=1000)
    assert len(everything) == post.train.n_items - len(_rated(post, user))
    with_rated = recommend(post, user, n=1000, exclude_rated=False)
    assert len(with_rated) == post.train.n_items


@pytest.mark.parametrize("rank_by,column", [("mean", "mean"), ("lower", "lower"), ("prob", "p_at_least")])
def test_order_follows_the_rule_and_matches_predict(post, rank_by, column):
    user = post.train.users.classes[3]
    out = recommend(post, user, n=6, rank_by=rank_by, threshold=3.5, prob=0.8)
    np.testing.assert_allclose(out["score"], out[column], rtol=1e-12)
    assert (np.diff(out["score"]) <= 0).all()
    # independent route: predict every unrated item, sort by the same column
    items = [i for i in post.train.items.classes.tolist() if i not in _rated(post, user)]
    full = predict(post, pd.DataFrame({"user": user, "item": items}), prob=0.8, threshold=3.5)
    best = full.sort_values(column, ascending=False, kind="stable").head(6)
    assert out["item"].tolist() == best["item"].tolist()
    np.testing.assert_allclose(out["mean"], best["mean"], rtol=1e-12)


@pytest.mark.parametrize("clip", [True, False])
def test_mean_ranking_on_a_concentrated_posterior_matches_predict(clip):
    # items really differ here, so the bound-based pruning of the censored mean is exercised
    spec = PMF(n_factors=3)
    result = fake_result(spec, n_users=10, n_items=300, n_draws=50, seed=12, factor_sd=0.8, jitter=0.1)
    user = result.train.users.classes[4]
    out = recommend(result, user, n=7, clip=clip)
    items = [i for i in result.train.items.classes.tolist() if i not in _rated(result, user)]
    full = predict(result, pd.DataFrame({"user": user, "item": items}), clip=clip)
    best = full.sort_values("mean", ascending=False, kind="stable").head(7)
    assert out["item"].tolist() == best["item"].tolist()
    np.testing.assert_allclose(out["score"], best["mean"], rtol=1e-12)


def test_expected_kind_and_hdi(post):
    user = post.train.users.classes[1]
    out = recommend(post, user, n=4, rank_by="lower", kind="expected", interval="hdi", random_seed=0)
    np.testing.assert_allclose(out["score"], out["lower"])
    assert (out["lower"] <= out["upper"]).all()


def test_thompson_is_one_posterior_draw_and_seeded(post):
    user = post.train.users.classes[2]
    a = recommend(post, user, n=25, rank_by="thompson", random_seed=4, threshold=None)
    b = recommend(post, user, n=25, rank_by="thompson", random_seed=4, threshold=None)
    pd.testing.assert_frame_equal(a, b)
    seeds = [recommend(post, user, n=3, rank_by="thompson", random_seed=s)["item"].tolist() for s in range(6)]
    assert len({tuple(x) for x in seeds}) > 1  # different draws, different picks
    # the scores are the mean ratings of ONE draw s for every item
    p = post.posterior
    uidx = post.train.users.to_index([user])[0]
    iidx = post.train.items.to_index(a["item"].tolist())
    U = p["U"].values.reshape(-1, *p["U"].shape[2:])[:, uidx].astype(float)
    V = p["V"].values.reshape(-1, *p["V"].shape[2:])[:, iidx].astype(float)
    eta = (
        np.einsum("sk,spk->sp", U, V)
        + p["mu"].values.reshape(-1, 1)
        + p["user_bias"].values.reshape(-1, p["user_bias"].shape[-1])[:, [uidx]]
        + p["item_bias"].values.reshape(-1, p["item_bias"].shape[-1])[:, iidx]
    )
    # not clipped to the scale: the ranking is by the draw itself
    match = np.all(np.isclose(eta, a["score"].to_numpy()[None, :], rtol=1e-12, atol=0), axis=1)
    assert match.sum() >= 1
    assert (np.diff(a["score"]) <= 0).all()


# -- Thompson: selection frequencies match P(item is best) ---------------------------------
#: family-wise false-alarm level of each frequency test (two tests share it: 5e-7 each)
_FAMILY_ALPHA = 1e-6


def _thompson_posterior(ties: bool) -> FitResult:
    """A posterior whose draws put many items above the top of the 1-5 scale.

    mu is moved to about 5.2 and the item biases get offsets rising with the item id, so in
    most draws several items exceed 5 and the likeliest best items are the HIGH ids: the
    old clipped score tied them at 5.0 and picked the lowest id. With ``ties``, items 6-9
    are exact copies of item 6 (factors and bias) lifted by 3: they tie as the best in
    every draw, each with probability 1/4.
    """
    spec = PMF(n_factors=3)
    train = fake_train(n_users=4, n_items=10, seed=3)
    draws = fake_draws(spec, train, n_chains=2, n_draws=100, seed=5)
    draws["mu"] = draws["mu"] + 2.2
    draws["item_bias"] = draws["item_bias"] + np.linspace(-0.6, 0.6, train.n_items)
    if ties:
        draws["V"][:, :, 7:] = draws["V"][:, :, 6:7]
        draws["item_bias"][:, :, 7:] = draws["item_bias"][:, :, 6:7]
        draws["item_bias"][:, :, 6:] += 3.0
    idata = make_posterior(spec, train, draws, attrs={"method": "gibbs"})
    return FitResult(spec=spec, idata=idata, method="gibbs", train=train, info={})


def _draw_scores(result: FitResult, user) -> np.ndarray:
    """(S, n_items) mean rating of every item for ``user`` under each draw (identity link)."""
    p = result.posterior
    u = int(result.train.users.to_index([user])[0])
    flat = lambda name: p[name].values.reshape(-1, *p[name].shape[2:]).astype(float)  # noqa: E731
    return (
        flat("mu")[:, None]
        + flat("user_bias")[:, [u]]
        + flat("item_bias")
        + np.einsum("sk,sjk->sj", flat("U")[:, u], flat("V"))
    )


def _best_probabilities(scores: np.ndarray) -> np.ndarray:
    """P(item j is best) = share of draws in which j's score is the largest (ties split)."""
    top = scores == scores.max(axis=1, keepdims=True)
    return (top / top.sum(axis=1, keepdims=True)).mean(axis=0)


def _thompson_picks(result: FitResult, user, n_calls: int = 40, per_call: int = 25) -> np.ndarray:
    """Counts of each item picked by ``n=1`` Thompson over ``n_calls`` seeds.

    Each call asks for the same user ``per_call`` times: every entry of the list gets its
    own draw (and tie-break) from that call's generator, so the picks are independent.
    """
    picks = []
    for seed in range(n_calls):
        out = recommend(
            result, [user] * per_call, n=1, rank_by="thompson", exclude_rated=False,
            threshold=None, random_seed=seed,
        )
        picks.extend(out["item"].tolist())
    idx = result.train.items.to_index(picks)
    return np.bincount(idx, minlength=result.train.n_items)


def _check_frequencies(counts: np.ndarray, probs: np.ndarray) -> None:
    """Counts ~ Multinomial(N, probs): chi-square and exact binomial tests, family-wise 1e-6.

    Items with probability 0 must never be picked. The chi-square pools the categories
    expected fewer than 5 times; the per-item two-sided exact binomial tests are
    Bonferroni-corrected. Each test gets half the family-wise level.
    """
    n = int(counts.sum())
    assert counts[probs == 0].sum() == 0, f"items that are never best were picked: {counts}"
    expected = n * probs
    big = expected >= 5
    obs, exp = list(counts[big]), list(expected[big])
    if expected[~big].sum() > 0:
        obs.append(counts[~big].sum())
        exp.append(expected[~big].sum())
    p_chi2 = stats.chisquare(obs, exp).pvalue
    positive = np.flatnonzero(probs > 0)
    p_binom = min(stats.binomtest(int(counts[j]), n, float(probs[j])).pvalue for j in positive)
    assert p_chi2 > _FAMILY_ALPHA / 2, f"chi-square p={p_chi2:.3g}: counts {counts}, expected {np.round(expected, 1)}"
    assert p_binom * len(positive) > _FAMILY_ALPHA / 2, f"binomial p={p_binom:.3g}: counts {counts}, expected {np.round(expected, 1)}"


@pytest.fixture
def one_numba_thread():
    """Run the many tiny kernel calls on one thread (thread start-up dominates them)."""
    import numba

    before = numba.get_num_threads()
    numba.set_num_threads(1)
    yield
    numba.set_num_threads(before)


def test_thompson_picks_each_item_with_its_probability_of_being_best(one_numba_thread):
    result = _thompson_posterior(ties=False)
    user = result.train.users.classes[0]
    scores = _draw_scores(result, user)
    assert ((scores > 5).sum(axis=1) >= 2).mean() > 0.9  # clipping would tie in most draws
    probs = _best_probabilities(scores)
    assert probs[-3:].sum() > 0.5 and probs.argmax() >= 6  # the high ids are likeliest
    counts = _thompson_picks(result, user)
    _check_frequencies(counts, probs)


def test_thompson_breaks_exact_ties_at_random(one_numba_thread):
    result = _thompson_posterior(ties=True)
    user = result.train.users.classes[1]
    probs = _best_probabilities(_draw_scores(result, user))
    np.testing.assert_allclose(probs, [0] * 6 + [0.25] * 4)
    counts = _thompson_picks(result, user, n_calls=20)
    _check_frequencies(counts, probs)


def test_thompson_ties_go_to_the_larger_mean_then_at_random(one_numba_thread):
    """A saturated logistic link: items 6-9 score exactly 5 in the first chain's draws.

    Item 9 is far below the scale's middle in the second chain's draws, so its posterior
    mean is lower: it loses every tie and is never picked (a random or by-index tie-break
    picks it in about 1 call in 8); items 6-8, alike in every draw, are picked 1/3 each.
    """
    spec = PMF(n_factors=3, link="logistic")
    train = fake_train(n_users=4, n_items=10, seed=3)
    draws = fake_draws(spec, train, n_chains=2, n_draws=50, seed=5)
    draws["item_bias"][:, :, 6:] += 60.0
    draws["item_bias"][1, :, 9] -= 120.0
    idata = make_posterior(spec, train, draws, attrs={"method": "gibbs"})
    result = FitResult(spec=spec, idata=idata, method="gibbs", train=train, info={})
    user = train.users.classes[0]
    means = recommend(result, user, n=10, exclude_rated=False, threshold=None).set_index("item")["mean"]
    items = train.items.classes
    assert means[items[6]] == means[items[7]] == means[items[8]] > means[items[9]] + 1.0
    counts = _thompson_picks(result, user, n_calls=12)
    _check_frequencies(counts, np.array([0.0] * 6 + [1 / 3] * 3 + [0.0]))


# -- ties: broken by the posterior mean, then by the item ------------------------------------
@pytest.fixture(scope="module")
def thumbs():
    """A small Gibbs fit of simulated thumbs up / down with 10 draws: P(P(like) >= t) takes 11 values."""
    data = binarize(simulate(n_users=30, n_items=40, n_factors=2, density=0.3, seed=5).data, threshold=3.5)
    spec = PMF(n_factors=2, likelihood="bernoulli")
    return fit_gibbs(spec, data, draws=10, tune=20, thin=1, chains=1, random_seed=1, progressbar=False)


@pytest.fixture(scope="module")
def few_draws():
    """Rating (normal) and ordinal posteriors of 8 draws each: scores that take few values."""
    normal = fake_result(PMF(n_factors=3), n_users=8, n_items=30, n_chains=1, n_draws=8, seed=21)
    ordinal = fake_result(PMF(n_factors=3, likelihood="ordinal"), n_users=8, n_items=30, n_chains=1, n_draws=8, seed=22)
    return {"normal": normal, "ordinal": ordinal}


def _tie_broken(result, user, column, **kwargs) -> tuple[list, int]:
    """Every unrated item of ``user`` (predict), sorted by ``column``, then mean, then item index.

    Also returns how many neighbours in that order tie in ``column`` but not in the mean:
    the ties an arbitrary tie-break would get wrong (the check has teeth only when > 0).
    """
    items = [i for i in result.train.items.classes.tolist() if i not in _rated(result, user)]
    full = predict(result, pd.DataFrame({"user": user, "item": items}), progressbar=False, **kwargs)
    index = result.train.items.to_index(full["item"].tolist())
    ordered = full.iloc[np.lexsort((index, -full["mean"].to_numpy(), -full[column].to_numpy()))]
    score, mean = ordered[column].to_numpy(), ordered["mean"].to_numpy()
    n_ties = int(((score[1:] == score[:-1]) & (mean[1:] != mean[:-1])).sum())
    return ordered["item"].tolist(), n_ties


_TIE_CASES = [
    ("thumbs", "prob", "p_at_least", {"threshold": 0.5}),  # P(P(like) >= 0.5): 0/1 per draw
    ("thumbs", "prob", "p_at_least", {"threshold": 0.7, "kind": "expected"}),
    ("thumbs", "lower", "lower", {"kind": "predictive", "prob": 0.6}),  # a level: 0 or 1
    ("thumbs", "prob", "p_at_least", {"threshold": 0.0, "kind": "predictive"}),  # 1 for every item
    ("normal", "prob", "p_at_least", {"threshold": 3.0, "kind": "expected"}),
    ("normal", "prob", "p_at_least", {"threshold": 1.0}),  # censored at the bottom: 1 for every item
    ("ordinal", "lower", "lower", {"kind": "predictive", "prob": 0.5}),  # a level
    ("ordinal", "prob", "p_at_least", {"threshold": 1.0, "kind": "predictive"}),
]


@pytest.mark.parametrize(("fit", "rank_by", "column", "kwargs"), _TIE_CASES)
def test_ties_are_broken_by_the_mean_then_the_item(request, few_draws, fit, rank_by, column, kwargs):
    """Scores that take few values tie many items; the lists follow the mean, then the item index.

    Fails on a tie-break by candidate position (the order of the candidates is reversed
    here, so even the item-index order is not the one given).
    """
    result = request.getfixturevalue("thumbs") if fit == "thumbs" else few_draws[fit]
    n_ties = 0
    for user in result.train.users.classes[:4].tolist():
        expected, ties = _tie_broken(result, user, column, **kwargs)
        n_ties += ties
        candidates = expected[::-1]
        whole = recommend(result, user, n=1000, rank_by=rank_by, items=candidates, **kwargs)
        assert whole["item"].tolist() == expected
        np.testing.assert_array_equal(whole["score"], whole[column])
        top = recommend(result, user, n=4, rank_by=rank_by, items=candidates, **kwargs)  # a cut inside ties
        assert top["item"].tolist() == expected[:4]
    assert n_ties >= 2, "the case must tie items of different means"


def test_prob_on_a_binary_fit_means_p_of_p_like(thumbs):
    """kind="expected": P(P(like) >= t) from the draws; kind="predictive": P(y >= t) = P(like), the mean rule."""
    user = thumbs.train.users.classes[2]
    out = recommend(thumbs, user, n=1000, rank_by="prob", threshold=0.5)
    assert out.attrs["kind"] == "expected" and out.attrs["threshold"] == 0.5
    draws = thumbs.predict_draws(pd.DataFrame({"user": user, "item": out["item"]}), kind="expected")
    np.testing.assert_allclose(out["score"], (draws >= 0.5).mean(axis=0), rtol=1e-12)
    by_mean = recommend(thumbs, user, n=1000, kind="predictive")
    for t in (0.0, 0.3, 1.0):
        predictive = recommend(thumbs, user, n=1000, rank_by="prob", threshold=t, kind="predictive")
        assert predictive["item"].tolist() == by_mean["item"].tolist()
    with pytest.raises(ValueError, match=r"t in \[0, 1\] on a binary fit.*P\(y = 1\)"):
        recommend(thumbs, user, rank_by="prob", kind="predictive")  # no threshold by default
    with pytest.raises(ValueError, match="threshold"):
        recommend(thumbs, user, rank_by="prob", threshold=4.0)


def test_several_users_and_items_subset(post):
    users = post.train.users.classes[:3].tolist()
    items = post.train.items.classes[:10].tolist()
    out = recommend(post, users, n=2, items=items, exclude_rated=False)
    assert out["user"].tolist() == [u for u in users for _ in range(2)]
    assert set(out["item"]) <= set(items)


def test_unknown_user(post):
    out = recommend(post, "stranger", n=3, random_seed=0)
    assert out["new_user"].all() and len(out) == 3
    with pytest.raises(KeyError, match="stranger"):
        recommend(post, "stranger", unknown="raise")


@pytest.mark.parametrize("interval", ["eti", "hdi"])
def test_same_int_seed_gives_recommend_and_predict_the_same_draws(post, interval):
    """One seed policy: an unknown user's prior draws (and HDI draws) are the same pair by pair."""
    out = recommend(post, "stranger", n=5, random_seed=7, interval=interval, threshold=3.5)
    pairs = pd.DataFrame({"user": "stranger", "item": out["item"]})
    direct = predict(post, pairs, random_seed=7, interval=interval, threshold=3.5)
    assert direct["new_user"].all()
    for col in ("mean", "sd", "median", "lower", "upper", "p_at_least"):
        np.testing.assert_array_equal(out[col].to_numpy(), direct[col].to_numpy(), err_msg=col)
    # the same holds for a Generator in the same state, and a fresh seed gives other draws
    gen = recommend(post, "stranger", n=5, random_seed=np.random.default_rng(3), interval=interval)
    again = predict(post, pd.DataFrame({"user": "stranger", "item": gen["item"]}), random_seed=np.random.default_rng(3), interval=interval)
    np.testing.assert_array_equal(gen["lower"].to_numpy(), again["lower"].to_numpy())
    other = predict(post, pairs, random_seed=8, interval=interval)
    assert not np.array_equal(other["lower"].to_numpy(), direct["lower"].to_numpy())


def test_options_object_is_accepted(post):
    from bayesmf.options import PredictOptions

    user = post.train.users.classes[0]
    opts = PredictOptions(prob=0.8, threshold=3.0, interval="hdi", random_seed=2)
    a = recommend(post, user, n=4, rank_by="prob", options=opts)
    b = recommend(post, user, n=4, rank_by="prob", prob=0.8, threshold=3.0, interval="hdi", random_seed=2)
    pd.testing.assert_frame_equal(a, b)
    with pytest.raises(TypeError, match=r"prob=0\.7"):
        recommend(post, user, prob=0.7, options=opts)


def test_bad_input(post):
    user = post.train.users.classes[0]
    with pytest.raises(ValueError, match="'best'"):
        recommend(post, user, rank_by="best")
    with pytest.raises(ValueError, match="n must be"):
        recommend(post, user, n=0)
    with pytest.raises(ValueError, match="threshold"):
        recommend(post, user, rank_by="prob", threshold=None)
    with pytest.raises(ValueError, match="7"):
        recommend(post, user, threshold=7)
    with pytest.raises(ValueError, match=r"1\.2"):
        recommend(post, user, prob=1.2)
    with pytest.raises(ValueError, match="empty"):
        recommend(post, [])


# -- fold_in --------------------------------------------------------------------------------
def test_fold_in_extends_users_and_train(post):
    items = post.train.items.classes[:4].tolist()
    before_shape = post.posterior["U"].shape
    new = fold_in(post, {items[0]: 5, items[1]: 1, items[2]: 4}, user="alice", random_seed=0)
    assert post.posterior["U"].shape == before_shape  # the original is untouched
    assert new.posterior["U"].shape[2] == before_shape[2] + 1
    assert new.train.users.classes[-1] == "alice"
    assert new.train.n_ratings == post.train.n_ratings + 3
    np.testing.assert_array_equal(new.posterior["V"].values, post.posterior["V"].values)
    np.testing.assert_array_equal(new.posterior["U"].values[:, :, :-1], post.posterior["U"].values)
    assert new.info["folded_in"] == ["alice"]
    out = recommend(new, "alice", n=100)
    assert not set(out["item"]) & set(items[:3])
    assert not out["new_user"].any()


def test_fold_in_takes_a_dict_of_columns_as_the_frame_it_spells(post):
    """``{"user": [...], "item": [...], "rating": [...]}`` (README's "Ten lines") folds in as
    ``pd.DataFrame`` of it does, for users and for items; ragged columns and ``user=`` beside
    columns are errors that say so."""
    items = post.train.items.classes[:3].tolist()
    columns = {"user": ["ann"] * 3, "item": items, "rating": [5.0, 4.0, 5.0]}
    by_dict = fold_in(post, columns, random_seed=0)
    by_frame = fold_in(post, pd.DataFrame(columns), random_seed=0)
    np.testing.assert_array_equal(by_dict.posterior["U"].values, by_frame.posterior["U"].values)
    assert by_dict.train.users.classes[-1] == "ann" and by_dict.train.n_ratings == post.train.n_ratings + 3
    users = post.train.users.classes[:2].tolist()
    cols_items = {"user": users, "item": ["film"] * 2, "rating": [1.0, 2.0]}
    np.testing.assert_array_equal(
        fold_in_items(post, cols_items, random_seed=0).posterior["V"].values,
        fold_in_items(post, pd.DataFrame(cols_items), random_seed=0).posterior["V"].values,
    )
    with pytest.raises(ValueError, match="dict of columns"):
        fold_in(post, {"user": ["ann"] * 2, "item": items, "rating": [5.0, 4.0, 5.0]})
    with pytest.raises(ValueError, match="user='ann'"):
        fold_in(post, columns, user="ann")


def test_fold_in_cold_start_user_gets_the_prior(post):
    new = fold_in(post, {}, user="nobody", random_seed=1)
    out = predict(new, pd.DataFrame({"user": ["nobody"], "item": [post.train.items.classes[0]]}))
    assert out["new_user"].all()
    # the default prior is per-side with per-factor scales: U_k ~ N(m_k, s_k^2) in each draw
    mean = post.posterior["factor_mean_user"].values.reshape(-1, 3)
    sd = post.posterior["sigma_factor_user"].values.reshape(-1, 3)
    U = new.posterior["U"].values[:, :, -1].reshape(-1, 3)
    z = (U - mean) / sd
    assert abs(z.mean()) < 4 / np.sqrt(z.size) and abs(z.std() - 1) < 0.1


def test_fold_in_and_prior_predictive_use_the_per_side_prior_mean():
    """With factor_prior="per_side", a user without ratings is drawn around the user-side mean."""
    sim = simulate(n_users=40, n_items=30, n_factors=2, density=0.3, noise=0.5, seed=4)
    fit = PMF(n_factors=2, factor_prior="per_side").fit(
        sim.data, method="gibbs", draws=300, tune=100, chains=2, random_seed=3, progressbar=False
    )
    # shift the stored user-side mean far from 0, so using it (or not) is unmistakable
    fit.idata["posterior"]["factor_mean_user"] = fit.idata["posterior"]["factor_mean_user"] + 5.0
    mean = fit.posterior["factor_mean_user"].values.reshape(-1, 2)
    sd = fit.posterior["sigma_factor_user"].values.reshape(-1, 1)
    new = fold_in(fit, {}, user="nobody", random_seed=1)
    z = (new.posterior["U"].values[:, :, -1].reshape(-1, 2) - mean) / sd
    assert abs(z.mean()) < 4 / np.sqrt(z.size) and abs(z.std() - 1) < 0.1
    # the prior predictive of an unknown user: latent mean = mu + c_j + m_U . V_j on average
    item = sim.data.items.classes[0]
    out = predict(fit, pd.DataFrame({"user": ["stranger"], "item": [item]}), kind="expected", clip=False)
    arr = fit.arrays()
    expected = np.mean(arr.mu + arr.item_bias[:, 0] + np.einsum("sk,sk->s", mean, arr.V[:, 0].astype(float)))
    assert out["new_user"].all()
    assert out["mean"].iloc[0] == pytest.approx(expected, abs=0.15)


def test_fold_in_bad_input(post):
    item = post.train.items.classes[0]
    with pytest.raises(ValueError, match="already in the model"):
        fold_in(post, {item: 4}, user=post.train.users.classes[0])
    with pytest.raises(ValueError, match="31337"):
        fold_in(post, {31337: 4}, user="bob")
    with pytest.raises(ValueError, match="user="):
        fold_in(post, {item: 4})
    with pytest.raises(ValueError, match="9"):
        fold_in(post, {item: 9.0}, user="bob")
    with pytest.raises(ValueError, match=r"rating_col|columns"):
        fold_in(post, pd.DataFrame({"user": ["b"], "item": [item]}))
    with pytest.raises(TypeError, match="list"):
        fold_in(post, [(1, 2, 3)])
    for spec in (PMF(n_factors=2, likelihood="ordinal"), PMF(n_factors=2, link="logistic")):
        other = fake_result(spec, n_users=5, n_items=5)
        with pytest.raises(ValueError, match="likelihood='normal' with link='identity'"):
            fold_in(other, {other.train.items.classes[0]: 3}, user="x")


@pytest.fixture(scope="module")
def sim_setup():
    sim = simulate(n_users=120, n_items=50, n_factors=2, density=0.3, noise=0.5, seed=21, factor_sd=0.6, bias_sd=0.3)
    spec = PMF(n_factors=2, priors="fixed", sigma=0.5, sigma_u=0.6, sigma_v=0.6, sigma_bias=0.3)
    return sim, spec


def _empty_users_result(sim, spec, S, method="gibbs"):
    """A result knowing the items (truth) and one placeholder user (-1) without ratings."""
    d = sim.data
    train = RatingsData(
        np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0), d.scale, IdEncoder("user", np.array([-1])), d.items
    )
    draws = {"U": np.zeros((S, 1, 2)), "user_bias": np.zeros((S, 1))}
    return known_truth_result(spec, train, sim.truth, S, draws, method=method)


def test_fold_in_matches_the_exact_conditional_posterior(sim_setup):
    sim, spec = sim_setup
    S = 4000
    base = _empty_users_result(sim, spec, S)
    frame = sim.data.to_dataframe()
    users = [0, 1, 2]
    sub = frame[frame["user"].isin(users)]
    new = fold_in(base, sub, random_seed=2)
    sub_data = sim.data.subset(np.isin(sim.data.user_idx, users))
    exact = exact_user_posterior(sub_data, sim.truth, 0.6, 0.3, S, seed=3)
    for u in users:
        col = new.train.users.to_index([u])[0]
        x = np.column_stack([new.posterior["U"].values[0, :, col].astype(float), new.posterior["user_bias"].values[0, :, col]])
        y = np.column_stack([exact["U"][:, u], exact["user_bias"][:, u]])
        sd = y.std(0)
        assert np.all(np.abs(x.mean(0) - y.mean(0)) < 5 * sd * np.sqrt(2 / S))
        np.testing.assert_allclose(np.cov(x.T), np.cov(y.T), atol=0.12 * sd.max() ** 2)
    # MAP: the conditional mode is the exact posterior mean
    base_map = _empty_users_result(sim, spec, 1, method="map")
    mode = fold_in(base_map, sub)
    for u in users:
        sel = sim.data.user_idx == u
        items = sim.data.item_idx[sel]
        X = np.column_stack([sim.truth["V"][items], np.ones(len(items))])
        yv = sim.data.rating[sel] - float(sim.truth["mu"]) - sim.truth["item_bias"][items]
        prec = np.diag([1 / 0.36] * 2 + [1 / 0.09]) + X.T @ X / 0.25
        mean = np.linalg.solve(prec, X.T @ yv / 0.25)
        col = mode.train.users.to_index([u])[0]
        np.testing.assert_allclose(mode.posterior["U"].values[0, 0, col], mean[:2], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(mode.posterior["user_bias"].values[0, 0, col], mean[2], rtol=1e-8, atol=1e-10)


def test_fold_in_predictions_are_calibrated(sim_setup):
    sim, spec = sim_setup
    rng = np.random.default_rng(5)
    d = sim.data
    test_mask = np.zeros(d.n_ratings, bool)
    for u in range(d.n_users):
        rows = np.flatnonzero(d.user_idx == u)
        test_mask[rng.choice(rows, len(rows) // 2, replace=False)] = True
    base = _empty_users_result(sim, spec, 1000)
    folded = fold_in(base, d.subset(~test_mask).to_dataframe(), random_seed=6)
    test = d.subset(test_mask).to_dataframe()
    truth = sim.true_mean(d.user_idx[test_mask], d.item_idx[test_mask])
    for kind, target in (("expected", truth), ("predictive", test["rating"].to_numpy())):
        out = predict(folded, test, prob=0.9, kind=kind, clip=False)
        inside = ((out["lower"] <= target) & (target <= out["upper"])).to_numpy()
        groups = d.user_idx[test_mask]
        se = np.sqrt((np.bincount(groups, weights=inside - 0.9) ** 2).sum()) / len(inside)
        assert abs(inside.mean() - 0.9) < 4 * se + 0.005, (kind, inside.mean(), se)


def test_fold_in_beats_the_item_mean_baseline(sim_setup):
    sim, spec = sim_setup
    d = sim.data
    rng = np.random.default_rng(8)
    held = list(range(20))  # users folded in with 5 ratings each, scored on the rest
    others = ~np.isin(d.user_idx, held)
    S = 400
    # posterior of the others: truth with jitter (a stand-in for sampler uncertainty)
    U = sim.truth["U"][None] + rng.normal(0, 0.05, (S, d.n_users, 2))
    b = sim.truth["user_bias"][None] + rng.normal(0, 0.05, (S, d.n_users))
    base_train = d.subset(others)
    keep_users = np.setdiff1d(np.arange(d.n_users), held)
    train_users = IdEncoder("user", keep_users)
    base_train = RatingsData(
        train_users.to_index(d.users.to_raw(base_train.user_idx)), base_train.item_idx, base_train.rating, d.scale, train_users, d.items
    )
    base = known_truth_result(spec, base_train, sim.truth, S, {"U": U[:, keep_users], "user_bias": b[:, keep_users]})
    fold_rows, test_rows = [], []
    for u in held:
        rows = rng.permutation(np.flatnonzero(d.user_idx == u))
        fold_rows += rows[:5].tolist()
        test_rows += rows[5:].tolist()
    folded = fold_in(base, d.subset(np.array(fold_rows)).to_dataframe(), random_seed=9)
    test = d.subset(np.array(test_rows))
    pred = predict(folded, test.to_dataframe(), kind="expected")["mean"].to_numpy()
    baseline = item_mean_baseline(folded.train, test.to_dataframe())
    assert rmse(test.rating, pred) < rmse(test.rating, baseline)
