"""Implicit sets in the Gibbs sampler (Bayesian SVD++ and the "flipped" form): `ImplicitSetFactors`.

U_i ~ N(m_U + |N(i)|^(-1/2) sum_{j in N(i)} y_j, v_U), y_j ~ N(0, v_U / gamma_U), gamma_U ~ Gamma;
items alike with their raters. Simulation-based calibration (shown to fail on broken
variants), planted truth (the rated sets drive the factors), the two protocols, the layout
and bad input.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from bayesmf.data import IdEncoder, RatingsData
from bayesmf.implicit_sets import implicit_design, protocol_of, with_implicit_pairs
from bayesmf.inference.gibbs import implicit_sets as block
from bayesmf.inference.gibbs.problem import build_problem
from bayesmf.inference.gibbs.start import initial_state
from bayesmf.inference.gibbs.sweep import build_sweep
from bayesmf.link import mu_prior
from bayesmf.posterior import make_posterior, param_names, shapes_for
from bayesmf.spec import FACTOR_MEAN_KAPPA, PMF
from tests.sbc_chain import sbc_draws, uniformity_pvalues

SPEC = PMF(n_factors=2, factor_prior="per_side", implicit_sets="both")
#: the SBC's spec: the factors' prior scale near the noise's (default hyperpriors: 0.3 vs 0.9), so
#: that ratings inform U, V and through them Y (without it the SBC has little power against a
#: wrongly scaled design)
SBC_SPEC = dataclasses.replace(SPEC, hyperpriors={"sigma2": (2.0, 0.05), "factor_var": (2.0, 1.0)})


# -- simulation-based calibration ---------------------------------------------------------------
def prior_draw(rng: np.random.Generator, spec: PMF, X: dict, scale) -> dict:
    """Parameters from the model's prior (per-side, implicit sets on ``spec``'s sides; one variance per factor
    with ``per_factor_scales``, else one per side)."""

    def inv_gamma(key):
        a, b = spec.hyper[key]
        return b / rng.gamma(a)

    K = spec.n_factors
    out = {}
    for side, name in (("user", "U"), ("item", "V")):
        v = np.array([inv_gamma("factor_var") for _ in range(K)]) if spec.per_factor_scales else inv_gamma("factor_var")
        mean = rng.normal(0, np.sqrt(v / FACTOR_MEAN_KAPPA), K)
        rows = mean + rng.normal(0, np.sqrt(v), (X[side].shape[0], K))
        if side in spec.implicit_sides:
            shape, rate = block.IMPLICIT_PRECISION_PRIOR
            gamma = rng.gamma(shape) / rate
            Y = rng.normal(0, np.sqrt(v / gamma), (X[side].shape[1], K))
            rows = rows + X[side] @ Y
            out |= {f"implicit_precision_{side}": gamma, f"implicit_weight_{side}": Y}
        out |= {f"sigma_factor_{side}": np.sqrt(v), name: rows}
    mu_mean, mu_sd = mu_prior(spec, scale)
    n_users, n_items = X["user"].shape
    return out | {
        "sigma": np.sqrt(inv_gamma("sigma2")),
        "user_bias": rng.normal(0, np.sqrt(inv_gamma("bias_var")), n_users),
        "item_bias": rng.normal(0, np.sqrt(inv_gamma("bias_var")), n_items),
        "mu": rng.normal(mu_mean, mu_sd),
    }


def sbc_names(spec: PMF) -> list[str]:
    """The quantities `sbc_ranks` ranks, in column order: scalars, implicit effects, eta of two pairs."""
    sides = spec.implicit_sides
    return ["sigma", "sigma_factor_user", *(f"gamma_{s}" for s in sides), *(f"{s} implicit effect" for s in sides),
            "eta rated", "eta unrated"]


def _quantities(d: dict, X: dict, pairs, sides) -> np.ndarray:
    """Scalars, (X_0 Y_U) . V_0 and U_0 . (X_0 Y_V) (the implicit parts of a score), eta of two pairs."""
    eta = [d["mu"] + d["user_bias"][i] + d["item_bias"][j] + d["U"][i] @ d["V"][j] for i, j in pairs]
    effects = {"user": lambda: (X["user"][0] @ d["implicit_weight_user"]) @ d["V"][0],
               "item": lambda: d["U"][0] @ (X["item"][0] @ d["implicit_weight_item"])}
    return np.array([
        d["sigma"], np.ravel(d["sigma_factor_user"])[0], *(d[f"implicit_precision_{s}"] for s in sides),
        *(effects[s]() for s in sides), *eta,
    ])


def sbc_ranks(n_reps: int, seed: int, tune: int = 60, thin: int = 3, draws: int = 59, spec: PMF = SBC_SPEC,
              shape: tuple[int, int] = (30, 20)):
    """Ranks of the truths (`sbc_names`) among ``draws`` posterior draws, one chain per data set (strict sets).

    The sweeps run directly (`build_sweep`), from the sampler's own ``"map"`` start.
    """
    rng = np.random.default_rng(seed)
    (n_users, n_items), scale = shape, (1.0, 5.0)
    # set sizes from 1-2 to nearly all (user 0 and item 0 the largest): the |N|^(-1/2) scaling matters
    density = np.sqrt(np.linspace(0.95, 0.1, n_users)[:, None] * np.linspace(0.95, 0.1, n_items)[None, :])
    observed = rng.random((n_users, n_items)) < density
    observed[np.arange(n_users), np.arange(n_users) % n_items] = True
    observed[np.arange(n_items) % n_users, np.arange(n_items)] = True
    user_idx, item_idx = np.nonzero(observed)
    pairs = [(user_idx[0], item_idx[0]), tuple(np.argwhere(~observed)[0])]
    users, items = IdEncoder("user", np.arange(n_users)), IdEncoder("item", np.arange(n_items))
    shell = RatingsData(user_idx, item_idx, np.ones(user_idx.size), scale, users, items)
    X = {side: implicit_design(shell, side).toarray() for side in ("user", "item")}
    sides = spec.implicit_sides
    ranks = np.empty((n_reps, len(sbc_names(spec))), dtype=np.int64)
    for rep in range(n_reps):
        truth = prior_draw(rng, spec, X, scale)
        eta = truth["mu"] + truth["user_bias"][:, None] + truth["item_bias"][None, :] + truth["U"] @ truth["V"].T
        rating = eta[user_idx, item_idx] + rng.normal(0, truth["sigma"], len(user_idx))
        data = RatingsData(user_idx, item_idx, rating, scale, users, items)
        problem = build_problem(spec, data)
        sweep = build_sweep(problem, overrelaxation=-0.8)
        chain = np.random.default_rng(int(rng.integers(2**31)))
        values = sbc_draws(sweep, problem, spec, data, chain, tune, draws, thin, ranks.shape[1],
                           lambda drawn: _quantities(drawn, X, pairs, sides))
        ranks[rep] = np.sum(values < _quantities(truth, X, pairs, sides), axis=0)
    return ranks, draws + 1


class NeverUpdatedY(block.ImplicitSetFactors):
    """Broken on purpose: Y stays at its start (0); (m, v) and gamma are drawn as if it were right.

    (With `ImplicitShift` turned off too: it moves Y as well.)
    """

    def _draw_side(self, state, side, gammas, rng):
        if side not in self.sets:
            return super()._draw_side(state, side, gammas, rng)
        scaled = self._implicit(state, side)[0]
        keep = scaled.copy()
        super()._draw_side(state, side, gammas, rng)
        scaled[:] = keep


class WrongScaling(block.ImplicitSetFactors):
    """Broken on purpose: the sampler's design is |N(i)|^-1 1[j in N(i)] (the simulation's |N(i)|^-1/2)."""

    def __init__(self, problem):
        squared = []
        for X in problem.implicit_sets:
            if X is not None:
                X = X.copy()
                X.data = X.data**2
            squared.append(X)
        super().__init__(dataclasses.replace(problem, implicit_sets=tuple(squared)))


FAST = {"n_reps": 40, "seed": 7, "tune": 40, "thin": 2, "draws": 29}


def test_sbc_fast():
    """A tiny SBC (40 data sets, 29 draws): catches gross errors of the implicit-set block.

    Family-wise false-alarm rate 8 x 1e-3 = 0.008 at worst for a correct sampler. Seed 7: all p >= 0.1 (sigma_factor_user).
    """
    ranks, n_ranks = sbc_ranks(**FAST)
    pvalues = uniformity_pvalues(ranks, n_ranks, n_bins=5)
    assert (pvalues > 1e-3).all(), dict(zip(sbc_names(SBC_SPEC), pvalues.round(4), strict=True))


@pytest.mark.parametrize("broken", [NeverUpdatedY, WrongScaling], ids=["y_never_moves", "wrong_scaling"])
def test_sbc_fast_fails_on_a_broken_block(monkeypatch, broken):
    """The same tiny SBC rejects a block that never updates Y, or whose design is scaled by |N(i)|^-1 (p < 1e-6).

    Seed 7: Y never updated (nor shifted), p = 3e-12 on both implicit effects and 2e-9 on gamma_U;
    |N(i)|^-1, p = 4e-10 on gamma_U (the effects, computed with the true design, 0.027 and 0.6).
    """
    monkeypatch.setattr(block, "ImplicitSetFactors", broken)
    if broken is NeverUpdatedY:
        monkeypatch.setattr(block, "implicit_shifts", lambda *args: [])
    ranks, n_ranks = sbc_ranks(**FAST)
    pvalues = uniformity_pvalues(ranks, n_ranks, n_bins=5)
    assert pvalues.min() < 1e-6, dict(zip(sbc_names(SBC_SPEC), pvalues, strict=True))


@pytest.mark.slow
def test_sbc_implicit_sets():
    """Talts et al. (2018) SBC of the implicit-set block on both sides: 100 data sets, 59 draws thinned by 3.

    Threshold 1e-3 per quantity (8 of them): family-wise false-alarm rate <= 0.008. Seed 2028:
    all p >= 0.15 (eta unrated). Other seeds, by hand: 2029 all p >= 0.006; 2030 with 250 data
    sets all p >= 0.086; 2027 p = 4e-4 on eta rated (histogram irregular, not U-shaped; the
    others >= 0.12), the one low value of the four runs. Before `ImplicitShift` was added, seed
    2027 rejected the |N(i)|^-1 design with p < 1e-6 on gamma_U, gamma_V and 5e-6 on
    sigma_factor_user. With ``per_factor_scales=True`` (by hand, seed 2028): all p >= 0.16.
    """
    ranks, n_ranks = sbc_ranks(n_reps=100, seed=2028)
    pvalues = uniformity_pvalues(ranks, n_ranks)
    assert (pvalues > 1e-3).all(), dict(zip(sbc_names(SBC_SPEC), pvalues.round(4), strict=True))


# -- planted truth ------------------------------------------------------------------------------
def planted_frame(seed: int = 3) -> pd.DataFrame:
    """SVD++'s own model: U_i = |N(i)|^(-1/2) sum_{j in N(i)} y_j + noise, the sets N(i) chosen by group.

    Three groups of items; each user picks its items mostly (90%) from its own group, 4 of
    them (half the users) or 40. A quarter of each user's pairs (at least 1) is held out;
    N(i) (strict) is the rest. Ratings: 3 + U_i . V_j + N(0, 1). Columns: user, item,
    rating, test, eta (the true score).
    """
    rng = np.random.default_rng(seed)
    n_users, n_items, n_groups = 300, 120, 3
    centers = np.array([[1.0, 0.0], [-0.5, 0.87], [-0.5, -0.87]])
    item_group = rng.integers(n_groups, size=n_items)
    Y = 0.35 * centers[item_group] + rng.normal(0, 0.1, (n_items, 2))
    V = centers[item_group] + rng.normal(0, 0.3, (n_items, 2))
    user_group = rng.integers(n_groups, size=n_users)
    n_rated = np.where(np.arange(n_users) % 2 == 0, 4, 40)
    U = np.zeros((n_users, 2))
    sets = []
    for i in range(n_users):
        weight = np.where(item_group == user_group[i], 0.9, 0.05)
        items = rng.choice(n_items, size=n_rated[i], replace=False, p=weight / weight.sum())
        n_test = max(1, n_rated[i] // 4)
        U[i] = Y[items[n_test:]].sum(axis=0) / np.sqrt(n_rated[i] - n_test) + rng.normal(0, 0.2, 2)
        sets.append((items, n_test))
    eta = 3.0 + U @ V.T
    rows = [(i, j, eta[i, j] + rng.normal(0, 1.0), k < n_test) for i, (items, n_test) in enumerate(sets)
            for k, j in enumerate(items)]
    frame = pd.DataFrame(rows, columns=["user", "item", "rating", "test"])
    return frame.assign(eta=eta[frame["user"], frame["item"]])


def test_planted_svdpp_beats_pmf_and_most_for_users_with_few_ratings():
    """Held-out RMSE against the true scores: SVD++ (strict) below 0.9 times plain per-side PMF overall,
    and its gain larger for the users with 3 training ratings than for those with 30, in difference and in ratio.

    Seed 3 (checked by hand on seeds 3-5): overall 0.283 vs 0.364; 3 ratings 0.308 vs 0.449
    (gap 0.141, ratio 0.69); 30 ratings 0.281 vs 0.355 (gap 0.074, ratio 0.79). When the
    sets' effect does not follow |N(i)|^(-1/2) (U_i the group centre whatever the set size),
    SVD++ does worse than PMF on the users with few ratings: the gain depends on the model.
    """
    from bayesmf.inference.gibbs import fit_gibbs

    frame = planted_frame()
    train, test = frame[~frame["test"]], frame[frame["test"]]
    data = RatingsData.from_dataframe(train, "user", "item", "rating", scale=(-10.0, 15.0))
    few = train.groupby("user").size().reindex(test["user"]).to_numpy() <= 3
    options = {"draws": 100, "tune": 100, "chains": 1, "progressbar": False, "random_seed": 1}
    rmse = {}
    for sets in ("none", "user"):
        fit = fit_gibbs(dataclasses.replace(SPEC, implicit_sets=sets), data, **options)
        err = (fit.predict(test[["user", "item"]])["mean"].to_numpy() - test["eta"].to_numpy()) ** 2
        rmse[sets] = np.sqrt([err.mean(), err[few].mean(), err[~few].mean()])
    plain, svdpp = rmse["none"], rmse["user"]
    assert svdpp[0] < 0.9 * plain[0], rmse
    assert plain[1] - svdpp[1] > plain[2] - svdpp[2], rmse
    assert svdpp[1] / plain[1] < svdpp[2] / plain[2], rmse


# -- protocols, layout, combinations ----------------------------------------------------------------
def _tiny(seed: int = 0, n_users: int = 12, n_items: int = 9) -> tuple[RatingsData, pd.DataFrame]:
    """Small ratings and a frame of held-out pairs (some of them new pairs of known ids)."""
    rng = np.random.default_rng(seed)
    u, i = np.nonzero(rng.random((n_users, n_items)) < 0.5)
    frame = pd.DataFrame({"user": u, "item": i, "rating": rng.integers(1, 6, u.size).astype(float)})
    test = frame.sample(frac=0.25, random_state=1)
    data = RatingsData.from_dataframe(frame.drop(test.index), "user", "item", "rating", scale=(1, 5))
    return data, test[test["user"].isin(data.users.classes) & test["item"].isin(data.items.classes)]


def test_strict_and_transductive_sets_differ_and_the_fit_says_which():
    data, test = _tiny()
    trans = with_implicit_pairs(data, test)
    assert protocol_of(data) == "strict" and protocol_of(trans) == "transductive"
    for side in ("user", "item"):
        strict_X, trans_X = implicit_design(data, side), implicit_design(trans, side)
        n_strict, n_trans = np.diff(strict_X.indptr), np.diff(trans_X.indptr)
        assert np.all(n_trans >= n_strict) and n_trans.sum() == n_strict.sum() + len(test)
        for X, n in ((strict_X, n_strict), (trans_X, n_trans)):  # rows |N(i)|^(-1/2), squares summing to 1
            np.testing.assert_allclose(X.multiply(X).sum(axis=1).A1, (n > 0).astype(float))
    rows = np.asarray(implicit_design(trans, "user")[data.users.to_index([test["user"].iloc[0]])[0]].indices)
    assert data.items.to_index([test["item"].iloc[0]])[0] in rows
    # a rated pair given again counts once
    again = with_implicit_pairs(data, data.to_dataframe().head(3))
    np.testing.assert_array_equal(implicit_design(again, "user").indptr, implicit_design(data, "user").indptr)
    from bayesmf.inference.gibbs import fit_gibbs

    for d, protocol in ((data, "strict"), (trans, "transductive")):
        fit = fit_gibbs(SPEC, d, draws=4, tune=4, chains=1, progressbar=False, random_seed=0)
        assert fit.posterior.attrs["implicit_protocol"] == protocol
        assert fit.posterior.attrs["implicit_sets"] == "both"
        assert ("implicit_user_idx" in fit.idata["constant_data"]) == (protocol == "transductive")
        assert (fit.info["implicit_sets"], fit.info["implicit_protocol"]) == ("both", protocol)


def test_other_routes_and_fold_in_refuse_implicit_sets_by_name():
    from bayesmf.inference import fit as fit_route
    from bayesmf.inference.gibbs import fit_gibbs

    data, _ = _tiny()
    for method in ("nuts", "advi", "map", "als", "sgd"):
        with pytest.raises(ValueError, match=rf"method='{method}' does not fit implicit_sets='both'"):
            fit_route(SPEC, data, method=method)
    fit = fit_gibbs(SPEC, data, draws=4, tune=4, chains=1, progressbar=False, random_seed=0)
    with pytest.raises(ValueError, match=r"fold_in is not available .* implicit_sets='both'"):
        fit.fold_in({}, user="new")


def test_layout_names_shapes_and_float32():
    data, _ = _tiny()
    names = param_names(SPEC, data)
    assert names[-4:] == ["implicit_weight_user", "implicit_precision_user", "implicit_weight_item",
                          "implicit_precision_item"]
    assert not [n for n in param_names(dataclasses.replace(SPEC, implicit_sets="none")) if "implicit" in n]
    shapes = shapes_for(SPEC, data)
    assert shapes["implicit_weight_user"] == ((data.n_items, 2), np.dtype(np.float32))
    assert shapes["implicit_weight_item"] == ((data.n_users, 2), np.dtype(np.float32))
    assert shapes["implicit_precision_item"][0] == ()
    draws = {name: np.zeros((1, 2, *shape)) for name, (shape, _) in shapes.items()}
    post = make_posterior(SPEC, data, draws)["posterior"]
    assert post["implicit_weight_user"].dims == ("chain", "draw", "item", "factor")
    assert post["implicit_weight_item"].dtype == np.float32


def test_row_prior_holds_the_implicit_term_with_features():
    """With features and sets on the user side: the rows' prior mean is m + W^T x_i + |N(i)|^(-1/2) sum y_j."""
    data, _ = _tiny()
    users = pd.DataFrame({"a": np.linspace(-1, 1, data.n_users)}, index=data.users.classes)
    featured = data.with_features(users)
    spec = dataclasses.replace(SPEC, implicit_sets="user")
    problem = build_problem(spec, featured)
    sweep = build_sweep(problem)
    rng = np.random.default_rng(3)
    state = initial_state(problem, spec, featured, rng, "prior")
    variates = sweep.variates()
    for _ in range(5):
        sweep(state, variates, rng)
    out = sweep.draws(state)
    assert {"feature_weight_user", "implicit_weight_user", "implicit_precision_user"} <= set(out)
    assert "implicit_weight_item" not in out and "feature_weight_item" not in out
    prior = sweep.recorders[0].prior.row_prior(state, "user")
    expected = (state.pm_user[1:] + featured.feature_matrix("user") @ out["feature_weight_user"]
                + implicit_design(featured, "user") @ out["implicit_weight_user"])
    np.testing.assert_allclose(prior.mean[:, 1:], expected)
    assert np.any(out["implicit_weight_user"] != 0)


