"""Choice replay bandit (bayesmf.replay_choice): the exact fold-in, invariants, Thompson's frequencies, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from helpers import fake_draws
from scipy import stats

import bayesmf.replay_policies as policies_module
from bayesmf import as_implicit
from bayesmf.confidence import confidence_weights
from bayesmf.data import IdEncoder, RatingsData
from bayesmf.model_implicit import dense_targets
from bayesmf.posterior import make_posterior
from bayesmf.predictive.view import model_view
from bayesmf.replay import paired_difference, replay
from bayesmf.replay_choice import choice_start, fold_choice, replay_choice
from bayesmf.replay_policies import design_sums, item_side
from bayesmf.results import FitResult
from bayesmf.spec import PMF

#: family-wise false-alarm level of each statistical check in this file
ALPHA = 1e-4
Z_ALPHA = stats.norm.isf(ALPHA)


def _fit(spec: PMF, data: RatingsData, draws: dict[str, np.ndarray], method: str = "gibbs") -> FitResult:
    return FitResult(spec=spec, idata=make_posterior(spec, data, draws, attrs={"method": method}), method=method,
                     train=data, info={})


# -- planted choices ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def planted():
    """Choices drawn with P(chosen) = clip(0.3 + U.V); a MAP and a posterior fit whose item side is the truth."""
    rng = np.random.default_rng(0)
    n_users, n_items, K = 150, 50, 2
    U, V = rng.normal(0, 0.6, (n_users, K)), rng.normal(0, 0.6, (n_items, K))
    chosen = rng.random((n_users, n_items)) < np.clip(0.3 + U @ V.T, 0, 1)
    u, i = np.nonzero(chosen)
    rating = rng.integers(1, 6, len(u)).astype(float)
    users, items = IdEncoder("user", np.arange(n_users)), IdEncoder("item", np.arange(n_items) + 1000)
    test_mask = rng.random(len(u)) < 0.3
    ratings = RatingsData(u, i, rating, (1.0, 5.0), users, items)
    train, test = as_implicit(ratings.subset(~test_mask)), ratings.subset(test_mask)
    spec = PMF(n_factors=K, likelihood="implicit", priors="fixed", sigma_u=0.6, sigma_bias=0.3)

    def rep(a: np.ndarray, S: int) -> np.ndarray:
        return np.broadcast_to(np.asarray(a, dtype=float), (1, S, *np.shape(a))).copy()

    def fit(S: int, method: str) -> FitResult:
        draws = {"V": rep(V, S), "item_bias": rep(np.zeros(n_items), S), "mu": rep(0.3, S),
                 "sigma": rep(1 / 4.5, S), "U": rep(U, S), "user_bias": rep(np.zeros(n_users), S)}
        return _fit(spec, train, draws, method)

    return train, test, fit(1, "map"), fit(20, "gibbs")


@pytest.fixture(scope="module")
def planted_runs(planted):
    _, test, map_fit, post_fit = planted
    kw = {"rounds": 6, "n_negatives": 15, "random_seed": 0, "progressbar": False}
    return replay_choice(map_fit, test, **kw), replay_choice(post_fit, test, **kw)


def test_exact_invariants(planted, planted_runs):
    train, test, _, _ = planted
    held = set(zip(test.user_idx.tolist(), (test.item_idx).tolist(), strict=True))
    chosen_in_train = set(zip(train.user_idx.tolist(), train.item_idx.tolist(), strict=True))
    for run in planted_runs:
        pu, shown = run.per_user, run.shown
        assert (pu["cum_regret"] >= 0).all()  # the oracle is the ceiling, user by user, round by round
        oracle = pu[pu["policy"] == "oracle"]
        np.testing.assert_array_equal(oracle["cum_hits"], np.minimum(oracle["round"], oracle["n_relevant"]))
        for _, part in pu.groupby(["policy", "user"]):
            assert (np.diff(part["cum_hits"]) >= 0).all()
        assert not shown.duplicated(["policy", "user", "item"]).any()
        pairs = list(zip(shown["user"], train.items.to_index(shown["item"]), strict=True))
        np.testing.assert_array_equal(shown["chosen"], [p in held for p in pairs])
        assert not any(p in chosen_in_train for p in pairs)  # a pool never holds a training choice
        np.testing.assert_array_equal(shown["hit"], shown["chosen"])  # reward="chosen"
        assert shown.loc[~shown["chosen"], "rating"].isna().all()
        n_held = test.to_dataframe().groupby("user").size()
        first = pu.groupby("user")[["n_pool", "n_relevant"]].first()
        np.testing.assert_array_equal(first["n_relevant"], n_held.loc[first.index])
        np.testing.assert_array_equal(first["n_pool"], first["n_relevant"] + 15)  # 15 negatives each (enough free items)
        assert run.summary.attrs["n_users_short_of_negatives"] == 0


def test_random_hits_match_their_expectation(planted_runs):
    """Random's hits at each round: sum over users of (hits - t R / N) within Z_ALPHA sd (hypergeometric, two-sided)."""
    pu = planted_runs[1].per_user
    rnd = pu[pu["policy"] == "random"]
    for t in (1, 3, 6):
        part = rnd[rnd["round"] == t]
        N, R, h = part["n_pool"].to_numpy(float), part["n_relevant"].to_numpy(float), part["cum_hits"].to_numpy(float)
        n = np.minimum(t, N)
        var = n * (R / N) * (1 - R / N) * (N - n) / np.maximum(N - 1, 1)
        z = (h - n * R / N).sum() / np.sqrt(var.sum())
        assert abs(z) < stats.norm.isf(ALPHA / 6), (t, z)


