"""Inference routes. `fit` dispatches on the method name; every route returns a `FitResult`.

=========  ===========================================  ==============================
method     what                                          models it supports
=========  ===========================================  ==============================
``map``    ``pm.find_MAP`` from a seeded random start     fixed priors, any link/likelihood
``als``    closed-form alternating least squares          fixed priors, identity, normal
``sgd``    stochastic gradient descent (baseline)         fixed priors, normal likelihood
``gibbs``  blocked conjugate Gibbs (numba kernels)        identity link, normal likelihood
``nuts``   NUTS via nutpie (or PyMC)                      all
``advi``   mean-field / full-rank ADVI via ``pm.fit``     all
=========  ===========================================  ==============================
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import TYPE_CHECKING, Any

from bayesmf._validate import validate_choice

if TYPE_CHECKING:
    from bayesmf.data import RatingsData
    from bayesmf.results import FitResult
    from bayesmf.spec import PMF

__all__ = ["METHODS", "check_supported", "fit"]

METHODS = ("gibbs", "nuts", "advi", "map", "als", "sgd")

#: (method) -> predicate on the spec and a description of what it supports
_SUPPORT = {
    "map": (lambda s: s.priors == "fixed", "priors='fixed' (any link and likelihood)"),
    "als": (
        lambda s: s.priors == "fixed" and s.link == "identity" and s.likelihood == "normal",
        "priors='fixed', link='identity', likelihood='normal'",
    ),
    "sgd": (
        lambda s: s.priors == "fixed" and s.likelihood == "normal",
        "priors='fixed', likelihood='normal' (identity or logistic link)",
    ),
    "gibbs": (
        lambda s: s.link == "identity" and s.likelihood == "normal",
        "link='identity', likelihood='normal' (fixed or hierarchical priors)",
    ),
    "nuts": (lambda s: True, "every model"),
    "advi": (lambda s: True, "every model"),
}


#: method -> (module, function) of its route, imported on first use
_ROUTES = {method: (f"bayesmf.inference.{method}", f"fit_{method}") for method in METHODS}


def check_supported(spec: PMF, method: str) -> None:
    """Raise ``ValueError`` naming the supported combinations if ``method`` cannot fit ``spec``."""
    validate_choice("method", method, METHODS)
    supported, description = _SUPPORT[method]
    if not supported(spec):
        raise ValueError(
            f"method={method!r} does not support this model (priors={spec.priors!r}, "
            f"link={spec.link!r}, likelihood={spec.likelihood!r}); it supports {description}"
        )


def fit(spec: PMF, data: RatingsData, method: str = "gibbs", **kwargs: Any) -> FitResult:
    """Fit ``spec`` on ``data`` by ``method``; see the table in this module's docstring."""
    from bayesmf.data import RatingsData

    check_supported(spec, method)
    if not isinstance(data, RatingsData):
        raise TypeError(
            f"fit() needs a RatingsData (RatingsData.from_dataframe(df, ...)), got {type(data).__name__}"
        )
    if data.n_ratings == 0:
        raise ValueError("cannot fit on an empty dataset (0 ratings)")
    module_name, function_name = _ROUTES[method]
    route: Callable[..., FitResult] = getattr(import_module(module_name), function_name)
    return route(spec, data, **kwargs)
