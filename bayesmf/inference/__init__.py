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

Every route follows one contract (`bayesmf.inference._contract`; checked for every method
by ``tests/test_routes.py``):

- entry checks: `fit` and each public ``fit_<method>`` call `check_inputs` first, so a bad
  spec, an unsupported model, data that is not a `bayesmf.data.RatingsData`, or an empty
  dataset raise the same error by either path;
- ``random_seed``: an int >= 0, a `numpy.random.Generator` or None (`bayesmf._seed`); the
  same int gives the same posterior;
- the result: a `FitResult` whose posterior has the variables and dims of
  `bayesmf.posterior.param_names` and `bayesmf.posterior.dims_of` (MAP routes: one chain
  of one draw), and whose ``info`` has at least the keys `INFO_KEYS`: ``fit_seconds`` and
  ``random_seed`` (an int that repeats the run).
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import TYPE_CHECKING, Any

from bayesmf.inference._contract import INFO_KEYS, METHODS, check_inputs, check_supported

if TYPE_CHECKING:
    from bayesmf.data import RatingsData
    from bayesmf.results import FitResult
    from bayesmf.spec import PMF

__all__ = ["INFO_KEYS", "METHODS", "check_supported", "fit"]

#: method -> (module, function) of its route, imported on first use
_ROUTES = {method: (f"bayesmf.inference.{method}", f"fit_{method}") for method in METHODS}


def fit(spec: PMF, data: RatingsData, method: str = "gibbs", **kwargs: Any) -> FitResult:
    """Fit ``spec`` on ``data`` by ``method``; see the table in this module's docstring.

    Parameters
    ----------
    spec : PMF
        The model to fit.
    data : RatingsData
        Training ratings.
    method : {"gibbs", "nuts", "advi", "map", "als", "sgd"}
        The route (`METHODS`).
    **kwargs
        Options of the route (``random_seed``, ``progressbar``, ...): see its
        ``fit_<method>``.

    Returns
    -------
    FitResult
        The fit, in the layout every route shares (see the module docstring).

    Raises
    ------
    TypeError, ValueError
        From `check_inputs` (before anything is built) or from the route's own options.
    """
    check_inputs(spec, data, method)
    module_name, function_name = _ROUTES[method]
    route: Callable[..., FitResult] = getattr(import_module(module_name), function_name)
    return route(spec, data, **kwargs)