def test_model_policies_beat_random(planted_runs):
    """Paired over users at round 3, each model policy beats random by more than Z_ALPHA se (one-sided 1e-4)."""
    per_user = pd.concat([run.per_user for run in planted_runs])
    for policy in ("greedy-map", "greedy-mean", "lower", "thompson"):
        d = paired_difference(per_user, policy, "random").set_index("round").loc[3]
        assert d["mean"] > Z_ALPHA * d["se"], (policy, d.to_dict())
    a, b = (run.shown[run.shown["policy"].isin(["random", "oracle"])].reset_index(drop=True) for run in planted_runs)
    pd.testing.assert_frame_equal(a, b)  # the same pools and free picks whichever fit runs them


# -- the fold-in is exact --------------------------------------------------------------------------
def _dense_conditional(fit: FitResult, u: int, y: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance per draw of user u's (U_u, b_u) given preferences y and weights w over ALL items (numpy)."""
    post = fit.posterior
    V = post["V"].values.reshape(-1, *post["V"].shape[2:])
    S, J, K = V.shape
    off = post["mu"].values.reshape(S, 1) + post["item_bias"].values.reshape(S, J)
    sig2 = post["sigma"].values.reshape(S) ** 2
    if "sigma_factor" in post:  # hierarchical: the draw's prior sds
        sd_u, sd_b = post["sigma_factor"].values.reshape(S, 1), post["sigma_user_bias"].values.reshape(S, 1)
    else:  # fixed priors: the spec's
        sd_u, sd_b = np.full((S, 1), fit.spec.sigma_u), np.full((S, 1), fit.spec.sigma_bias)
    prior = np.concatenate([np.repeat(sd_u**2, K, axis=1), sd_b**2], axis=1)
    means, covs = [], []
    for s in range(S):
        X = np.column_stack([V[s], np.ones(J)])
        precision = np.diag(1 / prior[s]) + X.T @ (w[:, None] * X) / sig2[s]
        cov = np.linalg.inv(precision)
        covs.append(cov)
        means.append(cov @ (X.T @ (w * (y - off[s]))) / sig2[s])
    return np.array(means), np.array(covs)


def _random_choice_fit(seed: int = 2) -> FitResult:
    rng = np.random.default_rng(seed)
    n_users, n_items = 6, 30
    cells = rng.random((n_users, n_items)) < 0.4
    u, i = np.nonzero(cells)
    data = RatingsData(u, i, rng.integers(1, 6, len(u)).astype(float), (0.0, 1.0),
                       IdEncoder("user", np.arange(n_users)), IdEncoder("item", np.arange(n_items)))
    spec = PMF(n_factors=3, likelihood="implicit", confidence="log", confidence_scale=2.0)
    draws = fake_draws(spec, data, n_chains=2, n_draws=8, seed=seed, factor_sd=0.4, sigma=0.3)
    return _fit(spec, data, draws)


@pytest.mark.parametrize("chunk", [64, 2])
def test_start_and_feedback_equal_the_dense_conditional(chunk, monkeypatch):
    """The start (all items, choices with their confidences) and each fold equal the dense formula to 1e-10."""
    monkeypatch.setattr(policies_module, "_CHUNK", chunk)  # 2: the sums formed in many blocks
    fit = _random_choice_fit()
    spec, data, view = fit.spec, fit.train, model_view(fit)
    u = 1
    mine = data.user_idx == u
    assert mine.sum() > 2 * chunk or chunk == 64
    base = design_sums(view, np.arange(data.n_items), np.ones(data.n_items), np.zeros(data.n_items))
    post = choice_start(view, base, data.item_idx[mine], confidence_weights(spec, data.rating[mine]))
    y_all, w_all = dense_targets(spec, data)
    y, w = y_all[u].copy(), w_all[u].copy()
    mean, cov = _dense_conditional(fit, u, y, w)
    np.testing.assert_allclose(post.mean, mean, rtol=0, atol=1e-10)
    np.testing.assert_allclose(post.cov, cov, rtol=0, atol=1e-10)
    # feedback on items the user did not choose in training: chosen (value 3), passed over (weight 2.5 and 1)
    pool = np.setdiff1d(np.arange(data.n_items), data.item_idx[mine])[:5]
    side = item_side(view, pool)
    c3 = float(confidence_weights(spec, np.array([3.0]))[0])
    for pos, (chosen, weight) in enumerate([(True, c3), (False, 2.5), (False, 1.0), (True, c3), (False, 4.0)]):
        fold_choice(post, side, pos, chosen, weight)
        y[pool[pos]], w[pool[pos]] = float(chosen), weight
        mean, cov = _dense_conditional(fit, u, y, w)
        np.testing.assert_allclose(post.mean, mean, rtol=0, atol=1e-10)
        np.testing.assert_allclose(post.cov, cov, rtol=0, atol=1e-10)


def test_the_dense_check_fails_on_a_fold_that_forgets_the_unit_weight(monkeypatch):
    """A broken fold (adding w instead of w - 1, as if the pair had not been in the start) is caught."""
    fit = _random_choice_fit()
    view, data = model_view(fit), fit.train
    base = design_sums(view, np.arange(data.n_items), np.ones(data.n_items), np.zeros(data.n_items))
    mine = data.user_idx == 0
    post = choice_start(view, base, data.item_idx[mine], confidence_weights(fit.spec, data.rating[mine]))
    pool = np.setdiff1d(np.arange(data.n_items), data.item_idx[mine])[:1]
    post.add_term(item_side(view, pool).rows[:, 0], item_side(view, pool).offset[:, 0], 2.0, 2.0)  # broken: a = w
    y_all, w_all = dense_targets(fit.spec, data)
    y, w = y_all[0].copy(), w_all[0].copy()
    y[pool[0]], w[pool[0]] = 1.0, 2.0
    assert np.abs(post.mean - _dense_conditional(fit, 0, y, w)[0]).max() > 1e-4


def test_greedy_map_replays_the_dense_refit(planted):
    """End to end: each greedy-MAP pick is the argmax of the score under the dense conditional refitted that round."""
    train, test, map_fit, _ = planted
    kw = {"rounds": 4, "reward": "liked", "n_negatives": train.n_items, "policies": ["greedy-map"], "random_seed": 0,
          "progressbar": False, "value": "rating", "negative_confidence": 2.5}
    run = replay_choice(map_fit, test, **kw)
    y_all, w_all = dense_targets(map_fit.spec, train)
    post = map_fit.posterior
    V = post["V"].values.reshape(-1, *post["V"].shape[2:])[0]
    off = float(post["mu"].values.reshape(-1)[0]) + post["item_bias"].values.reshape(1, -1)[0]
    held = test.to_dataframe()
    for user in run.per_user["user"].unique()[:5]:
        u = int(train.users.to_index([user])[0])
        y, w = y_all[u].copy(), w_all[u].copy()
        mine = held[held["user"] == user]
        rating_of = dict(zip(train.items.to_index(mine["item"]).tolist(), mine["rating"], strict=True))
        remaining = [j for j in range(train.n_items) if w_all[u, j] == 1.0]  # every item not chosen in training
        picks = []
        for _ in range(4):
            x = _dense_conditional(map_fit, u, y, w)[0][0]
            j = remaining[int(np.argmax(V[remaining] @ x[:-1] + x[-1] + off[remaining]))]
            picks.append(j)
            remaining.remove(j)
            if j in rating_of:
                y[j], w[j] = 1.0, float(confidence_weights(map_fit.spec, np.array([rating_of[j]]))[0])
            else:
                w[j] = 2.5
        got = run.shown.loc[run.shown["user"] == user].sort_values("round")["item"]
        assert train.items.to_index(got).tolist() == picks


# -- Thompson's picks follow P(item is best) -----------------------------------------------------
DELTA = (0.15, 0.15, -0.1, 0.05)
POOL_V = (1.0, 0.0, -1.0)


def _controlled(n_users: int, pool_v=POOL_V, delta=DELTA) -> tuple[FitResult, RatingsData]:
    """K = 1; every user chose items 0-2 in training and holds out the pool items 3, 4, ...; item 4's bias is delta[s] in draw s."""
    V = np.array([0.6, -0.3, 0.5, *pool_v])[:, None]
    n_items, S = len(V), len(delta)
    n_pool = n_items - 3
    users, items = IdEncoder("user", np.arange(n_users)), IdEncoder("item", np.arange(n_items))
    train = RatingsData(np.repeat(np.arange(n_users), 3), np.tile(np.arange(3), n_users), np.ones(3 * n_users),
                        (0.0, 1.0), users, items)
    test = RatingsData(np.repeat(np.arange(n_users), n_pool), np.tile(np.arange(3, n_items), n_users),
                       np.full(n_pool * n_users, 4.0), (1.0, 5.0), users, items)
    spec = PMF(n_factors=1, likelihood="implicit", priors="fixed", sigma_u=1.0, sigma_bias=0.5)
    item_bias = np.zeros((1, S, n_items))
    item_bias[0, :, 4] = delta
    draws = {"U": np.zeros((1, S, n_users, 1)), "V": np.broadcast_to(V, (1, S, n_items, 1)).copy(),
             "mu": np.full((1, S), 0.2), "user_bias": np.zeros((1, S, n_users)), "item_bias": item_bias,
             "sigma": np.full((1, S), 0.5)}
    return _fit(spec, train, draws), test


def _best_probabilities(fit: FitResult) -> np.ndarray:
    """P(pool item 3, 4, 5 best) averaged over the draws; scores u, delta, -u (+ the common b), u's law by numpy."""
    y, w = dense_targets(fit.spec, fit.train)
    means, covs = _dense_conditional(fit, 0, y[0], w[0])  # the conditional differs by draw (item 4's bias)
    probs = []
    for d, m, c in zip(DELTA, means[:, 0], np.sqrt(covs[:, 0, 0]), strict=True):
        p3 = stats.norm.sf(max(d, 0.0), m, c)
        p5 = stats.norm.cdf(min(-d, 0.0), m, c)
        probs.append([p3, 1 - p3 - p5, p5])
    return np.mean(probs, axis=0)


def _first_picks(fit: FitResult, test: RatingsData, policy: str = "thompson") -> np.ndarray:
    run = replay_choice(fit, test, rounds=1, n_negatives=0, policies=[policy], random_seed=0, progressbar=False)
    return np.bincount(run.shown["item"].to_numpy() - 3, minlength=3)


def _min_binomial_p(counts: np.ndarray, probs: np.ndarray) -> float:
    """Bonferroni-corrected smallest two-sided exact binomial p-value over the items."""
    n = int(counts.sum())
    return min(1.0, len(probs) * min(stats.binomtest(int(c), n, float(p)).pvalue for c, p in zip(counts, probs, strict=True)))


def test_thompson_picks_each_item_with_its_probability_of_being_best():
    fit, test = _controlled(3000)
    probs = _best_probabilities(fit)
    assert probs.min() > 0.1  # every item has a real chance
    assert _min_binomial_p(_first_picks(fit, test), probs) > ALPHA


def test_thompson_check_fails_without_the_users_uncertainty(monkeypatch):
    fit, test = _controlled(3000)
    probs = _best_probabilities(fit)
    monkeypatch.setattr(policies_module.UserPosterior, "draw",
                        lambda self, rng, sample=None: self.mean if sample is None else self.mean[sample])
    assert _min_binomial_p(_first_picks(fit, test), probs) < ALPHA


def test_lower_prefers_the_sure_item_and_greedy_the_uncertain_one():
    """Item 3 (V = 3: its score hangs on the user's uncertain factor) has the higher mean; item 4 (V = 0) is surer."""
    delta = 0.0
    for _ in range(50):  # item 4's bias puts its mean score 0.02 below item 3's (it enters the user's conditional)
        fit, _ = _controlled(1, (3.0, 0.0), np.full(400, delta))
        y, w = dense_targets(fit.spec, fit.train)
        mean, cov = (a[0] for a in _dense_conditional(fit, 0, y[0], w[0]))
        delta = 3 * mean[0] - 0.02
    sd3 = np.sqrt(np.array([3.0, 1.0]) @ cov @ np.array([3.0, 1.0]))  # sd of 3 u + b
    sd4 = np.sqrt(cov[1, 1])  # sd of b
    assert abs(3 * mean[0] - delta - 0.02) < 1e-9
    gap = stats.norm.isf(0.05) * (sd3 - sd4) - 0.02  # item 4's 5 % quantile minus item 3's
    # the empirical 5 % quantile of 1000 draws has sd sqrt(.05 .95 / 1000) / phi(z_.05) sd (normal theory)
    q_sd = np.sqrt(0.05 * 0.95 / 1000) / stats.norm.pdf(stats.norm.isf(0.05))
    assert gap > 10 * q_sd * sd3, (gap, q_sd * sd3)
    fit, test = _controlled(5, (3.0, 0.0), np.full(1000, delta))
    assert (_first_picks(fit, test, "greedy-mean")[:2] == [5, 0]).all()
    assert (_first_picks(fit, test, "lower")[:2] == [0, 5]).all()


# -- reproducibility, other inputs, bad input -------------------------------------------------------
def test_same_seed_same_frames_and_frame_input(planted):
    _, test, _, post_fit = planted
    kw = {"rounds": 3, "n_negatives": 10, "policies": ["lower", "thompson", "random"], "progressbar": False}
    a, b = replay_choice(post_fit, test, random_seed=3, **kw), replay_choice(post_fit, test, random_seed=3, **kw)
    for x, y in zip(a, b, strict=True):
        pd.testing.assert_frame_equal(x, y)
    c = replay_choice(post_fit, test, random_seed=4, **kw)
    assert not a.shown["item"].equals(c.shown["item"])
    frame = test.to_dataframe()
    before = frame.copy()
    d = replay_choice(post_fit, frame, random_seed=3, **kw)
    pd.testing.assert_frame_equal(a.shown, d.shown)
    pd.testing.assert_frame_equal(frame, before)  # nothing the user passed is modified


def test_liked_reward_and_cold_start(planted):
    _, test, map_fit, _ = planted
    run = replay_choice(map_fit, test, rounds=4, reward="liked", threshold=4.0, n_negatives=5, random_seed=0,
                        progressbar=False, train_choices_kept=2)
    shown = run.shown
    np.testing.assert_array_equal(shown["hit"], shown["chosen"] & (shown["rating"] >= 4.0))
    assert (run.per_user["n_train"] <= 2).all() and run.summary.attrs["threshold"] == 4.0
    liked_users = test.to_dataframe().query("rating >= 4")["user"].nunique()
    assert run.summary.attrs["n_users"] == liked_users


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"rounds": 0}, ValueError, "rounds must be >= 1, got 0"),
        ({"reward": "clicked"}, ValueError, "'clicked'"),
        ({"reward": "liked", "threshold": 9.0}, ValueError, "threshold=9.0 is outside"),
        ({"n_negatives": -1}, ValueError, "n_negatives must be >= 0, got -1"),
        ({"negative_confidence": 0.5}, ValueError, r"negative_confidence must be a number >= 1 .*got 0.5"),
        ({"value": "count"}, ValueError, "'count'"),
        ({"policies": ["thompson"]}, ValueError, "'thompson' needs posterior draws"),
        ({"timestamp": np.arange(3)}, ValueError, "needs train_choices_kept"),
    ],
)
def test_bad_input_names_the_value(planted, kwargs, error, match):
    _, test, map_fit, _ = planted
    with pytest.raises(error, match=match):
        replay_choice(map_fit, test, **{"progressbar": False, **kwargs})


def test_a_rating_fit_is_refused_and_the_rating_replay_refuses_a_choice_fit(planted):
    train, test, map_fit, _ = planted
    rating_spec = PMF(n_factors=2, priors="fixed")
    ratings = RatingsData(train.user_idx, train.item_idx, np.full(train.n_ratings, 3.0), (1.0, 5.0),
                          train.users, train.items)
    draws = {k: map_fit.posterior[k].values for k in ("U", "V", "mu", "user_bias", "item_bias", "sigma")}
    rating_fit = _fit(rating_spec, ratings, draws, "map")
    with pytest.raises(ValueError, match="likelihood='implicit'"):
        replay_choice(rating_fit, test, progressbar=False)
    with pytest.raises(ValueError, match="likelihood='implicit'"):
        replay(map_fit, test, progressbar=False)
