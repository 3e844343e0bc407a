"""Replay bandit (bayesmf.replay): invariants, the fold-in inside it, Thompson's frequencies, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from helpers import fake_result, known_truth_result
from scipy import stats

import bayesmf.replay_policies as policies_module
from bayesmf import fold_in as fold_in_module
from bayesmf.data import IdEncoder, RatingsData, UnknownIdError
from bayesmf.datasets import simulate
from bayesmf.posterior import make_posterior
from bayesmf.predictive.view import model_view
from bayesmf.replay import paired_difference, plot_regret, replay
from bayesmf.replay_policies import UserPosterior, item_side
from bayesmf.results import FitResult
from bayesmf.spec import PMF
from bayesmf.split import train_test_split

#: family-wise false-alarm level of each statistical check in this file
ALPHA = 1e-4
#: one-sided normal quantile of ALPHA (a paired mean difference this many se above 0)
Z_ALPHA = stats.norm.isf(ALPHA)


# -- planted truth ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def planted():
    """Simulated ratings; a MAP and a posterior whose item side is the planted truth."""
    sim = simulate(n_users=200, n_items=40, n_factors=2, density=0.5, noise=0.4, seed=0)
    train, test = train_test_split(sim.data, test_size=0.3, seed=1, by="user")
    truth = {k: np.asarray(v) for k, v in sim.truth.items()}
    truth["sigma"] = np.asarray(0.4)
    spec = PMF(n_factors=2, priors="fixed", sigma_u=1.0, sigma_bias=0.5)
    map_fit = known_truth_result(spec, train, truth, n_draws=1, method="als")
    post_fit = known_truth_result(spec, train, truth, n_draws=20, method="gibbs")
    return train, test, map_fit, post_fit


@pytest.fixture(scope="module")
def planted_runs(planted):
    _, test, map_fit, post_fit = planted
    a = replay(map_fit, test, rounds=8, random_seed=0, progressbar=False)
    b = replay(post_fit, test, rounds=8, random_seed=0, progressbar=False)
    return a, b


def test_exact_invariants(planted, planted_runs):
    _, test, _, _ = planted
    for run in planted_runs:
        pu = run.per_user
        assert (pu["cum_regret"] >= 0).all()  # the oracle is the ceiling, user by user, round by round
        oracle = pu[pu["policy"] == "oracle"]
        assert (oracle["cum_regret"] == 0).all()
        np.testing.assert_array_equal(oracle["cum_hits"], np.minimum(oracle["round"], oracle["n_relevant"]))
        for _, part in pu.groupby(["policy", "user"]):
            assert (np.diff(part["cum_hits"]) >= 0).all()
            np.testing.assert_array_equal(part["active"], part["round"] <= part["n_pool"])
        # a policy that has shown the whole pool has exactly the oracle's hits
        done = pu[pu["round"] >= pu["n_pool"]]
        assert len(done) > 0
        np.testing.assert_array_equal(done["cum_hits"], done["n_relevant"])
        assert (done["cum_regret"] == 0).all()
        # every shown item is in the user's pool, at most once, with its held-out rating
        held = test.to_dataframe().set_index(["user", "item"])["rating"]
        shown = run.shown
        assert not shown.duplicated(["policy", "user", "item"]).any()
        np.testing.assert_array_equal(held.loc[list(zip(shown["user"], shown["item"], strict=True))].to_numpy(),
                                      shown["rating"].to_numpy())
        np.testing.assert_array_equal(shown["hit"], shown["rating"] >= 4.0)
        # the summary is the per-user frame averaged
        mean = pu.groupby(["policy", "round"], sort=False)["cum_hits"].mean().to_numpy()
        np.testing.assert_allclose(run.summary["cum_hits"].to_numpy(), mean)


def test_random_is_worse_than_every_model_policy(planted_runs):
    """Paired over users, each model policy beats random at round 3 by more than Z_ALPHA se (one-sided 1e-4)."""
    per_user = pd.concat([run.per_user for run in planted_runs])
    for policy in ("greedy-map", "greedy-mean", "lower", "thompson"):
        d = paired_difference(per_user, policy, "random").set_index("round").loc[3]
        assert d["mean"] > Z_ALPHA * d["se"], (policy, d.to_dict())
    # and random and oracle pick alike whichever fit runs them (their own seeded streams)
    a, b = (run.shown[run.shown["policy"].isin(["random", "oracle"])].reset_index(drop=True) for run in planted_runs)
    pd.testing.assert_frame_equal(a, b)


# -- the fold-in inside the replay equals bayesmf.fold_in --------------------------------------
@pytest.mark.parametrize(("method", "chunk"), [("als", 64), ("gibbs", 64), ("gibbs", 2)])
def test_user_posterior_equals_fold_in(method, chunk, monkeypatch):
    monkeypatch.setattr(policies_module, "_CHUNK", chunk)  # 2: the training ratings summed in several blocks
    result = fake_result(PMF(n_factors=3), method=method, n_draws=40, seed=2)
    view = model_view(result)
    train = result.train
    u = 4
    items = train.item_idx[train.user_idx == u]
    ratings = train.rating[train.user_idx == u]
    assert len(items) > 2 * chunk or chunk == 64
    extra = np.setdiff1d(np.arange(train.n_items), items)[:4]
    extra_ratings = np.array([4.0, 1.5, 5.0, 3.0])
    post = UserPosterior.from_ratings(view, items, ratings)
    side = item_side(view, extra)
    for pos, r in enumerate(extra_ratings):
        post.observe(side.rows[:, pos], side.offset[:, pos], float(r))
    all_items, all_ratings = np.concatenate([items, extra]), np.concatenate([ratings, extra_ratings])
    mode = fold_in_module._conditional_draws(view, all_items, all_ratings, np.random.default_rng(0), mode=True)
    np.testing.assert_allclose(post.mean, mode, rtol=0, atol=1e-10)
    # the covariance is the inverse of fold_in's precision, built here by hand
    rows = item_side(view, all_items).rows
    prior_var = np.concatenate([view.prior_u**2, view.prior_ub[:, None] ** 2], axis=1)
    precision = np.einsum("snd,sne->sde", rows, rows) / (view.noise**2)[:, None, None]
    precision += np.stack([np.diag(1 / v) for v in prior_var])
    np.testing.assert_allclose(post.cov, np.linalg.inv(precision), rtol=0, atol=1e-10)
    if method == "als":  # the public route (stores factors as float32)
        folded = result.fold_in(dict(zip(train.items.to_raw(all_items).tolist(), all_ratings.tolist(), strict=True)),
                                user=10**6)
        U = folded.posterior["U"].sel(user=10**6).values.reshape(-1)
        b = folded.posterior["user_bias"].sel(user=10**6).values.reshape(-1)
        np.testing.assert_allclose(np.append(U, b), post.mean[0], rtol=1e-5, atol=1e-6)


NEW_USER = 10**6


def _greedy_by_fold_in(result, test, user, kept_items, kept_ratings, rounds):
    """Greedy-MAP picks of ``user`` replayed through the public fold_in, round by round."""
    train = result.train
    frame = test.to_dataframe()
    pool = frame[frame["user"] == user]
    items, ratings = list(kept_items), list(kept_ratings)
    remaining = dict(zip(pool["item"], pool["rating"], strict=True))
    picks = []
    for _ in range(min(rounds, len(remaining))):
        folded = result.fold_in(dict(zip(items, ratings, strict=True)), user=NEW_USER)
        p = folded.posterior
        U = p["U"].sel(user=NEW_USER).values.reshape(-1).astype(float)
        b = float(p["user_bias"].sel(user=NEW_USER).values.reshape(-1)[0])
        cand = list(remaining)
        j = train.items.to_index(cand)
        V = p["V"].values.reshape(-1, *p["V"].shape[2:])[0][j].astype(float)
        c = p["item_bias"].values.reshape(-1, p["item_bias"].shape[-1])[0][j]
        score = float(p["mu"].values.reshape(-1)[0]) + b + c + V @ U
        best = cand[int(np.argmax(score))]
        picks.append(best)
        items.append(best)
        ratings.append(remaining.pop(best))
    return picks


@pytest.mark.parametrize("kept", [None, 3])
def test_greedy_map_replays_the_public_fold_in(planted, kept):
    """End to end: the replay's greedy-MAP picks are those of fold_in + plug-in means (cold start by timestamp too)."""
    train, test, map_fit, _ = planted
    timestamp = np.random.default_rng(5).permutation(train.n_ratings) if kept else None
    run = replay(map_fit, test, rounds=5, policies=["greedy-map"], random_seed=0, progressbar=False,
                 train_ratings_kept=kept, timestamp=timestamp)
    frame = train.to_dataframe()
    frame["time"] = timestamp if kept else 0
    for user in run.per_user["user"].unique()[:4]:
        mine = frame[frame["user"] == user]
        if kept:
            mine = mine.sort_values("time", kind="stable").iloc[:kept]
            assert (run.per_user.loc[run.per_user["user"] == user, "n_train"] == kept).all()
        expected = _greedy_by_fold_in(map_fit, test, user, mine["item"], mine["rating"], 5)
        got = run.shown.loc[run.shown["user"] == user].sort_values("round")["item"].tolist()
        assert got == expected