# -- bad input --------------------------------------------------------------------------------------
def test_bad_values_and_combinations_are_named():
    with pytest.raises(ValueError, match="implicit_sets='users' is not valid"):
        PMF(factor_prior="per_side", implicit_sets="users")
    with pytest.raises(ValueError, match="factor_prior='per_side'"):
        PMF(factor_prior="shared", implicit_sets="user")
    assert PMF(implicit_sets="user").factor_prior == "per_side"  # the default chooses the prior they need
    with pytest.raises(ValueError, match="likelihood='implicit'"):
        PMF(factor_prior="per_side", likelihood="implicit", implicit_sets="item")
    data, test = _tiny()
    for method in ("nuts", "map", "als"):
        with pytest.raises(ValueError, match="Gibbs sampler only"):
            SPEC.fit(data, method=method)
    with pytest.raises(ValueError, match="Gibbs sampler only"):
        SPEC.build(data)
    with pytest.raises(ValueError, match=r"unknown to the training data"):
        with_implicit_pairs(data, pd.DataFrame({"user": [999], "item": [0]}))
    with pytest.raises(ValueError, match=r"lacks the column\(s\) \['item'\]"):
        with_implicit_pairs(data, test.rename(columns={"item": "movie"}))
    with pytest.raises(TypeError, match="pandas DataFrame"):
        with_implicit_pairs(data, test.to_numpy())
    with pytest.raises(ValueError, match="side must be"):
        implicit_design(data, "users")
    problem = dataclasses.replace(build_problem(SPEC, data), per_side=False)
    with pytest.raises(ValueError, match="factor_prior='per_side'"):
        block.prior_with_sets(problem)
