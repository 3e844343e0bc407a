r"""MAP by alternating least squares (ALS), for fixed priors, identity link, normal likelihood.

Each sweep minimizes the PMF objective :math:`E` (`bayesmf.objective`) exactly over one block
of parameters with the others held fixed, so :math:`E` never increases:

1. users: for each user :math:`i`, with :math:`x_j = (V_j, 1)` (just :math:`V_j` without
   biases) and :math:`t_{ij} = R_{ij} - \mu - c_j`,

   .. math::

       (U_i, b_i) = \Big(\Lambda + \sum_{j \in \Omega_i} x_j x_j^\top\Big)^{-1}
                   \sum_{j \in \Omega_i} t_{ij} x_j,
       \qquad \Lambda = \mathrm{diag}(\lambda_U, \dots, \lambda_U, \lambda_b);

2. items: the same with the roles of users and items swapped (:math:`\lambda_V`);
3. the global mean: :math:`\mu = \operatorname{mean}(R_{ij} - b_i - c_j - U_i \cdot V_j)`
   (unpenalized).

The per-user Gram matrices and right-hand sides are accumulated and solved (Cholesky) in a
numba kernel over ratings grouped by user (and by item), with no per-rating outer-product
arrays and no Python loop over users. The kernels use no BLAS (and no numpy reductions
that would call it), so BLAS threads cannot fight over the cores here.
"""

from __future__ import annotations

import logging
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
from bayesmf.inference._rows import gram_and_rhs

if TYPE_CHECKING:
    from bayesmf.data import RatingsData
    from bayesmf.results import FitResult
    from bayesmf.spec import PMF

__all__ = ["als_sweeps", "fit_als"]

log = logging.getLogger("bayesmf")


@numba.njit(cache=True)
def _ridge_rows(
    indptr: np.ndarray,
    other_idx: np.ndarray,
    target: np.ndarray,
    features: np.ndarray,
    penalty: np.ndarray,
    out: np.ndarray,
) -> None:
    """Ridge solution of every row block: out[r] = (diag(penalty) + X_r'X_r)^-1 X_r' t_r.

    ``X_r`` stacks ``features[other_idx[p]]`` for ``p`` in ``indptr[r]:indptr[r+1]`` and
    ``t_r`` the matching ``target[p]``. The rows are gathered into a contiguous (k, n)
    buffer so the Gram sums are contiguous dot products; the Gram matrix (lower triangle)
    is solved by Cholesky in place; the penalty keeps it positive definite. Serial on
    purpose: with ``parallel=True`` a sweep ran many times slower whenever other processes
    held the cores (threads waiting on descheduled threads).
    """
    n_rows = indptr.shape[0] - 1
    k = features.shape[1]
    longest = 0
    for r in range(n_rows):
        longest = max(longest, indptr[r + 1] - indptr[r])
    X = np.empty((k, longest))
    t = np.empty(longest)
    gram = np.empty((k, k))
    rhs = np.empty(k)
    for r in range(n_rows):
        first = indptr[r]
        n = indptr[r + 1] - first
        for q in range(n):
            j = other_idx[first + q]
            t[q] = target[first + q]
            for a in range(k):
                X[a, q] = features[j, a]
        gram_and_rhs(X, t, n, gram, rhs)
        for a in range(k):
            gram[a, a] += penalty[a]
        # Cholesky factor L (lower triangle of gram, in place)
        for a in range(k):
            s = gram[a, a]
            for c in range(a):
                s -= gram[a, c] * gram[a, c]
            d = np.sqrt(s)
            gram[a, a] = d
            for b in range(a + 1, k):
                s = gram[b, a]
                for c in range(a):
                    s -= gram[b, c] * gram[a, c]
                gram[b, a] = s / d
        # solve L y = rhs, then L' x = y
        for a in range(k):
            s = rhs[a]
            for c in range(a):
                s -= gram[a, c] * rhs[c]
            rhs[a] = s / gram[a, a]
        for a in range(k - 1, -1, -1):
            s = rhs[a]
            for c in range(a + 1, k):
                s -= gram[c, a] * rhs[c]
            rhs[a] = s / gram[a, a]
        for a in range(k):
            out[r, a] = rhs[a]