def test_cold_start_random_subset_is_seeded_and_sized(planted):
    train, test, map_fit, _ = planted
    a = replay(map_fit, test, rounds=3, random_seed=1, progressbar=False, train_ratings_kept=2)
    b = replay(map_fit, test, rounds=3, random_seed=1, progressbar=False, train_ratings_kept=2)
    pd.testing.assert_frame_equal(a.shown, b.shown)
    counts = train.to_dataframe().groupby("user").size()
    n_train = a.per_user.groupby("user")["n_train"].first()
    np.testing.assert_array_equal(n_train.to_numpy(), np.minimum(counts.loc[n_train.index].to_numpy(), 2))
    warm = replay(map_fit, test, rounds=3, random_seed=1, progressbar=False)
    assert not warm.shown["item"].equals(a.shown["item"])  # starting from 2 ratings changes the picks
    zero = replay(map_fit, test, rounds=3, random_seed=1, progressbar=False, train_ratings_kept=0)
    assert (zero.per_user["n_train"] == 0).all()


# -- Thompson's picks follow P(item is best) -----------------------------------------------------
def _controlled(n_users: int, pool_V, delta, method: str = "gibbs", train_ratings=(3.5, 2.8, 3.6)) -> tuple[FitResult, RatingsData]:
    """K = 1; every user rates items 0-2 in training and holds out pool items 3, 4, ....

    V and everything but the item biases are the same in every draw; item 4's bias is
    ``delta[s]`` in draw s (the others 0); mu = 3, sigma = 1. The user's factor then has the
    same conditional N(m, v) in every draw.
    """
    train_V = np.array([1.0, -0.5, 0.8])
    V = np.concatenate([train_V, np.asarray(pool_V, dtype=float)])[:, None]
    n_items, S = len(V), len(delta)
    users = IdEncoder("user", np.arange(n_users))
    items = IdEncoder("item", np.arange(n_items))
    tu = np.repeat(np.arange(n_users), 3)
    train = RatingsData(tu, np.tile(np.arange(3), n_users), np.tile(train_ratings, n_users), (1.0, 5.0), users, items)
    n_pool = n_items - 3
    pool_ratings = np.linspace(5.0, 1.0, n_pool)
    test = RatingsData(np.repeat(np.arange(n_users), n_pool), np.tile(np.arange(3, n_items), n_users),
                       np.tile(pool_ratings, n_users), (1.0, 5.0), users, items)
    spec = PMF(n_factors=1, priors="fixed", sigma_u=1.0, sigma_bias=0.5)
    item_bias = np.zeros((1, S, n_items))
    item_bias[0, :, 4] = delta
    draws = {
        "U": np.zeros((1, S, n_users, 1)), "V": np.broadcast_to(V, (1, S, n_items, 1)).copy(),
        "mu": np.full((1, S), 3.0), "user_bias": np.zeros((1, S, n_users)), "item_bias": item_bias,
        "sigma": np.ones((1, S)),
    }
    idata = make_posterior(spec, train, draws, attrs={"method": method})
    return FitResult(spec=spec, idata=idata, method=method, train=train, info={}), test


