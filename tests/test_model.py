"""The PyMC model: layout, priors written down in build_model, link maths, new-pair prediction."""

from __future__ import annotations

import itertools

import numpy as np
import pymc as pm
import pytest
from scipy import stats
from scipy.special import expit

from bayesmf import PMF, RatingsData, simulate
from bayesmf.link import (
    level_codes,
    mean_rating,
    mu_prior,
    ordinal_probs,
    to_unit,
    unit_mean,
)
from bayesmf.model import build_model
from bayesmf.objective import latent_scores
from bayesmf.posterior import dims_of, make_posterior, param_names

FAST = "FAST_COMPILE"  # tiny models: compile speed matters more than run speed


def small_data(seed: int = 0, discrete: bool = False, n_users: int = 12, n_items: int = 9) -> RatingsData:
    """Simulated ratings; ``discrete`` rounds them onto the 1..5 grid."""
    sim = simulate(n_users=n_users, n_items=n_items, n_factors=2, density=0.4, noise=0.5, seed=seed)
    data = sim.data
    if not discrete:
        return data
    rating = np.clip(np.round(data.rating), 1, 5)
    return RatingsData(data.user_idx, data.item_idx, rating, (1.0, 5.0), data.users, data.items)


COMBOS = [
    dict(priors=p, biases=b, link=lk, likelihood=lh, per_factor_scales=pf)
    for p, b, lk, lh, pf in itertools.product(
        ["fixed", "hierarchical"], [True, False], ["identity", "logistic"], ["normal", "ordinal"], [False, True]
    )
    if not (lh == "ordinal" and lk == "logistic") and not (pf and p == "fixed")
] + [
    dict(priors="hierarchical", biases=b, likelihood="normal", per_factor_scales=pf, factor_prior="per_side")
    for b, pf in itertools.product([True, False], [False, True])
]


@pytest.mark.parametrize("options", COMBOS, ids=lambda o: "-".join(str(v) for v in o.values()))
def test_variables_and_dims_follow_the_posterior_layout(options):
    spec = PMF(n_factors=2, **options)
    data = small_data(discrete=True)
    model = build_model(spec, data)
    named = model.named_vars
    for name in param_names(spec):
        assert name in named, name
        assert tuple(model.named_vars_to_dims.get(name, ())) == dims_of(spec, name), name
    assert "rating" in {v.name for v in model.observed_RVs}
    np.testing.assert_array_equal(model.coords["user"], data.users.classes)
    np.testing.assert_array_equal(model.coords["item"], data.items.classes)
    assert len(model.coords["factor"]) == 2
    # every free variable of the model is either in the layout or a variance behind an sd
    extra = {v.name for v in model.free_RVs} - set(param_names(spec))
    assert extra <= {"sigma2", "factor_var", "factor_var_user", "factor_var_item", "user_bias_var", "item_bias_var"}
    if spec.likelihood == "ordinal":
        assert "mu" not in named  # the cutpoints absorb the global mean
        assert len(model.coords["cutpoint"]) == len(data.levels) - 1


def test_biases_false_is_the_seeds_model():
    spec = PMF(n_factors=2, priors="fixed", biases=False)
    model = build_model(spec, small_data())
    assert {v.name for v in model.free_RVs} == {"U", "V"}
    assert {v.name for v in model.deterministics} == {"sigma"}


def test_fixed_sigma_is_the_spec_noise_sd():
    data = small_data()
    for spec in (PMF(priors="fixed", sigma=0.7), PMF(priors="fixed"), PMF(priors="fixed", link="logistic")):
        model = build_model(spec, data)
        value = model.compile_fn(model["sigma"], inputs=[], mode=FAST)({})
        assert float(value) == pytest.approx(spec.noise_sd(data.scale))


def _point_values(model, rng):
    """A random point (constrained values) and its value-variable dict."""
    ip = model.initial_point()
    point = {}
    for rv in model.free_RVs:
        value_var = model.rvs_to_values[rv]
        shape = ip[value_var.name].shape
        if rv.name in ("sigma2", "factor_var", "factor_var_user", "factor_var_item", "user_bias_var", "item_bias_var"):
            point[rv.name] = rng.uniform(0.2, 1.5, size=shape)
        elif rv.name == "cutpoints":
            point[rv.name] = np.sort(rng.normal(0, 1.5, size=shape))
        else:
            point[rv.name] = rng.normal(0, 0.5, size=shape) + (3.0 if rv.name == "mu" else 0.0)
    values = {}
    for rv in model.free_RVs:
        value_var = model.rvs_to_values[rv]
        transform = model.rvs_to_transforms[rv]
        x = point[rv.name]
        values[value_var.name] = (
            x if transform is None else transform.forward(pm.math.constant(x), *rv.owner.inputs).eval()
        )
    return point, values


