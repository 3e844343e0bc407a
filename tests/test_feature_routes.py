"""The feature prior in the PyMC model: NUTS and ADVI fit data with side information.

The PyMC model (`bayesmf._model_priors._feature_mean`) declares the Gibbs sampler's prior
(`bayesmf.inference.gibbs.priors.FeatureFactors`): U_ik ~ N(m_k + x_i^T W_k, v_k),
W_k | v_k, beta ~ N(0, (v_k / beta) I), beta ~ Gamma. Checked here: its log density against
the formula by hand (and a broken variant caught), the layout of every PyMC route, the
refusals, and the agreement of Gibbs and NUTS on one small simulated problem.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytensor
import pytest
from scipy import stats

import bayesmf._model_priors as model_priors
from bayesmf.data import RatingsData
from bayesmf.diagnostics import ConvergenceWarning
from bayesmf.features import Features
from bayesmf.model import build_model
from bayesmf.posterior import param_names
from bayesmf.spec import FEATURE_PRECISION_PRIOR, PMF

SPEC = PMF(n_factors=2, factor_prior="per_side")


def featured_data(seed: int = 0, n_users: int = 12, n_items: int = 9, K: int = 2, density: float = 0.6,
                  noise: float = 0.5, likelihood: str = "normal") -> RatingsData:
    """Ratings from a planted feature model; users: 2 numeric columns and a category, items: 1 numeric and genres."""
    rng = np.random.default_rng(seed)
    users = pd.DataFrame({"a": rng.normal(size=n_users), "b": rng.normal(size=n_users),
                          "g": rng.choice(["p", "q", "r"], n_users)}, index=np.arange(n_users))
    genres = ["|".join(g for g in ("A", "B") if rng.random() < 0.5) for _ in range(n_items)]
    items = pd.DataFrame({"y": rng.normal(size=n_items), "genres": genres}, index=np.arange(n_items))
    fu = Features.from_frame(users, "user")
    fi = Features.from_frame(items, "item", multi=["genres"])
    X, Z = fu.values, fi.values
    U = 1.0 + X @ rng.normal(0, 0.5, (X.shape[1], K)) + rng.normal(0, 0.3, (n_users, K))
    V = 1.0 + Z @ rng.normal(0, 0.5, (Z.shape[1], K)) + rng.normal(0, 0.3, (n_items, K))
    u, i = np.nonzero(rng.random((n_users, n_items)) < density)
    eta = (U[u] * V[i]).sum(axis=1)
    if likelihood == "bernoulli":
        rating, scale = (eta - eta.mean() + rng.normal(size=len(u)) > 0).astype(float), (0.0, 1.0)
    else:
        rating = 3.0 + eta - eta.mean() + rng.normal(0, noise, len(u))
        scale = (float(np.floor(rating.min())), float(np.ceil(rating.max())))
        if likelihood == "ordinal":
            rating, scale = np.clip(np.round(rating), 1, 5), (1.0, 5.0)
    frame = pd.DataFrame({"user": u, "item": i, "rating": rating})
    data = RatingsData.from_dataframe(frame, "user", "item", "rating", scale=scale)
    return data.with_features(fu, fi)


# -- the model's log density against the formula ------------------------------------------------
def _prior_gap(spec: PMF, data: RatingsData, seed: int) -> float:
    """Largest |PyMC - by hand| over 3 random points of the log densities of U, V, W and beta."""
    model = build_model(spec, data)
    rng = np.random.default_rng(seed)
    names = [f"{kind}_{side}" for side in ("user", "item") for kind in ("feature_weight", "feature_precision")]
    terms = [model[name] for name in ("U", "V", *names)]
    inputs = model.value_vars
    fn = pytensor.function(inputs, [model.logp(vars=[t], jacobian=False) for t in terms], on_unused_input="ignore")
    shape, rate = FEATURE_PRECISION_PRIOR
    gap = 0.0
    for _ in range(3):
        point = {k: np.asarray(v, dtype=np.float64) for k, v in model.initial_point().items()}
        for name in point:
            point[name] = rng.normal(0, 0.7, point[name].shape)  # log-scale values for the positive ones
        got = fn(*(point[v.name] for v in inputs))
        value = {name.removesuffix("_log__"): np.exp(v) if name.endswith("_log__") else v for name, v in point.items()}
        want = []
        for side, rows in (("user", "U"), ("item", "V")):
            v = value[f"factor_var_{side}"]
            beta = value[f"feature_precision_{side}"]
            W = value[f"feature_weight_{side}"]
            mean = value[f"factor_mean_{side}"] + data.feature_matrix(side) @ W
            want += [stats.norm.logpdf(value[rows], mean, np.sqrt(v)).sum(),
                     stats.norm.logpdf(W, 0.0, np.sqrt(v / beta)).sum(),
                     stats.gamma.logpdf(beta, shape, scale=1.0 / rate)]
        want = [want[0], want[3], want[1], want[2], want[4], want[5]]  # U, V, W_u, beta_u, W_v, beta_v
        gap = max(gap, float(np.max(np.abs(np.asarray(got) - np.asarray(want)))))
    return gap


@pytest.mark.parametrize("per_factor", [False, True])
def test_model_prior_is_the_gibbs_formula(per_factor):
    """log p(U | m, W, v), log p(W | v, beta), log p(beta) of the PyMC model equal the formula by hand."""
    spec = PMF(n_factors=2, factor_prior="per_side", per_factor_scales=per_factor)
    assert _prior_gap(spec, featured_data(), seed=1) < 1e-8


def test_prior_check_catches_weights_without_the_factor_scale(monkeypatch):
    """A broken model whose weights' sd lacks sqrt(v) (W ~ N(0, 1/beta)) fails the check."""
    import pymc as pm
    import pytensor.tensor as pt

    def broken(side, X, sd, mean):
        beta = pm.Gamma(f"feature_precision_{side}", alpha=1.0, beta=1.0)
        W = pm.Normal(f"feature_weight_{side}", 0.0, 1.0 / pt.sqrt(beta), dims=(f"{side}_feature", "factor"))
        return mean + pt.dot(pt.as_tensor(X), W)

    monkeypatch.setattr(model_priors, "_feature_mean", broken)
    assert _prior_gap(SPEC, featured_data(), seed=1) > 1e-2


