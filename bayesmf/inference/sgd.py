r"""MAP by stochastic gradient descent over single ratings (the seeds' baseline).

The PMF objective (`bayesmf.objective`) is a sum over observed ratings once each factor's
penalty is split evenly over that user's (item's) ratings:

.. math::

    E = \sum_{(i,j) \in \Omega} \Big[\tfrac12 (R_{ij} - g(\eta_{ij}))^2
        + \frac{\lambda_U}{2 n_i} \lVert U_i \rVert^2 + \frac{\lambda_V}{2 m_j} \lVert V_j \rVert^2
        + \frac{\lambda_b}{2 n_i} b_i^2 + \frac{\lambda_b}{2 m_j} c_j^2\Big]

(:math:`n_i`, :math:`m_j` the rating counts of user :math:`i` and item :math:`j`; users and
items without ratings sit at their optimum 0). Each step takes one rating in a shuffled
order and moves :math:`U_i, V_j, b_i, c_j, \mu` against the gradient of its term, with step
size :math:`\text{learning\_rate} / (1 + \text{decay} \cdot \text{epoch})`. So SGD targets
exactly the objective of find_MAP and ALS, but stops near, not at, its minimum.
"""

from __future__ import annotations

import time
import warnings
from typing import TYPE_CHECKING, Any

import numba
import numpy as np
from tqdm.auto import tqdm

from bayesmf._seed import base_seed
from bayesmf._validate import validate_positive, validate_positive_int
from bayesmf.inference._contract import check_inputs
from bayesmf.inference._point import (
    ConvergenceWarning,
    initial_point,
    iterative_result,
)
from bayesmf.link import to_unit
from bayesmf.objective import objective

if TYPE_CHECKING:
    from bayesmf.data import RatingsData
    from bayesmf.results import FitResult
    from bayesmf.spec import PMF

__all__ = ["fit_sgd"]

#: default initial step size per link (tuned on ML-100K u1 and on simulated data)
_DEFAULT_RATE = {"identity": 0.02, "logistic": 0.3}


@numba.njit(cache=True)
def _sgd_epoch(
    order: np.ndarray,
    user_idx: np.ndarray,
    item_idx: np.ndarray,
    target: np.ndarray,
    U: np.ndarray,
    V: np.ndarray,
    bias: np.ndarray,
    reg_user: np.ndarray,
    reg_item: np.ndarray,
    reg_user_bias: np.ndarray,
    reg_item_bias: np.ndarray,
    step: float,
    logistic: bool,
    use_bias: bool,
) -> None:
    r"""One pass over the ratings in ``order``, updating the parameters in place.

    ``bias`` packs ``(mu, b_0..b_{n-1}, c_0..c_{m-1})``; ``reg_*`` hold the per-rating
    penalty weights :math:`\lambda / n_i`, :math:`\lambda / m_j`.
    """
    k = U.shape[1]
    n_users = U.shape[0]
    for t in range(order.shape[0]):
        n = order[t]
        i = user_idx[n]
        j = item_idx[n]
        eta = 0.0
        for f in range(k):
            eta += U[i, f] * V[j, f]
        if use_bias:
            eta += bias[0] + bias[1 + i] + bias[1 + n_users + j]
        if logistic:
            pred = 1.0 / (1.0 + np.exp(-eta))
            g = (target[n] - pred) * pred * (1.0 - pred)  # -dE/deta
        else:
            g = target[n] - eta
        ru = reg_user[i]
        rv = reg_item[j]
        for f in range(k):
            u = U[i, f]
            v = V[j, f]
            U[i, f] = u + step * (g * v - ru * u)
            V[j, f] = v + step * (g * u - rv * v)
        if use_bias:
            bias[0] += step * g
            bi = 1 + i
            cj = 1 + n_users + j
            bias[bi] += step * (g - reg_user_bias[i] * bias[bi])
            bias[cj] += step * (g - reg_item_bias[j] * bias[cj])


