"""The implicit-feedback options of `PMF` and its confidence weights."""

from __future__ import annotations

import numpy as np
import pytest

from bayesmf import PMF
from bayesmf.confidence import confidence_weights
from bayesmf.inference import METHODS
from bayesmf.inference._contract import check_supported


def test_options_round_trip_and_old_payloads_load() -> None:
    spec = PMF(likelihood="implicit", confidence="log", confidence_scale=40.0, confidence_eps=0.5)
    assert PMF.from_json(spec.to_json()) == spec
    old = PMF().to_dict()
    for key in ("confidence", "confidence_scale", "confidence_eps"):
        old.pop(key)  # a spec saved before these options existed
    assert PMF.from_dict(old) == PMF()


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"confidence_scale": 0.0}, "confidence_scale"),
        ({"confidence_scale": -2.0}, "confidence_scale"),
        ({"confidence_eps": float("nan")}, "confidence_eps"),
        ({"confidence": "quadratic"}, "quadratic"),
        ({"likelihood": "implicit", "link": "logistic"}, "logistic"),
    ],
)
def test_bad_options_name_the_value(options: dict, named: str) -> None:
    with pytest.raises(ValueError, match=named):
        PMF(**options)


def test_confidence_weights() -> None:
    values = np.array([1.0, 3.0, 0.5])
    linear = confidence_weights(PMF(likelihood="implicit", confidence_scale=2.0), values)
    np.testing.assert_allclose(linear, 1.0 + 2.0 * values)
    log = confidence_weights(PMF(likelihood="implicit", confidence="log", confidence_scale=2.0, confidence_eps=0.5), values)
    np.testing.assert_allclose(log, 1.0 + 2.0 * np.log(1.0 + values / 0.5))
    with pytest.raises(ValueError, match=r"-1\.0 at position 1"):
        confidence_weights(PMF(likelihood="implicit"), np.array([1.0, -1.0, 2.0]))
    with pytest.raises(ValueError, match="inf"):
        confidence_weights(PMF(likelihood="implicit"), np.array([np.inf]))


#: the routes that fit the implicit model
IMPLICIT_ROUTES = {"gibbs": ("fixed", "hierarchical"), "map": ("fixed",)}


@pytest.mark.parametrize("method", METHODS)
def test_routes_without_the_implicit_model_refuse_it(method: str) -> None:
    for priors in ("fixed", "hierarchical"):
        spec = PMF(likelihood="implicit", priors=priors)
        if priors in IMPLICIT_ROUTES.get(method, ()):
            check_supported(spec, method)
            continue
        with pytest.raises(ValueError, match="implicit" if method not in IMPLICIT_ROUTES else "priors='fixed'"):
            check_supported(spec, method)


def test_find_map_is_the_fixed_point_of_the_implicit_als_sweeps() -> None:
    """Two routes to the implicit model's mode: PyMC's find_MAP on the dense model, and the
    Gibbs sampler's conditional-mean sweeps (weighted ALS over every pair) run to convergence."""
    from bayesmf import simulate
    from bayesmf.inference.gibbs.problem import build_problem
    from bayesmf.inference.gibbs.start import initial_state
    from bayesmf.inference.gibbs.sweep import build_sweep
    from bayesmf.interactions import as_implicit

    data = as_implicit(simulate(n_users=30, n_items=20, n_factors=2, density=0.3, seed=1).data)
    spec = PMF(n_factors=2, likelihood="implicit", priors="fixed")
    point = spec.fit(data, method="map", random_seed=0, progressbar=False).idata["posterior"]
    rng = np.random.default_rng(0)
    problem = build_problem(spec, data)
    state = initial_state(problem, spec, data, rng, "map")
    sweep = build_sweep(problem, stochastic=False)
    variates = sweep.variates()
    for _ in range(3000):
        sweep(state, variates, rng)
    als = sweep.draws(state)

    def eta(p: dict) -> np.ndarray:
        return p["U"] @ p["V"].T + p["mu"] + p["user_bias"][:, None] + p["item_bias"][None, :]

    found = eta({name: point[name].values[0, 0] for name in ("U", "V", "mu", "user_bias", "item_bias")})
    # the mode is unique up to rotations of (U, V), which leave eta unchanged
    np.testing.assert_allclose(found, eta(als), atol=2e-3)
    assert np.ptp(found) > 0.3  # a real spread of scores, not a trivial agreement at one value
