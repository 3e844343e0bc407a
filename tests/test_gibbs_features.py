"""The Gibbs sampler with side information: the feature prior block (`FeatureFactors`).

U_i ~ N(m_U + W_U^T x_i, v_U), W_U ~ N(0, v_U / beta_U), beta_U ~ Gamma; the same for items.
Planted truth, simulation-based calibration (shown to fail on broken variants), and the
posterior layout of the new variables.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bayesmf.data import IdEncoder, RatingsData
from bayesmf.features import Features
from bayesmf.inference.gibbs import priors
from bayesmf.inference.gibbs.problem import build_problem
from bayesmf.inference.gibbs.start import initial_state
from bayesmf.inference.gibbs.sweep import build_sweep
from bayesmf.link import mu_prior
from bayesmf.posterior import features_of, make_posterior, param_names, shapes_for
from bayesmf.spec import FACTOR_MEAN_KAPPA, PMF
from tests.sbc_chain import sbc_draws, uniformity_pvalues

SPEC = PMF(n_factors=2, factor_prior="per_side")


def feature_frames(rng: np.random.Generator, n_users: int, n_items: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """User features: two numeric columns and a 3-level category; items: one numeric and genres."""
    users = pd.DataFrame(
        {"a": rng.normal(size=n_users), "b": rng.normal(size=n_users), "g": rng.choice(["p", "q", "r"], n_users)},
        index=np.arange(n_users),
    )
    genres = ["|".join(g for g in ("A", "B") if rng.random() < 0.5) for _ in range(n_items)]
    items = pd.DataFrame({"y": rng.normal(size=n_items), "genres": genres}, index=np.arange(n_items))
    return users, items


def prior_draw(rng: np.random.Generator, spec: PMF, X: dict[str, np.ndarray], scale) -> dict:
    """Parameters from the model's prior (per-side, one variance per side, features on both sides)."""

    def inv_gamma(key):
        a, b = spec.hyper[key]
        return b / rng.gamma(a)

    K = spec.n_factors
    out = {}
    for side, name in (("user", "U"), ("item", "V")):
        v = np.array([inv_gamma("factor_var") for _ in range(K)]) if spec.per_factor_scales else inv_gamma("factor_var")
        mean = rng.normal(0, np.sqrt(v / FACTOR_MEAN_KAPPA), K)
        shape, rate = priors.FEATURE_PRECISION_PRIOR
        beta = rng.gamma(shape) / rate
        W = rng.normal(0, np.sqrt(v / beta), (X[side].shape[1], K))
        rows = mean + X[side] @ W + rng.normal(0, np.sqrt(v), (X[side].shape[0], K))
        out |= {f"sigma_factor_{side}": np.ravel(np.sqrt(v))[0], f"feature_precision_{side}": beta,
                f"feature_weight_{side}": W, name: rows}
    s_user, s_item = np.sqrt(inv_gamma("bias_var")), np.sqrt(inv_gamma("bias_var"))
    mu_mean, mu_sd = mu_prior(spec, scale)
    return out | {
        "sigma": np.sqrt(inv_gamma("sigma2")),
        "user_bias": rng.normal(0, s_user, X["user"].shape[0]),
        "item_bias": rng.normal(0, s_item, X["item"].shape[0]),
        "mu": rng.normal(mu_mean, mu_sd),
    }


#: the quantities `feature_sbc_ranks` ranks, in column order
SBC_NAMES = (
    "sigma", "sigma_factor_user", "feature_precision_user", "feature_precision_item",
    "user feature effect", "item feature effect", "eta rated", "eta unrated",
)


def _quantities(d: dict, xu: np.ndarray, zi: np.ndarray, pairs) -> np.ndarray:
    """The ranked quantities at one point: scalars, x_0^T W_U V_0, U_0 . W_V^T z_0, eta of two pairs."""
    eta = [d["mu"] + d["user_bias"][i] + d["item_bias"][j] + d["U"][i] @ d["V"][j] for i, j in pairs]
    return np.array([
        d["sigma"], np.ravel(d["sigma_factor_user"])[0], d["feature_precision_user"], d["feature_precision_item"],
        xu @ d["feature_weight_user"] @ d["V"][0], d["U"][0] @ (zi @ d["feature_weight_item"]), *eta,
    ])