def _user_posterior(train_ratings) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of the user's (factor, bias) given items 0-2 (explicit inverse, not the package's code)."""
    X = np.column_stack([[1.0, -0.5, 0.8], np.ones(3)])
    cov = np.linalg.inv(np.diag([1.0, 1 / 0.25]) + X.T @ X)
    return cov @ X.T @ (np.asarray(train_ratings) - 3.0), cov


def _factor_posterior(train_ratings) -> tuple[float, float]:
    """Mean and sd of the user's factor given items 0-2."""
    mean, cov = _user_posterior(train_ratings)
    return float(mean[0]), float(np.sqrt(cov[0, 0]))


def _best_probabilities(delta, m: float, sd: float) -> np.ndarray:
    """P(pool item best) for scores (u, delta, -u) of items 3, 4, 5: averaged over the draws."""
    probs = []
    for d in delta:
        p3 = stats.norm.sf(max(d, 0.0), m, sd)
        p5 = stats.norm.cdf(min(-d, 0.0), m, sd)
        probs.append([p3, 1 - p3 - p5, p5])
    return np.mean(probs, axis=0)


def _min_binomial_p(counts: np.ndarray, probs: np.ndarray) -> float:
    """Bonferroni-corrected smallest two-sided exact binomial p-value over the items."""
    n = int(counts.sum())
    return min(1.0, len(probs) * min(stats.binomtest(int(c), n, float(p)).pvalue for c, p in zip(counts, probs, strict=True)))


