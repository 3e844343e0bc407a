r"""The regularized squared-error objective that MAP under fixed priors minimizes.

.. math::

    E = \frac12 \sum_{(i,j) \in \Omega} (R_{ij} - \hat R_{ij})^2
        + \frac{\lambda_U}{2} \sum_i \lVert U_i \rVert^2
        + \frac{\lambda_V}{2} \sum_j \lVert V_j \rVert^2
        + \frac{\lambda_b}{2} \Big(\sum_i b_i^2 + \sum_j c_j^2\Big)

with :math:`\hat R_{ij} = g(\mu + b_i + c_j + U_i \cdot V_j)`. For the PyMC model of
``PMF(priors="fixed")`` (`bayesmf.model.build_model`), :math:`E = -\sigma^2 \log p(\theta
\mid R) + \text{const}` with :math:`\lambda_U = \sigma^2/\sigma_U^2` etc.
(`bayesmf.PMF.lambdas`), so find_MAP, ALS and SGD all minimize the same function. The
global mean :math:`\mu` is not penalized (flat prior).

With ``link="logistic"`` the ratings are first rescaled to [0, 1] (`bayesmf.link.to_unit`)
and :math:`g` is the logistic function, as in Salakhutdinov & Mnih (2008), sec. 2.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from bayesmf._kernels_pairs import pair_dots
from bayesmf._validate import validate_choice, validate_positive
from bayesmf.link import to_unit, unit_mean

if TYPE_CHECKING:
    from bayesmf.data import RatingsData

__all__ = ["latent_scores", "objective"]


def latent_scores(
    U: np.ndarray,
    V: np.ndarray,
    user_idx: np.ndarray,
    item_idx: np.ndarray,
    *,
    mu: float | None = None,
    user_bias: np.ndarray | None = None,
    item_bias: np.ndarray | None = None,
) -> np.ndarray:
    r"""Latent scores :math:`\eta_n = \mu + b_{u_n} + c_{v_n} + U_{u_n} \cdot V_{v_n}` of index pairs.

    Parameters
    ----------
    U, V : numpy.ndarray
        Factors, shapes ``(n_users, K)`` and ``(n_items, K)``.
    user_idx, item_idx : numpy.ndarray
        Integer index pairs.
    mu, user_bias, item_bias : optional
        Global mean and offsets; absent terms count as 0.

    Returns
    -------
    numpy.ndarray
        float64, one score per pair.
    """
    U = np.ascontiguousarray(U, dtype=np.float64)
    V = np.ascontiguousarray(V, dtype=np.float64)
    if U.ndim != 2 or V.ndim != 2 or U.shape[1] != V.shape[1]:
        raise ValueError(f"U and V must be 2-d with the same number of factors, got {U.shape} and {V.shape}")
    eta = pair_dots(
        U,
        V,
        np.ascontiguousarray(user_idx, dtype=np.int64),
        np.ascontiguousarray(item_idx, dtype=np.int64),
    )
    if mu is not None:
        eta += float(mu)
    if user_bias is not None:
        eta += np.asarray(user_bias, dtype=np.float64)[user_idx]
    if item_bias is not None:
        eta += np.asarray(item_bias, dtype=np.float64)[item_idx]
    return eta


def objective(
    U: np.ndarray,
    V: np.ndarray,
    data: RatingsData,
    lambda_u: float,
    lambda_v: float,
    *,
    mu: float | None = None,
    user_bias: np.ndarray | None = None,
    item_bias: np.ndarray | None = None,
    lambda_bias: float | None = None,
    link: str = "identity",
) -> float:
    r"""Evaluate the PMF objective :math:`E` (see the module docstring) at the given parameters.

    Parameters
    ----------
    U, V : numpy.ndarray
        User factors ``(n_users, K)`` and item factors ``(n_items, K)``.
    data : RatingsData
        The observed ratings :math:`\Omega`.
    lambda_u, lambda_v : float
        Regularization weights of the factors (``PMF.lambdas(scale)``).
    mu : float, optional
        Global mean (unpenalized); omitted for the model without biases.
    user_bias, item_bias : numpy.ndarray, optional
        Offsets, penalized by ``lambda_bias`` (required when either is given).
    lambda_bias : float, optional
        Regularization weight of the offsets.
    link : {"identity", "logistic"}
        Mean function; ``"logistic"`` compares :math:`\mathrm{logistic}(\eta)` with the
        ratings rescaled to [0, 1].

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> from bayesmf import simulate, objective
    >>> sim = simulate(n_users=20, n_items=10, n_factors=2, seed=0, biases=False)
    >>> e0 = objective(np.zeros((20, 2)), np.zeros((10, 2)), sim.data, 1.0, 1.0)
    >>> bool(np.isclose(e0, 0.5 * np.sum(sim.data.rating**2)))
    True
    """
    validate_choice("link", link, ("identity", "logistic"))
    validate_positive("lambda_u", lambda_u)
    validate_positive("lambda_v", lambda_v)
    U = np.asarray(U, dtype=np.float64)
    V = np.asarray(V, dtype=np.float64)
    if U.shape[0] != data.n_users or V.shape[0] != data.n_items:
        raise ValueError(
            f"U has {U.shape[0]} rows and V {V.shape[0]}, but the data have "
            f"{data.n_users} users and {data.n_items} items"
        )
    has_bias = user_bias is not None or item_bias is not None
    if has_bias:
        if user_bias is None or item_bias is None or lambda_bias is None:
            raise ValueError("user_bias, item_bias and lambda_bias must be given together")
        validate_positive("lambda_bias", lambda_bias)
    eta = latent_scores(
        U, V, data.user_idx, data.item_idx, mu=mu, user_bias=user_bias, item_bias=item_bias
    )
    target = to_unit(np.asarray(data.rating), data.scale, link)
    resid = target - unit_mean(eta, link)
    # sums of squares without BLAS (a BLAS dot may spawn threads that fight for the cores)
    value = 0.5 * float(np.sum(resid * resid))
    value += 0.5 * lambda_u * float(np.sum(U * U)) + 0.5 * lambda_v * float(np.sum(V * V))
    if has_bias:
        b = np.asarray(user_bias, dtype=np.float64)
        c = np.asarray(item_bias, dtype=np.float64)
        value += 0.5 * float(lambda_bias) * (float(np.sum(b * b)) + float(np.sum(c * c)))  # type: ignore[arg-type]
    return value