def test_layout_names_dims_and_one_side():
    data = featured_data()
    model = build_model(SPEC, data)
    assert model.named_vars_to_dims["feature_weight_user"] == ("user_feature", "factor")
    assert model.named_vars_to_dims["feature_weight_item"] == ("item_feature", "factor")
    assert list(model.coords["user_feature"]) == list(data.user_features.names)
    only_items = RatingsData(data.user_idx, data.item_idx, data.rating, data.scale, data.users, data.items,
                             None, data.item_features)
    names = set(build_model(SPEC, only_items).named_vars)
    assert "feature_weight_item" in names and "feature_weight_user" not in names
    assert "feature_weight_user" not in build_model(SPEC, data.without_features()).named_vars


@pytest.mark.parametrize("likelihood", ["ordinal", "bernoulli"])
def test_ordinal_and_binary_models_build_with_features(likelihood):
    data = featured_data(likelihood=likelihood)
    spec = PMF(n_factors=2, factor_prior="per_side", likelihood=likelihood, link="probit")
    model = build_model(spec, data)
    assert {"feature_weight_user", "feature_precision_item"} <= set(model.named_vars)
    assert model.named_vars_to_dims["feature_weight_item"] == ("item_feature", "factor")


# -- bad input ----------------------------------------------------------------------------------
def test_features_refused_without_the_per_side_prior():
    data = featured_data()
    for method in ("nuts", "advi"):
        with pytest.raises(ValueError, match=r"per-side prior they extend.*factor_prior='shared'"):
            PMF(n_factors=2, factor_prior="shared").fit(data, method=method, progressbar=False)
    with pytest.raises(ValueError, match="per-side prior"):
        model_priors.latent_variables(PMF(n_factors=2, factor_prior="shared"), data.scale, 3.0, {"user": data.feature_matrix("user")})
    for method in ("map", "als", "sgd"):  # fixed priors only: no feature prior to fit
        with pytest.raises(ValueError, match=f"method='{method}' does not use features"):
            PMF(n_factors=2, priors="fixed").fit(data, method=method, progressbar=False)


# -- the PyMC routes return the layout ----------------------------------------------------------
@pytest.mark.slow
def test_advi_fits_features_into_the_layout():
    data = featured_data()
    fit = SPEC.fit(data, method="advi", n=300, draws=20, random_seed=1, progressbar=False)
    post = fit.idata["posterior"]
    assert list(post.data_vars) == param_names(SPEC, data)
    assert post["feature_weight_user"].shape == (1, 20, 5, 2)
    assert post["feature_weight_user"].dims[2:] == ("user_feature", "factor")
    assert np.all(np.isfinite(post["feature_weight_item"].values)) and np.all(post["feature_precision_user"] > 0)
    assert "user_features" in fit.idata["constant_data"]
    pred = fit.predict(pd.DataFrame({"user": [0, 1], "item": [0, 1]}), random_seed=1)
    assert np.all(np.isfinite(pred["mean"])) and np.all(pred["sd"] > 0)


def test_map_refuses_features_and_names_the_routes_that_fit_them():
    """MAP fits fixed priors only (the joint mode of the hierarchical feature prior is degenerate)."""
    with pytest.raises(ValueError, match="'gibbs', 'nuts' or 'advi'"):
        PMF(n_factors=2, priors="fixed").fit(featured_data(), method="map", progressbar=False)


# -- Gibbs against NUTS -------------------------------------------------------------------------
#: family-wise false-alarm rate of the agreement test (two-sided, Bonferroni over every bound)
FALSE_ALARM = 1e-4


