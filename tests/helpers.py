"""Fake posteriors for tests of prediction, recommendation, metrics and plots.

A `FitResult` is built directly from random arrays through `bayesmf.posterior.make_posterior`
(as arviz-stats' tests/helpers.py builds fake DataTrees), so these tests do not depend on
any sampler. `exact_user_posterior` draws the exact Gaussian conditional posterior of the
user factors when everything else is known: an independent route to a true posterior.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bayesmf.data import IdEncoder, RatingsData
from bayesmf.posterior import make_posterior, param_names
from bayesmf.results import FitResult
from bayesmf.spec import PMF


def fake_train(
    n_users: int = 30,
    n_items: int = 20,
    density: float = 0.3,
    scale: tuple[float, float] = (1.0, 5.0),
    seed: int = 0,
    string_ids: bool = False,
) -> RatingsData:
    """Random integer ratings on ``scale``; every user and item has at least one."""
    rng = np.random.default_rng(seed)
    cells = rng.random((n_users, n_items)) < density
    cells[np.arange(n_users), rng.integers(0, n_items, n_users)] = True
    cells[rng.integers(0, n_users, n_items), np.arange(n_items)] = True
    user_idx, item_idx = np.nonzero(cells)
    low, high = scale
    rating = rng.integers(int(low), int(high) + 1, size=len(user_idx)).astype(float)
    if string_ids:
        users = IdEncoder("user", np.asarray([f"u{i:03d}" for i in range(n_users)], dtype=object))
        items = IdEncoder("item", np.asarray([f"m{j:03d}" for j in range(n_items)], dtype=object))
    else:
        users = IdEncoder("user", np.arange(100, 100 + n_users, dtype=np.int64))
        items = IdEncoder("item", np.arange(500, 500 + n_items, dtype=np.int64))
    return RatingsData(user_idx, item_idx, rating, scale, users, items)


def fake_draws(
    spec: PMF,
    train: RatingsData,
    n_chains: int = 2,
    n_draws: int = 50,
    seed: int = 0,
    factor_sd: float = 0.5,
    sigma: float = 0.8,
    jitter: float | None = None,
) -> dict[str, np.ndarray]:
    """Random draws of every variable of ``spec``'s layout, shapes (chain, draw, ...).

    Default: every draw independent (a posterior as wide as the prior). With ``jitter``,
    U, V and the biases are one random centre plus ``jitter`` x N(0, 1) per draw: a
    concentrated posterior whose items really differ.
    """
    rng = np.random.default_rng(seed)
    cd = (n_chains, n_draws)
    K = spec.n_factors
    low, high = train.scale
    draws: dict[str, Any] = {
        "U": rng.normal(0, factor_sd, (*cd, train.n_users, K)),
        "V": rng.normal(0, factor_sd, (*cd, train.n_items, K)),
        "mu": (low + high) / 2 + rng.normal(0, 0.05, cd) if spec.link == "identity" else rng.normal(0, 0.05, cd),
        "user_bias": rng.normal(0, 0.3, (*cd, train.n_users)),
        "item_bias": rng.normal(0, 0.3, (*cd, train.n_items)),
        "sigma": np.abs(sigma + rng.normal(0, 0.02, cd)) if spec.link == "identity" else np.abs(sigma / (high - low) + rng.normal(0, 0.005, cd)),
        "sigma_factor": np.abs(factor_sd + rng.normal(0, 0.02, (*cd, K) if spec.per_factor_scales else cd)),
        "sigma_factor_user": np.abs(factor_sd + rng.normal(0, 0.02, (*cd, K) if spec.per_factor_scales else cd)),
        "sigma_factor_item": np.abs(factor_sd + rng.normal(0, 0.02, (*cd, K) if spec.per_factor_scales else cd)),
        "factor_mean_user": rng.normal(0, 0.02, (*cd, K)),
        "factor_mean_item": rng.normal(0, 0.02, (*cd, K)),
        "sigma_user_bias": np.abs(0.3 + rng.normal(0, 0.02, cd)),
        "sigma_item_bias": np.abs(0.3 + rng.normal(0, 0.02, cd)),
    }
    if jitter is not None:
        for name in ("U", "V", "user_bias", "item_bias"):
            centre = draws[name][0, 0]
            draws[name] = centre + jitter * rng.standard_normal(draws[name].shape)
    if spec.likelihood == "ordinal":
        levels = train.levels
        assert levels is not None
        base = np.linspace(-2.5, 2.5, len(levels) - 1)
        draws["cutpoints"] = np.sort(base + rng.normal(0, 0.1, (*cd, len(levels) - 1)), axis=-1)
    return {k: v for k, v in draws.items() if k in param_names(spec)}


def fake_result(
    spec: PMF | None = None,
    *,
    n_users: int = 30,
    n_items: int = 20,
    n_chains: int = 2,
    n_draws: int = 50,
    method: str = "gibbs",
    seed: int = 0,
    train: RatingsData | None = None,
    **draw_kw: Any,
) -> FitResult:
    """A `FitResult` with random draws; ``method`` in ("map", "als", "sgd") makes one draw."""
    spec = spec or PMF(n_factors=3)
    train = train if train is not None else fake_train(n_users, n_items, seed=seed)
    if method in ("map", "als", "sgd"):
        n_chains = n_draws = 1
    draws = fake_draws(spec, train, n_chains, n_draws, seed=seed + 1, **draw_kw)
    idata = make_posterior(spec, train, draws, attrs={"method": method})
    return FitResult(spec=spec, idata=idata, method=method, train=train, info={})


def known_truth_result(
    spec: PMF,
    train: RatingsData,
    truth: dict[str, np.ndarray],
    n_draws: int,
    user_draws: dict[str, np.ndarray] | None = None,
    method: str = "gibbs",
) -> FitResult:
    """A result whose V, item biases, mu and sigma are the truth in every draw.

    ``user_draws`` holds ``U`` (S, n_users, K) and ``user_bias`` (S, n_users); default: the
    truth repeated.
    """
    S = n_draws
    rep = lambda a: np.broadcast_to(np.asarray(a, dtype=float), (1, S, *np.shape(a))).copy()  # noqa: E731
    draws = {
        "V": rep(truth["V"]),
        "item_bias": rep(truth["item_bias"]),
        "mu": rep(truth["mu"]),
        "sigma": rep(truth["sigma"]),
    }
    if user_draws is None:
        draws["U"] = rep(truth["U"])
        draws["user_bias"] = rep(truth["user_bias"])
    else:
        draws["U"] = user_draws["U"][None]
        draws["user_bias"] = user_draws["user_bias"][None]
    idata = make_posterior(spec, train, draws, attrs={"method": method})
    return FitResult(spec=spec, idata=idata, method=method, train=train, info={})


def exact_user_posterior(
    train: RatingsData,
    truth: dict[str, np.ndarray],
    sigma_u: float,
    sigma_b: float,
    n_draws: int,
    seed: int,
) -> dict[str, np.ndarray]:
    r"""Exact draws of (U_i, b_i) given V, item biases, mu, sigma (fixed Gaussian priors).

    Written independently of `bayesmf.recommend.fold_in` (explicit inverse and
    ``multivariate_normal``): with :math:`x_i = (U_i, b_i)`, design rows :math:`(V_j, 1)`,

    .. math:: \Sigma_i = (D^{-1} + X^T X / \sigma^2)^{-1},\quad
              m_i = \Sigma_i X^T (r - \mu - c) / \sigma^2 .
    """
    rng = np.random.default_rng(seed)
    V, c, mu, sigma = truth["V"], truth["item_bias"], float(truth["mu"]), float(truth["sigma"])
    n_users, K = train.n_users, V.shape[1]
    U_draws = np.empty((n_draws, n_users, K))
    b_draws = np.empty((n_draws, n_users))
    prior_prec = np.diag([1 / sigma_u**2] * K + [1 / sigma_b**2])
    for i in range(n_users):
        sel = train.user_idx == i
        items = train.item_idx[sel]
        X = np.column_stack([V[items], np.ones(len(items))])
        y = train.rating[sel] - mu - c[items]
        cov = np.linalg.inv(prior_prec + X.T @ X / sigma**2)
        mean = cov @ X.T @ y / sigma**2
        x = rng.multivariate_normal(mean, cov, size=n_draws)
        U_draws[:, i] = x[:, :K]
        b_draws[:, i] = x[:, K]
    return {"U": U_draws, "user_bias": b_draws}