DELTA = (0.4, 0.4, -0.2, 0.1)


def _first_picks(result, test, policy="thompson", seed=0) -> np.ndarray:
    run = replay(result, test, rounds=1, policies=[policy], random_seed=seed, progressbar=False)
    return np.bincount(run.shown["item"].to_numpy() - 3, minlength=3)


def test_thompson_picks_each_item_with_its_probability_of_being_best():
    result, test = _controlled(4000, [1.0, 0.0, -1.0], DELTA)
    m, sd = _factor_posterior((3.5, 2.8, 3.6))
    probs = _best_probabilities(DELTA, m, sd)
    assert probs.min() > 0.1  # every item has a real chance
    counts = _first_picks(result, test)
    assert _min_binomial_p(counts, probs) > ALPHA, (counts, probs * counts.sum())


def test_thompson_check_fails_without_the_users_uncertainty(monkeypatch):
    """The same check rejects a broken Thompson that uses the user's conditional mean (no draw)."""
    result, test = _controlled(4000, [1.0, 0.0, -1.0], DELTA)
    probs = _best_probabilities(DELTA, *_factor_posterior((3.5, 2.8, 3.6)))
    monkeypatch.setattr(policies_module.UserPosterior, "draw",
                        lambda self, rng, sample=None: self.mean if sample is None else self.mean[sample])
    assert _min_binomial_p(_first_picks(result, test), probs) < ALPHA


def test_lower_prefers_the_sure_item_and_greedy_the_uncertain_one():
    """Item 3 (V = 3: its rating hangs on the user's uncertain factor) has the higher mean; item 4 (V = 0) is surer."""
    (m, _), cov = _user_posterior((3.5, 2.8, 3.6))
    delta = 3 * m - 0.1  # item 4's mean rating 0.1 below item 3's
    sd3 = np.sqrt(np.array([3.0, 1.0]) @ cov @ np.array([3.0, 1.0]))  # sd of 3 u + b
    sd4 = np.sqrt(cov[1, 1])  # sd of b
    gap = stats.norm.isf(0.05) * (sd3 - sd4) - 0.1  # item 4's 5 % quantile minus item 3's
    # 400 draws: the empirical 5 % quantile's sd is about 0.11 sd (normal theory), far below the gap
    assert gap > 10 * 0.11 * sd3, (gap, sd3)
    result, test = _controlled(5, [3.0, 0.0], np.full(400, delta))
    assert (_first_picks(result, test, "greedy-mean") == [5, 0, 0]).all()
    assert (_first_picks(result, test, "lower") == [0, 5, 0]).all()


# -- reproducibility -------------------------------------------------------------------------
def test_same_seed_same_frames_other_seed_other_picks(planted):
    _, test, _, post_fit = planted
    kw = {"rounds": 4, "policies": ["lower", "thompson", "random"], "progressbar": False}
    a, b = replay(post_fit, test, random_seed=3, **kw), replay(post_fit, test, random_seed=3, **kw)
    for x, y in zip(a, b, strict=True):
        pd.testing.assert_frame_equal(x, y)
    c = replay(post_fit, test, random_seed=4, **kw)
    for policy in ("thompson", "random"):
        assert not a.shown.loc[a.shown["policy"] == policy, "item"].equals(c.shown.loc[c.shown["policy"] == policy, "item"])
    alone = replay(post_fit, test, random_seed=3, rounds=4, policies=["random"], progressbar=False)
    pd.testing.assert_frame_equal(alone.shown.reset_index(drop=True),
                                  a.shown[a.shown["policy"] == "random"].reset_index(drop=True))


def test_frame_input_gives_the_same_result(planted):
    _, test, map_fit, _ = planted
    a = replay(map_fit, test, rounds=3, random_seed=0, progressbar=False)
    frame = test.to_dataframe()
    before = frame.copy()
    b = replay(map_fit, frame, rounds=3, random_seed=0, progressbar=False)
    pd.testing.assert_frame_equal(a.summary, b.summary)
    pd.testing.assert_frame_equal(frame, before)  # nothing the user passed is modified