@numba.njit(cache=True)
def _residuals(
    U: np.ndarray,
    V: np.ndarray,
    user_bias: np.ndarray,
    item_bias: np.ndarray,
    mu: float,
    user_idx: np.ndarray,
    item_idx: np.ndarray,
    rating: np.ndarray,
    out: np.ndarray,
) -> float:
    """Residuals R - mu - b - c - U.V into ``out``; returns their sum of squares."""
    k = U.shape[1]
    total = 0.0
    for n in range(rating.shape[0]):
        i = user_idx[n]
        j = item_idx[n]
        e = rating[n] - mu - user_bias[i] - item_bias[j]
        for f in range(k):
            e -= U[i, f] * V[j, f]
        out[n] = e
        total += e * e
    return total


class _Grouped:
    """Ratings sorted by one side (users or items), CSR-style."""

    def __init__(self, own_idx: np.ndarray, other_idx: np.ndarray, rating: np.ndarray, n_own: int):
        order = np.argsort(own_idx, kind="stable")
        self.indptr = np.zeros(n_own + 1, dtype=np.int64)
        np.cumsum(np.bincount(own_idx, minlength=n_own), out=self.indptr[1:])
        self.other_idx = np.ascontiguousarray(other_idx[order])
        self.rating = np.ascontiguousarray(rating[order])


def als_sweeps(
    data: RatingsData,
    start: dict[str, np.ndarray],
    lambda_u: float,
    lambda_v: float,
    lambda_bias: float | None,
    *,
    max_iter: int = 200,
    tol: float = 1e-6,
    progressbar: bool = False,
) -> tuple[dict[str, np.ndarray], list[float], bool]:
    r"""Run ALS sweeps from ``start`` until the relative change of :math:`E` is below ``tol``.

    Parameters
    ----------
    data : RatingsData
        Training ratings (identity link: ratings in their own units).
    start : dict
        ``U``, ``V`` and, for the model with biases, ``mu``, ``user_bias``, ``item_bias``
        (biases are used iff ``lambda_bias`` is not None).
    lambda_u, lambda_v, lambda_bias : float
        Regularization weights (``PMF.lambdas``).
    max_iter : int
        Maximum number of sweeps.
    tol : float
        Stop when :math:`(E_{t-1} - E_t) / E_t < \text{tol}`.
    progressbar : bool
        Show a tqdm bar over sweeps.

    Returns
    -------
    params : dict
        The estimates (same keys as ``start``).
    history : list of float
        :math:`E` at the start and after each sweep.
    converged : bool
        Whether the tolerance was met within ``max_iter`` sweeps.
    """
    biases = lambda_bias is not None
    rating = np.asarray(data.rating, dtype=np.float64)
    user_idx = np.asarray(data.user_idx)
    item_idx = np.asarray(data.item_idx)
    by_user = _Grouped(user_idx, item_idx, rating, data.n_users)
    by_item = _Grouped(item_idx, user_idx, rating, data.n_items)

    k = start["U"].shape[1]
    kp = k + 1 if biases else k
    U = np.array(start["U"], dtype=np.float64)
    V = np.array(start["V"], dtype=np.float64)
    mu = float(start["mu"]) if biases else 0.0
    b = np.array(start["user_bias"], dtype=np.float64) if biases else np.zeros(data.n_users)
    c = np.array(start["item_bias"], dtype=np.float64) if biases else np.zeros(data.n_items)
    pen_u = np.full(kp, lambda_u)
    pen_v = np.full(kp, lambda_v)
    if biases:
        pen_u[-1] = pen_v[-1] = float(lambda_bias)  # type: ignore[arg-type]
    feats_v = np.ones((data.n_items, kp))
    feats_u = np.ones((data.n_users, kp))
    sol_u = np.empty((data.n_users, kp))
    sol_v = np.empty((data.n_items, kp))

    resid = np.empty(data.n_ratings)

    def penalty() -> float:
        value = lambda_u * float(np.sum(U * U)) + lambda_v * float(np.sum(V * V))
        if biases:
            value += float(lambda_bias) * (float(np.sum(b * b)) + float(np.sum(c * c)))  # type: ignore[arg-type]
        return 0.5 * value

    def energy() -> float:
        return 0.5 * _residuals(U, V, b, c, mu, user_idx, item_idx, rating, resid) + penalty()

    history = [energy()]
    converged = False
    bar = tqdm(range(max_iter), desc="ALS", unit="sweep", disable=not progressbar, leave=False)
    for _ in bar:
        feats_v[:, :k] = V
        _ridge_rows(by_user.indptr, by_user.other_idx, by_user.rating - mu - c[by_user.other_idx], feats_v, pen_u, sol_u)
        U[:] = sol_u[:, :k]
        if biases:
            b[:] = sol_u[:, k]
        feats_u[:, :k] = U
        _ridge_rows(by_item.indptr, by_item.other_idx, by_item.rating - mu - b[by_item.other_idx], feats_u, pen_v, sol_v)
        V[:] = sol_v[:, :k]
        if biases:
            c[:] = sol_v[:, k]
            ssq = _residuals(U, V, b, c, mu, user_idx, item_idx, rating, resid)
            shift = float(resid.mean())
            mu += shift
            # residuals all move by -shift: no second pass over the ratings
            value = 0.5 * (ssq - rating.shape[0] * shift**2) + penalty()
        else:
            value = energy()
        previous = history[-1]
        history.append(value)
        bar.set_postfix(objective=f"{value:.6g}", refresh=False)
        if (previous - value) <= tol * max(abs(value), np.finfo(float).tiny):
            converged = True
            break
    bar.close()
    params = {"U": U, "V": V}
    if biases:
        params.update(mu=np.asarray(mu), user_bias=b, item_bias=c)
    return params, history, converged


