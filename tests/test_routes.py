"""One contract for every inference route (`bayesmf.inference.METHODS`).

Each route, reached through `bayesmf.inference.fit` or called directly as ``fit_<method>``:

- writes the posterior layout of `bayesmf.posterior` (variables and dims from
  ``param_names`` / ``dims_of``; MAP routes one chain of one draw);
- fills the ``info`` keys every route promises (`bayesmf.inference.INFO_KEYS`);
- gives the identical posterior for the same int seed, accepts a numpy Generator (and
  advances it), and rejects a bad seed with an error naming the value;
- runs the same entry checks (`bayesmf.inference._contract.check_inputs`): a wrong spec
  type, an unsupported model, data that is not a RatingsData, or empty data raise the same
  error by either path.

Runs are tiny and short: what is checked is the contract, not the fit (convergence
warnings of such short runs are ignored here).
"""

from __future__ import annotations

from importlib import import_module

import numpy as np
import pandas as pd
import pytest

from bayesmf import PMF, simulate
from bayesmf.inference import INFO_KEYS, METHODS, fit
from bayesmf.inference.nuts import nutpie_available
from bayesmf.posterior import dims_of, param_names

pytestmark = pytest.mark.filterwarnings("ignore::bayesmf.exceptions.ConvergenceWarning")

SEED = 7
POINT_METHODS = ("map", "als", "sgd")
HIERARCHICAL = PMF(n_factors=2)
FIXED = PMF(n_factors=2, priors="fixed", sigma_u=1.0, sigma_v=1.0)
#: a spec each route supports, the options of a short run, and the (chains, draws) it stores
ROUTES = {
    "gibbs": (HIERARCHICAL, {"draws": 10, "tune": 5, "chains": 2}, (2, 10)),
    "nuts": (HIERARCHICAL, {"draws": 10, "tune": 20, "chains": 2}, (2, 10)),
    "advi": (HIERARCHICAL, {"n": 100, "draws": 10}, (1, 10)),
    "map": (FIXED, {"maxeval": 50}, (1, 1)),
    "als": (FIXED, {"max_iter": 10}, (1, 1)),
    "sgd": (FIXED, {"epochs": 3}, (1, 1)),
}
#: a model each route cannot fit (nuts and advi fit every model)
UNSUPPORTED = {
    "gibbs": PMF(n_factors=2, link="logistic"),
    "map": HIERARCHICAL,
    "als": PMF(n_factors=2, priors="fixed", link="logistic"),
    "sgd": PMF(n_factors=2, priors="fixed", likelihood="ordinal"),
}
BAD_SEEDS = [-1, 1.5, "x", True]


def _params(methods):
    marks = {"nuts": pytest.mark.skipif(not nutpie_available(), reason="nutpie not installed")}
    return [pytest.param(m, marks=marks.get(m, ())) for m in methods]


def test_every_method_is_covered():
    assert set(ROUTES) == set(METHODS)
    assert set(UNSUPPORTED) | {"nuts", "advi"} == set(METHODS)


@pytest.fixture(scope="module")
def data():
    return simulate(n_users=25, n_items=20, n_factors=2, density=0.3, noise=0.3, seed=0).data


def _route(method):
    return getattr(import_module(f"bayesmf.inference.{method}"), f"fit_{method}")


def _run(method, data, random_seed, direct=False):
    spec, options, _ = ROUTES[method]
    if direct:
        return _route(method)(spec, data, random_seed=random_seed, progressbar=False, **options)
    return fit(spec, data, method, random_seed=random_seed, progressbar=False, **options)


@pytest.fixture(scope="module")
def fits(data):
    """Per method, on first use: two fits with the same int seed (through `fit`, then the
    route directly) and one with a Generator (whose state before the fit is kept)."""
    cache = {}

    def get(method):
        if method not in cache:
            first = _run(method, data, SEED)
            second = _run(method, data, SEED, direct=True)
            rng = np.random.default_rng(3)
            state = rng.bit_generator.state
            by_generator = _run(method, data, rng)
            cache[method] = {
                "first": first,
                "second": second,
                "generator": by_generator,
                "advanced": rng.bit_generator.state != state,
            }
        return cache[method]

    return get


