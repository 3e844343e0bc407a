"""The standard variates each sweep draws before any block runs, in one fixed order.

Per sweep, a chain's generator draws, in this order: one standard normal per coordinate of
every user row, then of every item row (`Variates.user`, `Variates.item`); 3 scalar normals
(`mu`, then the 2 of the ``(mu, b, c)`` shift); under ``factor_prior="per_side"`` a (4, K)
block (each side's factor means, then each side's shift); then one standard gamma per
shape of `gamma_shapes`, in one call (`noise` for sigma^2, `factor` for the factor
variance(s), `bias` for the two bias variances). This is the order of the first sampler,
kept so that a seed gives the draws it always gave; variates a spec does not use are drawn
all the same (the scalar normals without biases, the gammas under fixed priors).

The blocks of the first sampler read their variates from here, by name. A new block draws
its own random numbers from the chain's generator when it runs (after these).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from bayesmf.inference.gibbs.kernels.typed import TypedKernel
from bayesmf.inference.gibbs.kernels.variates import fill_variates

if TYPE_CHECKING:
    from bayesmf.inference.gibbs.problem import Problem

__all__ = ["Variates", "allocate", "draw", "gamma_shapes"]

#: `fill_variates`, typed once: every `Variates` has the same argument types (`allocate`)
_fill = TypedKernel(fill_variates)


class Variates(NamedTuple):
    """One chain's buffers of standard variates, and named views of them."""

    user: np.ndarray  # (n_users, kp) normals of the user rows
    item: np.ndarray  # (n_items, kp)
    scalar: np.ndarray  # (3,) normals
    side: np.ndarray  # (4, K) normals: user mean, item mean, user shift, item shift; (0, K) unless per side
    gammas: np.ndarray  # one standard gamma per shape of gamma_shapes
    shapes: np.ndarray  # those shapes
    mu: np.ndarray  # view: scalar[:1]
    shift: np.ndarray  # view: scalar[1:]
    noise: np.ndarray  # view of gammas: the noise variance's
    factor: np.ndarray  # view of gammas: the factor variances' (user side's then item's, per side)
    bias: np.ndarray  # view of gammas: the user-bias then the item-bias variance's


def gamma_shapes(problem: Problem) -> np.ndarray:
    """Posterior shapes ``a + n/2`` of the inverse-gamma draws, in the order of `Variates`."""
    hyper, nu, ni, K = problem.hyper, problem.n_users, problem.n_items, problem.n_factors
    a_f = hyper.factor.a
    if problem.per_side:  # the user side's variance(s), then the item side's
        factor_shapes = [
            a_f + n / 2.0 * (1 if problem.per_factor else K)
            for n in (nu, ni)
            for _ in range(K if problem.per_factor else 1)
        ]
    elif problem.per_factor:
        factor_shapes = [a_f + (nu + ni) / 2.0] * K
    else:
        factor_shapes = [a_f + (nu + ni) * K / 2.0]
    shapes = [hyper.sigma2.a + problem.n_terms / 2.0, *factor_shapes]
    if problem.has_bias:
        shapes += [hyper.bias.a + nu / 2.0, hyper.bias.a + ni / 2.0]
    return np.array(shapes)


def allocate(problem: Problem) -> Variates:
    """Zeroed buffers for one chain (zeros: what a conditional-mean sweep uses)."""
    shapes = gamma_shapes(problem)
    scalar = np.zeros(3)
    gammas = np.zeros(shapes.shape[0])
    n_factor = 1 + (problem.n_factors if problem.per_factor else 1) * (2 if problem.per_side else 1)
    return Variates(
        user=np.zeros((problem.n_users, problem.kp)),
        item=np.zeros((problem.n_items, problem.kp)),
        scalar=scalar,
        side=np.zeros((4 if problem.per_side else 0, problem.n_factors)),
        gammas=gammas,
        shapes=shapes,
        mu=scalar[:1],
        shift=scalar[1:],
        noise=gammas[:1],
        factor=gammas[1:n_factor],
        bias=gammas[n_factor:],
    )


def draw(rng: np.random.Generator, variates: Variates) -> None:
    """Fill ``variates`` from ``rng`` in the order of the module docstring.

    By `fill_variates` (compiled: the same numbers as ``rng.standard_normal(out=...)`` on
    each buffer in turn, then ``rng.standard_gamma(shapes)``); ``side`` is empty (nothing
    drawn) unless per side. ``variates`` must come from `allocate` (the kernel is typed for
    its arrays on the first call).
    """
    _fill(rng, variates.user, variates.item, variates.scalar, variates.side, variates.shapes, variates.gammas)