# -- short pools ---------------------------------------------------------------------------------
def test_users_stop_when_their_pool_runs_out():
    result, test = _controlled(6, [1.0, 0.0], DELTA)  # pools of 2 items (ratings 5 and 1), 5 rounds
    run = replay(result, test, rounds=5, random_seed=0, progressbar=False)
    pu = run.per_user
    assert (pu["n_pool"] == 2).all() and (pu["n_relevant"] == 1).all()
    np.testing.assert_array_equal(pu["active"], pu["round"] <= 2)
    late = pu[pu["round"] >= 2]
    assert (late["cum_hits"] == 1).all() and (late["cum_regret"] == 0).all()
    np.testing.assert_allclose(late["hit_rate"], 0.5)  # one hit over the two rounds the user had
    assert run.summary.loc[run.summary["round"] == 3, "n_active"].eq(0).all()
    assert len(run.shown) == 2 * 6 * len(run.summary.attrs["policies"])


# -- output helpers ----------------------------------------------------------------------------
def test_paired_difference_and_plot(planted_runs):
    a, _ = planted_runs
    d = paired_difference(a.per_user, "greedy-map", "random", column="cum_regret")
    pu = a.per_user.set_index(["policy", "round", "user"])["cum_regret"]
    manual = (pu.loc["greedy-map"] - pu.loc["random"]).groupby(level="round")
    np.testing.assert_allclose(d["mean"], manual.mean())
    np.testing.assert_allclose(d["se"], manual.std(ddof=1) / np.sqrt(manual.size()))
    with pytest.raises(ValueError, match="'ucb'"):
        paired_difference(a.per_user, "ucb", "random")
    ax = plot_regret(a.summary)
    assert [line.get_label() for line in ax.get_lines()] == ["greedy-map", "random"]
    with pytest.raises(ValueError, match="thompson"):
        plot_regret(a.summary, ["thompson"])


# -- bad input -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"rounds": 0}, ValueError, "rounds must be >= 1, got 0"),
        ({"rounds": 2.5}, TypeError, "rounds"),
        ({"threshold": 20.0}, ValueError, "threshold=20.0 is outside"),
        ({"policies": ["greedy-map", "ucb"]}, ValueError, "'ucb'"),
        ({"policies": ["thompson"]}, ValueError, "'thompson' needs posterior draws"),
        ({"policies": ["random", "random"]}, ValueError, "'random' is named twice"),
        ({"policies": []}, ValueError, "empty"),
        ({"quantile": 1.5}, ValueError, "quantile"),
        ({"train_ratings_kept": -1}, ValueError, "train_ratings_kept must be >= 0, got -1"),
        ({"timestamp": np.arange(3)}, ValueError, "needs train_ratings_kept"),
        ({"train_ratings_kept": 2, "timestamp": np.arange(3)}, ValueError, "timestamp"),
        ({"progressbar": "yes"}, TypeError, "'yes'"),
        ({"random_seed": -1}, ValueError, "random_seed"),
    ],
)
def test_bad_input_names_the_value(planted, kwargs, error, match):
    _, test, map_fit, _ = planted
    with pytest.raises(error, match=match):
        replay(map_fit, test, **{"progressbar": False, **kwargs})


def test_bad_fit_or_test(planted):
    _, test, map_fit, post_fit = planted
    with pytest.raises(ValueError, match="'greedy-map' is for a MAP fit"):
        replay(post_fit, test, policies=["greedy-map"], progressbar=False)
    frame = test.to_dataframe()
    frame.loc[0, "user"] = 9999
    with pytest.raises(UnknownIdError, match="9999"):
        replay(map_fit, frame, progressbar=False)
    frame = test.to_dataframe()
    frame.loc[0, "item"] = 777
    with pytest.raises(UnknownIdError, match="777"):
        replay(map_fit, frame, progressbar=False)
    with pytest.raises(TypeError, match="list"):
        replay(map_fit, [1, 2, 3], progressbar=False)
    result, pools = _controlled(3, [1.0, 0.0], DELTA)  # held-out ratings 5 and 1
    with pytest.raises(ValueError, match="no test user has a held-out rating >= threshold=4"):
        replay(result, pools.subset(pools.rating < 4), progressbar=False)
    ordinal = fake_result(PMF(n_factors=2, likelihood="ordinal"), method="als")
    with pytest.raises(ValueError, match="likelihood='ordinal'"):
        replay(ordinal, ordinal.train, progressbar=False)