@pytest.mark.parametrize("method", _params(METHODS))
def test_posterior_layout(method, fits, data):
    spec, _, (chains, draws) = ROUTES[method]
    for key in ("first", "generator"):
        result = fits(method)[key]
        post = result.posterior
        assert result.method == method
        assert sorted(post.data_vars) == sorted(param_names(spec))
        for name in param_names(spec):
            assert post[name].dims == ("chain", "draw", *dims_of(spec, name)), (method, name)
            assert np.isfinite(post[name].values).all(), (method, name)
        assert (post.sizes["chain"], post.sizes["draw"]) == (chains, draws)
        assert (result.n_chains, result.n_draws) == (chains, draws)
        assert result.is_map is (method in POINT_METHODS)
        np.testing.assert_array_equal(post["user"].values, data.users.classes)
        np.testing.assert_array_equal(post["item"].values, data.items.classes)


@pytest.mark.parametrize("method", _params(METHODS))
def test_info_keys(method, fits):
    runs = fits(method)
    for key in ("first", "second", "generator"):
        info = runs[key].info
        assert set(INFO_KEYS) <= set(info), (method, key, sorted(info))
        assert isinstance(info["fit_seconds"], float) and info["fit_seconds"] > 0
        seed = info["random_seed"]
        assert isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0, (method, seed)
    assert runs["first"].info["random_seed"] == SEED
    assert runs["second"].info["random_seed"] == SEED


@pytest.mark.parametrize("method", _params(METHODS))
def test_same_int_seed_same_posterior(method, fits):
    runs = fits(method)
    first, second = runs["first"].posterior, runs["second"].posterior
    assert sorted(first.data_vars) == sorted(second.data_vars)
    for name in first.data_vars:
        np.testing.assert_array_equal(first[name].values, second[name].values, err_msg=f"{method} {name}")


@pytest.mark.parametrize("method", _params(METHODS))
def test_generator_seed_is_accepted_and_advanced(method, fits):
    runs = fits(method)
    assert runs["advanced"], f"{method} did not draw from the Generator it was given"
    # a different stream than the int seed's
    assert not np.array_equal(runs["generator"].posterior["U"].values, runs["first"].posterior["U"].values)


@pytest.mark.parametrize("seed", BAD_SEEDS, ids=repr)
@pytest.mark.parametrize("method", METHODS)
def test_bad_seed_is_named(method, seed, data):
    for direct in (False, True):
        with pytest.raises((TypeError, ValueError), match="random_seed") as caught:
            _run(method, data, seed, direct=direct)
        assert repr(seed) in str(caught.value), (method, direct, str(caught.value))


def _entry_cases(method, data):
    spec = ROUTES[method][0]
    cases = {
        "spec type": ({"n_factors": 2}, data, TypeError, "spec must be a PMF"),
        "data type": (spec, pd.DataFrame({"user": [1], "item": [2], "rating": [3.0]}), TypeError, "RatingsData"),
        "empty data": (spec, data.subset(np.zeros(data.n_ratings, dtype=bool)), ValueError, "empty"),
    }
    if method in UNSUPPORTED:
        cases["unsupported model"] = (UNSUPPORTED[method], data, ValueError, "does not support this model")
    return cases


@pytest.mark.parametrize("method", METHODS)
def test_entry_checks_same_via_fit_and_direct(method, data):
    route = _route(method)
    for case, (spec, bad_data, error, match) in _entry_cases(method, data).items():
        with pytest.raises(error, match=match) as via_fit:
            fit(spec, bad_data, method, progressbar=False)
        with pytest.raises(error, match=match) as direct:
            route(spec, bad_data, progressbar=False)
        assert type(direct.value) is type(via_fit.value), (method, case)
        assert str(direct.value) == str(via_fit.value), (method, case)
