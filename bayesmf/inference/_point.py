"""Shared by the MAP routes: point estimates -> `FitResult`, starts, and the collapse check.

A point estimate is stored as a posterior of one chain and one draw
(`bayesmf.posterior.make_posterior`), so prediction, recommendation and saving treat MAP
and sampled fits alike.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from bayesmf.exceptions import CollapsedFactorsWarning, ConvergenceWarning
from bayesmf.link import to_unit
from bayesmf.posterior import make_posterior, param_names
from bayesmf.results import FitResult

if TYPE_CHECKING:
    from bayesmf.data import RatingsData
    from bayesmf.spec import PMF

__all__ = [
    "CollapsedFactorsWarning",
    "ConvergenceWarning",
    "check_collapse",
    "initial_point",
    "iterative_result",
    "point_result",
]


def point_result(
    spec: PMF,
    data: RatingsData,
    params: Mapping[str, Any],
    method: str,
    info: Mapping[str, Any],
) -> FitResult:
    """Wrap point estimates as a one-chain, one-draw `FitResult`.

    Parameters
    ----------
    spec : PMF
        The fitted spec.
    data : RatingsData
        Training ratings.
    params : mapping
        Arrays without chain/draw axes for every name in `bayesmf.posterior.param_names`
        (``U`` as ``(n_users, K)``, ``mu`` a scalar...). A missing ``sigma`` of a
        fixed-prior normal model is filled with ``spec.noise_sd(data.scale)``.
    method : str
        ``"map"``, ``"als"`` or ``"sgd"``.
    info : mapping
        Facts about the run (``fit_seconds``, ``iterations``, ``objective``, ``converged``...);
        scalars among them are also written as attributes of the posterior group.

    Returns
    -------
    FitResult
    """
    params = dict(params)
    if spec.likelihood == "normal" and "sigma" not in params and spec.priors == "fixed":
        params["sigma"] = spec.noise_sd(data.scale)
    draws = {}
    for name in param_names(spec):
        if name not in params:
            raise ValueError(f"point estimates lack {name!r} (have {sorted(params)})")
        draws[name] = np.asarray(params[name], dtype=np.float64)[None, None, ...]
    attrs: dict[str, Any] = {"method": method}
    for key, value in info.items():
        if isinstance(value, (bool, np.bool_)):
            attrs[key] = int(value)
        elif isinstance(value, (int, float, str, np.integer, np.floating)):
            attrs[key] = value
    idata = make_posterior(spec, data, draws, attrs=attrs)
    return FitResult(spec=spec, idata=idata, method=method, train=data, info=dict(info))


def initial_point(
    spec: PMF, data: RatingsData, rng: np.random.Generator, init_sd: float
) -> dict[str, np.ndarray]:
    """Draw a random start away from the :math:`U = V = 0` saddle.

    Factors ``N(0, init_sd^2)`` for users and items that have ratings (0 for the others:
    their optimum is 0), biases 0 and ``mu`` the mean rating on the latent scale.
    """
    k = spec.n_factors
    U = rng.normal(0.0, init_sd, size=(data.n_users, k))
    V = rng.normal(0.0, init_sd, size=(data.n_items, k))
    U[data.user_counts() == 0] = 0.0
    V[data.item_counts() == 0] = 0.0
    start = {"U": U, "V": V}
    if spec.biases:
        start["user_bias"] = np.zeros(data.n_users)
        start["item_bias"] = np.zeros(data.n_items)
        if spec.likelihood == "normal":
            mean = float(np.mean(to_unit(np.asarray(data.rating), data.scale, spec.link)))
            if spec.link == "logistic":
                mean = min(max(mean, 1e-3), 1.0 - 1e-3)
                mean = float(np.log(mean / (1.0 - mean)))
            start["mu"] = np.asarray(mean)
    return start


def check_collapse(U: np.ndarray, V: np.ndarray, method: str, *, atol: float = 1e-6) -> bool:
    """Warn (`CollapsedFactorsWarning`) and return True if every factor is ~0."""
    largest = max(float(np.max(np.abs(U), initial=0.0)), float(np.max(np.abs(V), initial=0.0)))
    if largest < atol:
        warnings.warn(
            f"method={method!r}: the fitted factors collapsed to zero (largest |U|, |V| entry "
            f"{largest:.1e}), so the fit only uses the global mean and offsets. The optimizer "
            "may have stopped at the U = V = 0 saddle (try another random_seed or a larger "
            "init_sd), or sigma_u/sigma_v are too small for the noise sd sigma",
            CollapsedFactorsWarning,
            stacklevel=3,
        )
        return True
    return False


def iterative_result(
    spec: PMF,
    data: RatingsData,
    params: Mapping[str, Any],
    method: str,
    *,
    seconds: float,
    history: list[float],
    converged: bool,
    **options: Any,
) -> FitResult:
    """`point_result` of an iterative minimizer (ALS, SGD): its objective trace and options.

    ``history`` holds the objective before the first sweep and after each one; ``options``
    (tolerance, learning rate...) go into ``info`` as they are. Checks for collapsed factors.
    """
    info = {
        "fit_seconds": seconds,
        "iterations": len(history) - 1,
        "objective": history,
        "final_objective": history[-1],
        "converged": converged,
        "collapsed": check_collapse(params["U"], params["V"], method),
        **options,
    }
    return point_result(spec, data, params, method, info)
