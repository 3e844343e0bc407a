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
IMPLICIT_ROUTES = ("gibbs",)


@pytest.mark.parametrize("method", METHODS)
def test_routes_without_the_implicit_model_refuse_it(method: str) -> None:
    for priors in ("fixed", "hierarchical"):
        spec = PMF(likelihood="implicit", priors=priors)
        if method in IMPLICIT_ROUTES:
            check_supported(spec, method)
            continue
        try:
            check_supported(spec, method)
        except ValueError as exc:
            assert "implicit" in str(exc)