def feature_sbc_ranks(n_reps: int, seed: int, tune: int = 100, thin: int = 3, draws: int = 99, spec: PMF = SPEC):
    """Ranks of the truths (`SBC_NAMES`; the first factor's sd) among ``draws`` posterior draws, one chain per data set.

    The sweeps run directly (`build_sweep`), from the sampler's own ``"map"`` start.
    """
    rng = np.random.default_rng(seed)
    n_users, n_items, scale = 15, 12, (1.0, 5.0)
    observed = rng.random((n_users, n_items)) < 0.5
    observed[np.arange(n_users), np.arange(n_users) % n_items] = True
    observed[np.arange(n_items) % n_users, np.arange(n_items)] = True
    user_idx, item_idx = np.nonzero(observed)
    pairs = [(user_idx[0], item_idx[0]), tuple(np.argwhere(~observed)[0])]
    frames = feature_frames(rng, n_users, n_items)
    feats = {
        "user": Features.from_frame(frames[0], "user"),
        "item": Features.from_frame(frames[1], "item", multi=["genres"]),
    }
    users, items = IdEncoder("user", np.arange(n_users)), IdEncoder("item", np.arange(n_items))
    X = {side: f.rows_for(enc) for (side, f), enc in zip(feats.items(), (users, items), strict=True)}
    ranks = np.empty((n_reps, len(SBC_NAMES)), dtype=np.int64)
    for rep in range(n_reps):
        truth = prior_draw(rng, spec, X, scale)
        eta = truth["mu"] + truth["user_bias"][:, None] + truth["item_bias"][None, :] + truth["U"] @ truth["V"].T
        rating = eta[user_idx, item_idx] + rng.normal(0, truth["sigma"], len(user_idx))
        data = RatingsData(user_idx, item_idx, rating, scale, users, items, feats["user"], feats["item"])
        problem = build_problem(spec, data)
        sweep = build_sweep(problem, overrelaxation=-0.8)
        chain = np.random.default_rng(int(rng.integers(2**31)))
        values = sbc_draws(sweep, problem, spec, data, chain, tune, draws, thin, len(SBC_NAMES),
                           lambda d: _quantities(d, X["user"][0], X["item"][0], pairs))
        ranks[rep] = np.sum(values < _quantities(truth, X["user"][0], X["item"][0], pairs), axis=0)
    return ranks, draws + 1


class NeverUpdatedWeights(priors.FeatureFactors):
    """Broken on purpose: W stays at its start (0); m and v are drawn as if it were right."""

    def _draw_side(self, state, side, gammas, rng):
        scaled = self._chain(state, side)[0]
        keep = scaled.copy()
        super()._draw_side(state, side, gammas, rng)
        scaled[:] = keep


class PrecisionWithoutBeta(priors.FeatureFactors):
    """Broken on purpose: (m, W) drawn with the weights' prior precision 1/v, not beta/v (beta still drawn)."""

    def _draw_side(self, state, side, gammas, rng):
        self._chain(state, side)[1][0] = 1.0  # the prior mean of beta, in place of the chain's beta
        super()._draw_side(state, side, gammas, rng)


# -- the layout ----------------------------------------------------------------------------
def _small_data(seed: int = 0, n_users: int = 12, n_items: int = 9):
    rng = np.random.default_rng(seed)
    frames = feature_frames(rng, n_users, n_items)
    observed = rng.random((n_users, n_items)) < 0.6
    u, i = np.nonzero(observed)
    frame = pd.DataFrame({"user": u, "item": i, "rating": rng.integers(1, 6, len(u)).astype(float)})
    data = RatingsData.from_dataframe(frame, "user", "item", "rating", scale=(1, 5))
    return data.with_features(frames[0], Features.from_frame(frames[1], "item", multi=["genres"]))