def fit_sgd(
    spec: PMF,
    data: RatingsData,
    *,
    learning_rate: float | None = None,
    decay: float = 0.02,
    epochs: int = 100,
    tol: float | None = None,
    init_sd: float = 0.1,
    shuffle: bool = True,
    random_seed: Any = None,
    progressbar: bool = True,
) -> FitResult:
    r"""MAP of a fixed-prior, normal PMF (identity or logistic link) by per-rating SGD.

    Parameters
    ----------
    spec : PMF
        ``priors="fixed"``, ``likelihood="normal"``.
    data : RatingsData
        Training ratings.
    learning_rate : float, optional
        Initial step size. Default 0.02 for the identity link; 0.3 for the logistic link,
        whose residuals are on the [0, 1] scale and whose gradient carries a factor
        :math:`g(1-g) \le 1/4`, so steps of the same effect need to be ~15 times larger.
    decay : float
        Step size at epoch ``e`` is ``learning_rate / (1 + decay * e)``; 0 keeps it constant.
    epochs : int
        Number of passes over the ratings (the maximum, when ``tol`` is given).
    tol : float, optional
        Stop early when the relative change of the objective over an epoch is below
        ``tol`` (a `ConvergenceWarning` if that never happens). Default: run all epochs.
    init_sd : float
        Sd of the random starting factors.
    shuffle : bool
        Visit ratings in a new random order each epoch (else in data order).
    random_seed : int, numpy.random.Generator or None
        Seed of the start and the shuffles.
    progressbar : bool
        tqdm bar over epochs.

    Returns
    -------
    FitResult
        One chain, one draw. ``info``: ``fit_seconds``, ``iterations`` (epochs run),
        ``objective`` (:math:`E` at the start and after each epoch), ``converged`` (True
        when ``tol`` is None and all epochs ran), ``final_objective``, ``collapsed``,
        ``learning_rate``, ``decay``, ``random_seed`` (an int that repeats the run).
    """
    check_inputs(spec, data, "sgd")
    seed = base_seed(random_seed)
    if learning_rate is None:
        learning_rate = _DEFAULT_RATE[spec.link]
    learning_rate = float(validate_positive("learning_rate", learning_rate))  # type: ignore[arg-type]
    if isinstance(decay, bool) or not isinstance(decay, (int, float)) or not np.isfinite(decay) or decay < 0:
        raise ValueError(f"decay must be a finite number >= 0, got {decay!r}")
    epochs = validate_positive_int("epochs", epochs)
    if tol is not None:
        tol = float(validate_positive("tol", tol))  # type: ignore[arg-type]
    init_sd = float(validate_positive("init_sd", init_sd))  # type: ignore[arg-type]
    if not isinstance(shuffle, bool):
        raise TypeError(f"shuffle must be True or False, got {shuffle!r}")
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    lam = spec.lambdas(data.scale)
    start = initial_point(spec, data, rng, init_sd)
    U, V = start["U"], start["V"]
    n_users, n_items = data.n_users, data.n_items
    bias = np.zeros(1 + n_users + n_items)
    if spec.biases:
        bias[0] = float(start["mu"])
    counts_u = np.maximum(data.user_counts(), 1).astype(np.float64)
    counts_i = np.maximum(data.item_counts(), 1).astype(np.float64)
    reg_user, reg_item = lam["lambda_u"] / counts_u, lam["lambda_v"] / counts_i
    reg_user_bias, reg_item_bias = lam["lambda_bias"] / counts_u, lam["lambda_bias"] / counts_i
    user_idx = np.ascontiguousarray(data.user_idx)
    item_idx = np.ascontiguousarray(data.item_idx)
    target = np.ascontiguousarray(to_unit(np.asarray(data.rating), data.scale, spec.link), dtype=np.float64)
    logistic = spec.link == "logistic"

    def energy() -> float:
        kw: dict[str, Any] = {}
        if spec.biases:
            kw = dict(
                mu=bias[0],
                user_bias=bias[1 : 1 + n_users],
                item_bias=bias[1 + n_users :],
                lambda_bias=lam["lambda_bias"],
            )
        return objective(U, V, data, lam["lambda_u"], lam["lambda_v"], link=spec.link, **kw)

    history = [energy()]
    converged = False
    order = np.arange(data.n_ratings)
    bar = tqdm(range(epochs), desc="SGD", unit="epoch", disable=not progressbar, leave=False)
    for epoch in bar:
        if shuffle:
            order = rng.permutation(data.n_ratings)
        step = learning_rate / (1.0 + decay * epoch)
        _sgd_epoch(
            order, user_idx, item_idx, target, U, V, bias,
            reg_user, reg_item, reg_user_bias, reg_item_bias,
            step, logistic, spec.biases,
        )  # fmt: skip
        value = energy()
        if not np.isfinite(value):
            raise FloatingPointError(
                f"SGD diverged at epoch {epoch} (objective {value}); lower learning_rate "
                f"(now {learning_rate:g})"
            )
        previous = history[-1]
        history.append(value)
        bar.set_postfix(objective=f"{value:.6g}", refresh=False)
        if tol is not None and abs(previous - value) <= tol * max(abs(value), np.finfo(float).tiny):
            converged = True
            break
    bar.close()
    seconds = time.perf_counter() - started
    if tol is None:
        converged = True  # a fixed number of epochs was asked for and run
    elif not converged:
        warnings.warn(
            f"SGD ran all epochs={epochs} before the relative objective change fell below "
            f"tol={tol:g}; raise epochs (or accept an approximate minimum)",
            ConvergenceWarning,
            stacklevel=2,
        )
    params: dict[str, Any] = {"U": U, "V": V}
    if spec.biases:
        params.update(mu=bias[0], user_bias=bias[1 : 1 + n_users], item_bias=bias[1 + n_users :])
    return iterative_result(
        spec,
        data,
        params,
        "sgd",
        seconds=seconds,
        history=history,
        converged=converged,
        learning_rate=learning_rate,
        decay=decay,
        random_seed=seed,
    )