def _agreement_quantities(post, data: RatingsData) -> dict[str, np.ndarray]:
    """Per chain and draw: predictions at 5 pairs, the feature weights (sign-aligned), the scales.

    Rank 1: (U, V, m, W) and (-U, -V, -m, -W) are one model, so each side's weights are
    multiplied by the sign of the other side's factor sum (invariant under the flip).
    """
    def arr(name):
        return np.asarray(post[name].values, dtype=np.float64)

    U, V = arr("U")[..., 0], arr("V")[..., 0]
    users, items = np.array([0, 3, 7, 11, 5]), np.array([0, 4, 8, 2, 6])
    pred = arr("mu")[..., None] + arr("user_bias")[..., users] + arr("item_bias")[..., items] + U[..., users] * V[..., items]
    out = {f"pred {u},{i}": pred[..., n] for n, (u, i) in enumerate(zip(users, items, strict=True))}
    for side, other in (("user", V), ("item", U)):
        W = arr(f"feature_weight_{side}")[..., 0] * np.sign(other.sum(axis=-1))[..., None]
        out |= {f"W_{side}[{f}]": W[..., f] for f in range(W.shape[-1])}
        out[f"sigma_factor_{side}"] = arr(f"sigma_factor_{side}")
        out[f"log feature_precision_{side}"] = np.log(arr(f"feature_precision_{side}"))
    out["sigma"] = arr("sigma")
    return out


def _disagreement(q_nuts: dict[str, np.ndarray], q_gibbs: dict[str, np.ndarray]) -> dict[str, tuple[float, float]]:
    """Per quantity whose mean or sd is out of bounds: (mean gap, sd gap) over the bound (see the test)."""
    import arviz as az

    z = stats.norm.isf(FALSE_ALARM / (2 * 2 * len(q_nuts)))
    bad = {}
    for name, a in q_nuts.items():
        b = q_gibbs[name]
        tol_mean = z * np.hypot(az.mcse(a), az.mcse(b))
        tol_sd = z * np.hypot(az.mcse(a, method="sd"), az.mcse(b, method="sd"))
        gaps = (abs(a.mean() - b.mean()) / tol_mean, abs(a.std() - b.std()) / tol_sd)
        if max(gaps) > 1.0:
            bad[name] = (round(float(gaps[0]), 2), round(float(gaps[1]), 2))
    return bad


AGREE_SPEC = PMF(n_factors=1, factor_prior="per_side")


@pytest.fixture(scope="module")
def gibbs_quantities():
    data = featured_data(seed=3, n_users=20, n_items=15, K=1)
    gibbs = AGREE_SPEC.fit(data, method="gibbs", draws=2000, thin=2, chains=2, random_seed=1, progressbar=False)
    return data, _agreement_quantities(gibbs.idata["posterior"], data)


def _nuts_quantities(data: RatingsData) -> dict[str, np.ndarray]:
    """NUTS's quantities; a few divergent transitions are left to the bounds to judge (no error)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        nuts = AGREE_SPEC.fit(data, method="nuts", draws=1000, tune=1000, chains=2, target_accept=0.95,
                              random_seed=1, progressbar=False)
    return _agreement_quantities(nuts.idata["posterior"], data)


@pytest.mark.slow
def test_gibbs_agrees_with_nuts(gibbs_quantities):
    """Two independent routes to one posterior with features: the Gibbs block and NUTS on the PyMC model.

    20 x 15 users x items, 60 % observed, rank 1, features on both sides (5 user, 3 item
    columns). Per quantity (`_agreement_quantities`: 5 predictions, 8 weights, 5 scales),
    the posterior means must agree within z * sqrt(mcse_g^2 + mcse_n^2) and the posterior
    sds within z * sqrt(mcse_sd_g^2 + mcse_sd_n^2) (ArviZ's ESS-based Monte Carlo standard
    errors of the mean and the sd, per route), z the two-sided normal quantile of
    FALSE_ALARM / (2 x 18): a family-wise false-alarm rate of 1e-4 (Bonferroni over the 36
    bounds, the errors taken as normal). NUTS mixes slowly along the split of scale between
    U and V that rank 1 leaves to the prior (ESS ~30-50 of 2000 on the weights and factor
    sds, ~2000 on the predictions; Gibbs's rescaling move has none of that), so those
    bounds are wide and their MCSEs rough: when checked, the largest gap was 0.66 of its
    bound. A model whose feature rows are misaligned fails them
    (`test_agreement_catches_misaligned_features`).
    """
    data, q_gibbs = gibbs_quantities
    assert not _disagreement(_nuts_quantities(data), q_gibbs)


@pytest.mark.slow
def test_agreement_catches_misaligned_features(gibbs_quantities, monkeypatch):
    """The same bounds fail when the PyMC model pairs each row with another row's features."""
    data, q_gibbs = gibbs_quantities
    feature_mean = model_priors._feature_mean

    def misaligned(side, X, sd, mean):
        return feature_mean(side, np.roll(X, 1, axis=0), sd, mean)

    monkeypatch.setattr(model_priors, "_feature_mean", misaligned)
    bad = _disagreement(_nuts_quantities(data), q_gibbs)
    assert len(bad) >= 3, bad