def fit_als(
    spec: PMF,
    data: RatingsData,
    *,
    max_iter: int = 200,
    tol: float = 1e-5,
    init_sd: float = 0.1,
    random_seed: Any = None,
    progressbar: bool = True,
) -> FitResult:
    """MAP of a fixed-prior, identity-link, normal PMF by alternating least squares.

    Parameters
    ----------
    spec : PMF
        ``priors="fixed"``, ``link="identity"``, ``likelihood="normal"``.
    data : RatingsData
        Training ratings.
    max_iter : int
        Maximum number of sweeps (one sweep updates users, items, then the global mean).
    tol : float
        Stop when the relative decrease of the objective in a sweep is below ``tol``. ALS
        approaches the minimum slowly at the end, long after the held-out RMSE has settled
        (sweeps and RMSE on ML-100K: `benchmarks/RESULTS.md`, "MAP on ML-100K"). Use
        ~1e-14 to reach the minimum to find_MAP's precision.
    init_sd : float
        Sd of the random starting factors (they must not start at the U = V = 0 saddle).
    random_seed : int, numpy.random.Generator or None
        Seed of the start.
    progressbar : bool
        tqdm bar over sweeps.

    Returns
    -------
    FitResult
        One chain, one draw. ``info``: ``fit_seconds``, ``iterations``, ``objective``
        (:math:`E` at the start and after each sweep), ``converged``, ``final_objective``,
        ``collapsed``, ``tol``, ``max_iter``, ``random_seed`` (an int that repeats the run).
    """
    check_inputs(spec, data, "als")
    seed = base_seed(random_seed)
    max_iter = validate_positive_int("max_iter", max_iter)
    tol = float(validate_positive("tol", tol))  # type: ignore[arg-type]
    init_sd = float(validate_positive("init_sd", init_sd))  # type: ignore[arg-type]
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    lam = spec.lambdas(data.scale)
    start = initial_point(spec, data, rng, init_sd)
    params, history, converged = als_sweeps(
        data,
        start,
        lam["lambda_u"],
        lam["lambda_v"],
        lam["lambda_bias"] if spec.biases else None,
        max_iter=max_iter,
        tol=tol,
        progressbar=progressbar,
    )
    seconds = time.perf_counter() - started
    if not converged:
        warnings.warn(
            f"ALS stopped after max_iter={max_iter} sweeps before the relative objective change "
            f"fell below tol={tol:g}; raise max_iter",
            ConvergenceWarning,
            stacklevel=2,
        )
    return iterative_result(
        spec,
        data,
        params,
        "als",
        seconds=seconds,
        history=history,
        converged=converged,
        tol=tol,
        max_iter=max_iter,
        random_seed=seed,
    )