@pytest.mark.parametrize("per_factor", [False, True])
def test_hierarchical_logp_is_the_documented_conjugate_model(per_factor):
    """The priors in build_model's docstring, written out with scipy, give the same density."""
    hyper = {"sigma2": (3.0, 2.0), "factor_var": (2.5, 0.4), "bias_var": (2.0, 0.2)}
    spec = PMF(n_factors=2, priors="hierarchical", factor_prior="shared", per_factor_scales=per_factor, hyperpriors=hyper)
    data = small_data()
    model = build_model(spec, data)
    logp = model.compile_logp(jacobian=False, mode=FAST)
    rng = np.random.default_rng(3)
    for _ in range(3):
        p, values = _point_values(model, rng)
        eta = latent_scores(
            p["U"], p["V"], data.user_idx, data.item_idx, mu=p["mu"], user_bias=p["user_bias"], item_bias=p["item_bias"]
        )
        invgamma = stats.invgamma.logpdf
        expected = stats.norm.logpdf(data.rating, eta, np.sqrt(p["sigma2"])).sum()
        expected += invgamma(p["sigma2"], hyper["sigma2"][0], scale=hyper["sigma2"][1])
        fv = np.atleast_1d(p["factor_var"])
        expected += invgamma(fv, hyper["factor_var"][0], scale=hyper["factor_var"][1]).sum()
        sd = np.sqrt(p["factor_var"])  # broadcasts over the factor axis when per factor
        expected += stats.norm.logpdf(p["U"], 0, sd).sum() + stats.norm.logpdf(p["V"], 0, sd).sum()
        for side in ("user", "item"):
            var = p[f"{side}_bias_var"]
            expected += invgamma(var, hyper["bias_var"][0], scale=hyper["bias_var"][1])
            expected += stats.norm.logpdf(p[f"{side}_bias"], 0, np.sqrt(var)).sum()
        mean, sd_mu = mu_prior(spec, data.scale)
        assert (mean, sd_mu) == ((data.scale[0] + data.scale[1]) / 2, (data.scale[1] - data.scale[0]) / 2)
        expected += stats.norm.logpdf(p["mu"], mean, sd_mu)
        assert float(logp(values)) == pytest.approx(float(expected), rel=1e-9)


def test_ordinal_likelihood_matches_ordinal_probs():
    spec = PMF(n_factors=2, priors="fixed", likelihood="ordinal")
    data = small_data(discrete=True)
    model = build_model(spec, data)
    loglik = model.compile_fn(model.logp(vars=[model["rating"]], jacobian=False), mode=FAST)
    rng = np.random.default_rng(1)
    p, values = _point_values(model, rng)
    eta = latent_scores(p["U"], p["V"], data.user_idx, data.item_idx, user_bias=p["user_bias"], item_bias=p["item_bias"])
    probs = ordinal_probs(eta, p["cutpoints"])
    codes = level_codes(data.rating, data.levels)
    np.testing.assert_array_equal(data.levels[codes], data.rating)
    assert float(loglik(values)) == pytest.approx(float(np.log(probs[np.arange(len(codes)), codes]).sum()), rel=1e-9)


def test_ordinal_needs_discrete_levels():
    spec = PMF(priors="fixed", likelihood="ordinal")
    continuous = small_data()
    assert continuous.levels is None
    with pytest.raises(ValueError, match="discrete rating levels"):
        build_model(spec, continuous)


def test_empty_data_raises():
    data = small_data()
    empty = data.subset(np.zeros(data.n_ratings, dtype=bool))
    with pytest.raises(ValueError, match="empty"):
        build_model(PMF(), empty)


def test_link_maths():
    scale = (1.0, 5.0)
    eta = np.linspace(-4, 4, 9)
    ident = PMF(link="identity")
    logis = PMF(link="logistic")
    np.testing.assert_allclose(mean_rating(eta, ident, scale), eta)
    np.testing.assert_allclose(mean_rating(eta, logis, scale), 1 + 4 * expit(eta))
    r = np.array([1.0, 3.0, 5.0])
    np.testing.assert_allclose(to_unit(r, scale, "logistic"), [0.0, 0.5, 1.0])
    np.testing.assert_allclose(to_unit(r, scale, "identity"), r)
    # same function on tensors
    np.testing.assert_allclose(unit_mean(pm.math.constant(eta), "logistic").eval(), expit(eta))
    with pytest.raises(ValueError, match="'identity', 'logistic'"):
        unit_mean(eta, "cauchit")
    # ordinal: probabilities sum to one, shift with eta, mean between the levels
    cut = np.array([-2.0, -0.5, 0.5, 2.0])
    probs = ordinal_probs(eta, cut)
    np.testing.assert_allclose(probs.sum(axis=-1), 1.0)
    assert (probs >= 0).all()
    levels = np.arange(1.0, 6.0)
    means = mean_rating(eta, PMF(likelihood="ordinal"), scale, cutpoints=cut, levels=levels)
    assert np.all(np.diff(means) > 0) and means.min() > 1 and means.max() < 5
    with pytest.raises(ValueError, match="cutpoints"):
        mean_rating(eta, PMF(likelihood="ordinal"), scale)