def test_layout_names_shapes_coords_and_stored_features():
    data = _small_data()
    names = param_names(SPEC, data)
    assert names[-4:] == ["feature_weight_user", "feature_precision_user", "feature_weight_item",
                          "feature_precision_item"]
    assert "feature_weight_user" not in param_names(SPEC)
    shapes = shapes_for(SPEC, data)
    assert shapes["feature_weight_user"][0] == (5, 2) and shapes["feature_weight_item"][0] == (3, 2)
    assert shapes["feature_precision_item"][0] == ()
    draws = {name: np.zeros((1, 2, *shape)) for name, (shape, _) in shapes.items()}
    tree = make_posterior(SPEC, data, draws)
    post = tree["posterior"]
    assert post["feature_weight_user"].dims == ("chain", "draw", "user_feature", "factor")
    assert post["user_feature"].values.tolist() == ["a", "b", "g=p", "g=q", "g=r"]
    assert post["item_feature"].values.tolist() == ["y", "genres=A", "genres=B"]
    back = features_of(tree, data.users, data.items)
    for side in ("user", "item"):
        np.testing.assert_array_equal(back[side].rows_for(data.users if side == "user" else data.items),
                                      data.feature_matrix(side))
        assert back[side].encoder == getattr(data, f"{side}_features").encoder
    del draws["feature_weight_item"]
    with pytest.raises(ValueError, match=r"the Gibbs sampler, NUTS and ADVI fit data with features"):
        make_posterior(SPEC, data, draws)


def test_features_need_the_per_side_prior():
    data = _small_data()
    for spec in (PMF(n_factors=2, factor_prior="shared"), PMF(n_factors=2, priors="fixed")):
        with pytest.raises(ValueError, match="factor_prior='per_side'"):
            build_sweep(build_problem(spec, data))


def test_one_side_with_features_and_the_draws_recorded():
    data = _small_data().with_features()  # both sides
    only_users = RatingsData(data.user_idx, data.item_idx, data.rating, data.scale, data.users, data.items,
                             data.user_features)
    problem = build_problem(SPEC, only_users)
    sweep = build_sweep(problem)
    rng = np.random.default_rng(3)
    state = initial_state(problem, SPEC, only_users, rng, "prior")
    variates = sweep.variates()
    for _ in range(5):
        sweep(state, variates, rng)
    out = sweep.draws(state)
    assert out["feature_weight_user"].shape == (5, 2) and "feature_weight_item" not in out
    assert np.all(np.isfinite(out["feature_weight_user"])) and out["feature_precision_user"] > 0
    # the row prior the user rows were drawn from: m + W^T x per row
    prior = sweep.recorders[0].prior.row_prior(state, "user")
    expected = state.pm_user[1:] + data.feature_matrix("user") @ out["feature_weight_user"]
    np.testing.assert_allclose(prior.mean[:, 1:], expected)
    np.testing.assert_array_equal(prior.mean[:, 0], 0.0)


# -- simulation-based calibration ---------------------------------------------------------------
def test_sbc_fast():
    """A tiny SBC (40 data sets, 29 draws): catches gross errors in the feature block.

    Family-wise false-alarm rate 8 x 1e-3 = 0.008 at worst for a correct sampler.
    """
    ranks, n_ranks = feature_sbc_ranks(n_reps=40, seed=7, tune=40, thin=2, draws=29)
    pvalues = uniformity_pvalues(ranks, n_ranks, n_bins=5)
    assert (pvalues > 1e-3).all(), dict(zip(SBC_NAMES, pvalues.round(4), strict=True))


def test_sbc_fast_fails_when_the_weights_never_move(monkeypatch):
    """The same tiny SBC rejects a block that never updates W (seed 7: min p = 3e-14 on beta_U)."""
    monkeypatch.setattr(priors, "FeatureFactors", NeverUpdatedWeights)
    ranks, n_ranks = feature_sbc_ranks(n_reps=40, seed=7, tune=40, thin=2, draws=29)
    pvalues = uniformity_pvalues(ranks, n_ranks, n_bins=5)
    assert pvalues.min() < 1e-6, dict(zip(SBC_NAMES, pvalues, strict=True))


@pytest.mark.slow
def test_sbc_feature_prior():
    """Talts et al. (2018) SBC of the feature prior: 200 data sets, 99 draws thinned by 3.

    Threshold 1e-3 per quantity (8 of them): family-wise false-alarm rate <= 0.008. Seed 2027:
    all p >= 0.013 (sigma 0.88, sigma_factor_user 0.20, beta_U 0.73, beta_V 0.57, feature
    effects 0.24 and 0.42, eta 0.050 and 0.014). The same run rejects a block that never
    updates W (min p = 1e-178, on beta_U) and one that draws (m, W) with the weights' prior
    precision 1/v in place of beta/v (p = 2e-34 on beta_U, 6e-10 on sigma_factor_user);
    the first is tested in the fast tier, the second below on 80 data sets. With
    ``per_factor_scales=True`` (checked by hand, same seed and size): all p >= 0.086.
    """
    ranks, n_ranks = feature_sbc_ranks(n_reps=200, seed=2027)
    pvalues = uniformity_pvalues(ranks, n_ranks)
    assert (pvalues > 1e-3).all(), dict(zip(SBC_NAMES, pvalues.round(4), strict=True))


@pytest.mark.slow
def test_sbc_fails_when_the_weights_ignore_beta(monkeypatch):
    """The SBC rejects (m, W) drawn with precision 1/v instead of beta/v (some p < 1e-6).

    Seed 2027, 80 data sets: p = 2e-12 on beta_V, 2e-6 on beta_U; the other quantities >= 0.014.
    """
    monkeypatch.setattr(priors, "FeatureFactors", PrecisionWithoutBeta)
    ranks, n_ranks = feature_sbc_ranks(n_reps=80, seed=2027)
    pvalues = uniformity_pvalues(ranks, n_ranks)
    assert pvalues.min() < 1e-6, dict(zip(SBC_NAMES, pvalues, strict=True))


# -- planted truth and cold start ---------------------------------------------------------------
N_USERS, N_ITEMS, N_COLD, N_COLD_ITEMS = 160, 120, 40, 30
#: true user-feature weights (features a, b, c; K = 2): c is noise, carried along to check it stays near 0
W_TRUE = np.array([[1.2, -0.8], [0.6, 1.0], [0.0, 0.0]])
#: true item-feature weights (d, genres=A, genres=B)
W_ITEM_TRUE = np.array([[0.8, -0.6], [0.7, 0.5], [-0.5, 0.6]])


@pytest.fixture(scope="module")
def planted():
    """Fit once for the planted-truth and cold-start tests (`planted_fit`)."""
    return planted_fit()


def planted_fit():
    """Factors driven by features (users: a, b; c is noise; items: d and genres).

    The last N_COLD users and N_COLD_ITEMS items have no training ratings: their ratings of
    (by) the others are the cold-start test pairs. Returns the fit with features, the true V
    of the training items, the test pairs of each side, the features, and the fit without.
    """
    from bayesmf.inference.gibbs import fit_gibbs

    rng = np.random.default_rng(11)
    n, m = N_USERS + N_COLD, N_ITEMS + N_COLD_ITEMS
    users = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.normal(size=n)})
    genres = [tuple(g for g in "AB" if rng.random() < 0.4) for _ in range(m)]
    items = pd.DataFrame({"d": rng.normal(size=m), "genres": genres})
    feats = {"user": Features.from_frame(users, "user"), "item": Features.from_frame(items, "item")}
    U = feats["user"].values @ W_TRUE + rng.normal(0, 0.3, (n, 2))
    V = feats["item"].values @ W_ITEM_TRUE + rng.normal(0, 0.5, (m, 2))
    eta = 3.0 + rng.normal(0, 0.3, m)[None, :] + U @ V.T
    u, i = np.nonzero(rng.random((n, m)) < 0.12)
    rating = eta[u, i] + rng.normal(0, 0.5, u.size)
    in_train = (u < N_USERS) & (i < N_ITEMS)
    frame = pd.DataFrame({"user": u[in_train], "item": i[in_train], "rating": rating[in_train]})
    plain = RatingsData.from_dataframe(frame, "user", "item", "rating", scale=(-20.0, 30.0))
    options = {"draws": 100, "tune": 100, "chains": 2, "progressbar": False, "random_seed": 5}
    result = fit_gibbs(SPEC, plain.with_features(feats["user"], feats["item"]), **options)
    tests = {}
    for side, sel in (("user", (u >= N_USERS) & (i < N_ITEMS)), ("item", (u < N_USERS) & (i >= N_ITEMS))):
        tests[side] = {"user": u[sel], "item": i[sel], "eta": eta[u[sel], i[sel]], "rating": rating[sel]}
    return result, V[:N_ITEMS], tests, feats, fit_gibbs(SPEC, plain, **options)