@pytest.mark.parametrize("link", ["identity", "logistic"])
def test_set_data_predicts_new_pairs(link):
    """pm.set_data on user_idx/item_idx + sample_posterior_predictive draw around mean_rating."""
    data = small_data()
    spec = PMF(n_factors=2, priors="fixed", link=link, sigma=0.3 if link == "identity" else 0.05)
    model = build_model(spec, data)
    rng = np.random.default_rng(0)
    point = {
        "U": rng.normal(0, 0.5, (data.n_users, 2)),
        "V": rng.normal(0, 0.5, (data.n_items, 2)),
        "mu": np.asarray(3.0 if link == "identity" else 0.2),
        "user_bias": rng.normal(0, 0.3, data.n_users),
        "item_bias": rng.normal(0, 0.3, data.n_items),
        "sigma": np.asarray(spec.noise_sd(data.scale)),
    }
    n_draws = 400
    draws = {k: np.broadcast_to(np.asarray(v), (1, n_draws, *np.shape(v))) for k, v in point.items()}
    posterior = make_posterior(spec, data, draws)
    new_u = np.array([0, 3, 5, 11])
    new_i = np.array([8, 0, 4, 2])
    with model:
        pm.set_data({"user_idx": new_u, "item_idx": new_i}, coords={"obs": np.arange(len(new_u))})
        pp = pm.sample_posterior_predictive(
            posterior, predictions=True, progressbar=False, random_seed=1, compile_kwargs={"mode": FAST}
        )
    sims = pp["predictions"]["rating"].values.reshape(n_draws, -1)
    assert sims.shape == (n_draws, len(new_u))
    eta = latent_scores(
        point["U"], point["V"], new_u, new_i, mu=point["mu"], user_bias=point["user_bias"], item_bias=point["item_bias"]
    )
    expected_unit = unit_mean(eta, link)
    sd = spec.noise_sd(data.scale)
    # the predictive of the model is on the likelihood's (unit) scale
    np.testing.assert_array_less(np.abs(sims.mean(axis=0) - expected_unit), 5 * sd / np.sqrt(n_draws))
    assert sims.std(axis=0) == pytest.approx(np.full(len(new_u), sd), rel=0.2)
    low, high = data.scale
    if link == "logistic":
        np.testing.assert_allclose(low + (high - low) * expected_unit, mean_rating(eta, spec, data.scale))


@pytest.mark.parametrize("per_factor", [False, True])
def test_per_side_logp_is_the_documented_bpmf_prior(per_factor):
    """factor_prior="per_side": each side's mean ~ N(0, v / kappa), rows ~ N(mean, v), v ~ IG."""
    from bayesmf.spec import FACTOR_MEAN_KAPPA

    hyper = {"sigma2": (3.0, 2.0), "factor_var": (2.5, 0.4), "bias_var": (2.0, 0.2)}
    spec = PMF(n_factors=2, per_factor_scales=per_factor, factor_prior="per_side", hyperpriors=hyper)
    data = small_data()
    model = build_model(spec, data)
    logp = model.compile_logp(jacobian=False, mode=FAST)
    rng = np.random.default_rng(4)
    invgamma = stats.invgamma.logpdf
    for _ in range(3):
        p, values = _point_values(model, rng)
        eta = latent_scores(
            p["U"], p["V"], data.user_idx, data.item_idx, mu=p["mu"], user_bias=p["user_bias"], item_bias=p["item_bias"]
        )
        expected = stats.norm.logpdf(data.rating, eta, np.sqrt(p["sigma2"])).sum()
        expected += invgamma(p["sigma2"], hyper["sigma2"][0], scale=hyper["sigma2"][1])
        for side, factors in (("user", p["U"]), ("item", p["V"])):
            var = p[f"factor_var_{side}"]
            expected += invgamma(np.atleast_1d(var), hyper["factor_var"][0], scale=hyper["factor_var"][1]).sum()
            mean = p[f"factor_mean_{side}"]
            expected += stats.norm.logpdf(mean, 0, np.sqrt(var / FACTOR_MEAN_KAPPA)).sum()
            expected += stats.norm.logpdf(factors, mean, np.sqrt(var)).sum()
            bias_var = p[f"{side}_bias_var"]
            expected += invgamma(bias_var, hyper["bias_var"][0], scale=hyper["bias_var"][1])
            expected += stats.norm.logpdf(p[f"{side}_bias"], 0, np.sqrt(bias_var)).sum()
        expected += stats.norm.logpdf(p["mu"], *mu_prior(spec, data.scale))
        assert float(logp(values)) == pytest.approx(float(expected), rel=1e-9)


def test_model_reexports_the_link_maths():
    """Importers of ``bayesmf.model`` (prediction, the inference routes) get the one definition."""
    from bayesmf import link, model

    for name in ("initial_cutpoints", "level_codes", "mean_rating", "mu_prior", "ordinal_probs", "to_unit", "unit_mean"):
        assert getattr(model, name) is getattr(link, name)