def test_planted_feature_effects_are_recovered_with_their_signs(planted):
    """W is identified only with V (rotations of the factors move both): its effects E = W V^T are.

    Informative features a, b: the posterior mean of every effect E_fj with |E_fj| > 0.3 has
    the truth's sign, and the means correlate with the truths above 0.95. Noise feature c: its
    99% intervals exclude 0 for at most 8 of the 120 items (under calibration 1.2 expected;
    P(>= 9) < 1e-4 for independent items). Seed 11.
    """
    result, V_true, _, _, _ = planted
    post = result.posterior
    W = post["feature_weight_user"].values.reshape(-1, 3, 2)
    V = post["V"].values.reshape(-1, N_ITEMS, 2).astype(float)
    effects = np.einsum("sfk,sjk->sfj", W, V)
    truth = W_TRUE @ V_true.T
    mean = effects.mean(axis=0)
    for f in (0, 1):
        big = np.abs(truth[f]) > 0.3
        assert big.sum() > 50
        np.testing.assert_array_equal(np.sign(mean[f, big]), np.sign(truth[f, big]))
        assert np.corrcoef(mean[f], truth[f])[0, 1] > 0.95
    low, high = np.quantile(effects[:, 2], [0.005, 0.995], axis=0)
    assert np.sum((low > 0) | (high < 0)) <= 8
    assert list(post["user_feature"].values) == ["a", "b", "c"]
    assert list(post["item_feature"].values) == ["d", "genres=A", "genres=B"]


def _raw(features: Features, ids: list) -> pd.DataFrame:
    """The raw frame of already encoded rows (numeric columns un-standardized, indicators back to tuples)."""
    out, k = {}, 0
    for code in features.encoder.columns:
        block = features.rows_for(ids)[:, k : k + len(code.names)]
        if code.kind == "numeric":
            out[code.name] = block[:, 0] * code.scale + code.center
        else:
            out[code.name] = [tuple(np.asarray(code.levels)[row > 0]) for row in block]
        k += len(code.names)
    return pd.DataFrame(out, index=ids)


def _predictive(result, folded, side, test, rng):
    """Mean score and predictive draws (sample, pair) of the test pairs, the new rows from ``folded``."""
    a, new = result.arrays(), folded.arrays()
    n_old = N_USERS if side == "user" else N_ITEMS
    if side == "user":
        rows, other = test["user"] - n_old, test["item"]
        F, b, G, c = new.U[:, n_old:], new.user_bias[:, n_old:], a.V, a.item_bias
    else:
        rows, other = test["item"] - n_old, test["user"]
        F, b, G, c = new.V[:, n_old:], new.item_bias[:, n_old:], a.U, a.user_bias
    eta = (a.mu[:, None] + b[:, rows] + c[:, other]
           + np.einsum("srk,srk->sr", F[:, rows].astype(float), G[:, other].astype(float)))
    return eta, eta + rng.normal(size=eta.shape) * a.sigma[:, None]


@pytest.mark.parametrize("side", ["user", "item"])
def test_cold_start_features_beat_the_population_prior(planted, side):
    """New users (items) with features and no ratings, folded in (`fold_in`/`fold_in_items` with ``features=``).

    Their predicted means (from m + W^T x) beat those of the population prior (the same
    model fitted without features, its new rows drawn from N(m, v)) in RMSE against the
    true scores by a wide margin (below 0.7 times), and their 90% predictive intervals
    cover the held-out ratings at a rate in [0.8, 0.97] (several hundred ratings,
    correlated within a row), as the population prior's do, while being narrower. Seed 11.
    """
    from bayesmf.fold_in import fold_in, fold_in_items

    result, _, tests, feats, plain = planted
    test = tests[side]
    rng = np.random.default_rng(2)
    n_old, n_new = (N_USERS, N_COLD) if side == "user" else (N_ITEMS, N_COLD_ITEMS)
    cold = list(range(n_old, n_old + n_new))
    raw = _raw(feats[side], cold)  # fold_in encodes it again, as the training features were
    fold = fold_in if side == "user" else fold_in_items
    folded, population = result, plain
    for new in cold:
        folded = fold(folded, {}, new, random_seed=rng, features=raw.loc[[new]])
        population = fold(population, {}, new, random_seed=rng)
    np.testing.assert_allclose(getattr(folded.train, f"{side}_features").rows_for(cold), feats[side].values[cold])
    eta_f, draws_f = _predictive(result, folded, side, test, rng)
    eta_p, draws_p = _predictive(plain, population, side, test, rng)
    rmse_f = np.sqrt(np.mean((eta_f.mean(axis=0) - test["eta"]) ** 2))
    rmse_p = np.sqrt(np.mean((eta_p.mean(axis=0) - test["eta"]) ** 2))
    assert rmse_f < 0.7 * rmse_p, (rmse_f, rmse_p)
    widths = []
    for draws in (draws_f, draws_p):
        low, high = np.quantile(draws, [0.05, 0.95], axis=0)
        coverage = np.mean((test["rating"] >= low) & (test["rating"] <= high))
        assert 0.8 <= coverage <= 0.97, (coverage, rmse_f, rmse_p)
        widths.append(np.mean(high - low))
    assert widths[0] < widths[1], widths
    with pytest.raises(ValueError, match=f"no {side} features"):
        fold(result, {}, 999)
    with pytest.raises(ValueError, match=f"without {side} features"):
        fold(plain, {}, 999, features=raw.loc[[cold[0]]])


def test_other_routes_refuse_features():
    """ALS (fixed priors) does not use features: it refuses them, naming the routes that do."""
    data = _small_data()
    with pytest.raises(ValueError, match=r"method='als' does not use features.*'gibbs', 'nuts' or 'advi'"):
        PMF(n_factors=2, priors="fixed").fit(data, method="als", progressbar=False)


@pytest.mark.parametrize("side", ["user", "item"])
def test_cold_start_predicted_directly_from_the_feature_prior(planted, side, monkeypatch):
    """`predict` of users (items) without ratings whose features came with the training data.

    They are unknown to the model but have features: `bayesmf.predictive.cold` centres their
    prior on m + W^T x. Their predicted means beat the population prior (the model without
    features) by a wide margin (RMSE against the true scores below 0.7 times), and their 90%
    intervals cover the held-out ratings at a rate in [0.8, 0.97] (several hundred ratings,
    correlated within a row). Broken variant (the features ignored: N(m, v), the spread
    around m + W^T x, is too narrow): coverage below 0.8. Seed 11.
    """
    import bayesmf.predictive.components as components

    result, _, tests, _, plain = planted
    test = tests[side]
    pairs = pd.DataFrame({"user": test["user"], "item": test["item"]})

    def scores(fit):
        out = fit.predict(pairs, prob=0.9, random_seed=1)
        assert out[f"new_{side}"].all()
        coverage = np.mean((test["rating"] >= out["lower"]) & (test["rating"] <= out["upper"]))
        return np.sqrt(np.mean((out["mean"] - test["eta"]) ** 2)), coverage

    rmse_f, coverage_f = scores(result)
    rmse_p, _ = scores(plain)
    assert rmse_f < 0.7 * rmse_p, (rmse_f, rmse_p)
    assert 0.8 <= coverage_f <= 0.97, coverage_f
    monkeypatch.setattr(components, "feature_mean", lambda view, side, x, s: np.zeros((len(s), view.n_factors)))
    _, coverage_broken = scores(result)
    assert coverage_broken < 0.8, coverage_broken
