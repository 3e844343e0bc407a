r"""The ordered-probit likelihood block: star ratings as ordered levels, by data augmentation.

For ``PMF(likelihood="ordinal", link="probit")`` each rating is one of the levels
:math:`\ell_0 < \dots < \ell_{L-1}` (``RatingsData.levels``), and with cutpoints
:math:`c_0 < \dots < c_{L-2}` (:math:`c_{-1} = -\infty`, :math:`c_{L-1} = \infty`)

.. math::

    P(r_{ij} = \ell_k) = \Phi(c_k - \eta_{ij}) - \Phi(c_{k-1} - \eta_{ij}), \qquad
    \eta_{ij} = b_i + c_j + U_i \cdot V_j \ (\text{biases optional, no global mean}),

equivalently :math:`r_{ij} = \ell_k \iff c_{k-1} < z_{ij} \le c_k` with
:math:`z_{ij} \sim \mathcal N(\eta_{ij}, 1)` (Albert & Chib 1993). There is no global mean:
a constant added to every :math:`\eta` and every cutpoint leaves the likelihood unchanged,
so the cutpoints absorb it (`bayesmf.posterior.param_names`). Prior: each cutpoint
:math:`\mathcal N(0, \tau^2)`, :math:`\tau` = `bayesmf.link.CUTPOINT_PRIOR_SD`, restricted to
the ordered set (the PyMC model's ``ordered`` transform; `bayesmf.model_ordinal`).

Each sampling sweep, `OrdinalLikelihood.augment`, given the rows:

1. with biases, the shift of the biases and the cutpoints along the directions the
   likelihood cannot see, :math:`b_i - \delta_b`, :math:`c_j - \delta_c`,
   :math:`c_k - \delta_b - \delta_c`, drawn exactly from the priors (`shift_biases`, the
   cutpoints' mean in place of :math:`-\mu`). The data pin :math:`c_k - \bar b - \bar c`
   tightly; without the shift the cutpoints and the biases' mean drift together in tiny steps;
2. each cutpoint from its conditional given :math:`\eta` with the :math:`z` integrated out
   (`bayesmf.inference.gibbs.kernels.cutpoints`: Metropolis-Hastings steps with Newton
   proposals), the collapsed move of Cowles (1996);
3. every :math:`z_{ij}` from :math:`\mathcal N(\eta_{ij}, 1)` cut to the interval of its
   level (`truncated_interval`), kept per chain in ``state.extra`` as the probit's.

Steps 1-3 update :math:`(\delta, c, z)` from their joint conditional given :math:`U, V`
and the data: 1 and 2 leave the posterior with :math:`z` integrated out invariant, and 3
draws :math:`z` from its exact conditional after them. Albert & Chib's own cutpoint step,
:math:`c_k \mid z` uniform between the largest :math:`z` of level :math:`k` and the
smallest of level :math:`k + 1`, mixes badly with many ratings: that gap shrinks like
:math:`1/N`, so each sweep moves a cutpoint by :math:`O(1/N)` while its posterior sd is
:math:`O(1/\sqrt N)`. Given :math:`\eta` alone the cutpoint's conditional has the width of
its posterior, so the collapsed step crosses it each sweep.

Then the row updates, the priors and the moves run on :math:`z` with noise variance 1,
as under the probit (`bayesmf.inference.gibbs.probit`): given :math:`z` the ratings and the
cutpoints add nothing about the rows. ``state.scalars[MU]`` is held at 0 and
``state.scalars[SIGMA2]`` at 1.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.stats import truncnorm

from bayesmf.inference.gibbs.kernels.cutpoints import CUTPOINT_UNIFORMS, update_cutpoints
from bayesmf.inference.gibbs.kernels.shifts import shift_biases
from bayesmf.inference.gibbs.kernels.structs import MU, SIGMA2, Hyper, Params
from bayesmf.inference.gibbs.kernels.truncnorm import (
    draw_interval,
    interval_log_likelihood,
    interval_means,
)
from bayesmf.inference.gibbs.kernels.typed import TypedKernel
from bayesmf.inference.gibbs.probit import ProbitLikelihood
from bayesmf.inference.gibbs.problem import Problem, build_problem
from bayesmf.link import CUTPOINT_PRIOR_SD, initial_cutpoints, level_codes, ordinal_levels

if TYPE_CHECKING:
    from bayesmf.data import RatingsData
    from bayesmf.inference.gibbs.state import ChainState
    from bayesmf.spec import PMF

__all__ = ["OrdinalLikelihood", "OrdinalProblem", "build_ordinal_problem", "padded_cutpoints"]


@dataclass(frozen=True)
class OrdinalProblem(Problem):
    """A `Problem` of ordinal ratings: ``ratings`` hold the rating values, ``levels`` the levels."""

    levels: np.ndarray | None = None


def build_ordinal_problem(spec: PMF, data: RatingsData) -> OrdinalProblem:
    """Build the `OrdinalProblem` of an ordered-probit ``spec`` on ``data``.

    Raises
    ------
    ValueError
        If the ratings are not on a regular grid of levels (`bayesmf.link.ordinal_levels`
        names a rating off every grid), or the grid holds fewer than two levels.
    """
    levels = ordinal_levels(data)
    base = build_problem(spec, data)
    return OrdinalProblem(**{f.name: getattr(base, f.name) for f in fields(base)}, levels=levels)


def padded_cutpoints(cutpoints: np.ndarray) -> np.ndarray:
    """Pad the cutpoints with -inf first and inf last: level ``k`` is ``(out[k], out[k + 1]]``."""
    return np.concatenate([[-np.inf], np.asarray(cutpoints, dtype=np.float64), [np.inf]])


def _interval_means(cuts: np.ndarray, codes: np.ndarray) -> np.ndarray:
    r""":math:`E[Z \mid a < Z \le b]` of a standard normal, per rating, for the interval of its level."""
    return np.asarray(truncnorm.mean(cuts[:-1], cuts[1:]))[codes]


class OrdinalLikelihood(ProbitLikelihood):
    r"""Ordered probit: :math:`r_{ij} = \ell_k \iff c_{k-1} < z_{ij} \le c_k`, :math:`z_{ij} \sim \mathcal N(\eta_{ij}, 1)`.

    See the module docstring. The chain's cutpoints live in ``state.extra["cutpoints"]``
    (padded: `padded_cutpoints`); the log-likelihood is the ordered probit's,
    :math:`\sum \log(\Phi(c_{k_n} - \eta_n) - \Phi(c_{k_n - 1} - \eta_n))`.
    """

    def __init__(self, problem: Problem) -> None:
        if not isinstance(problem, OrdinalProblem) or problem.levels is None:
            raise TypeError("the ordered-probit block needs an OrdinalProblem (build_ordinal_problem)")
        levels = problem.levels
        super().__init__(problem)
        n_levels = len(levels)
        self.codes = level_codes(self._labels, levels)
        self._order = np.argsort(self.codes, kind="stable")
        self._level_ptr = np.searchsorted(self.codes[self._order], np.arange(n_levels + 1)).astype(np.int64)
        self.prior_prec = 1.0 / CUTPOINT_PRIOR_SD**2
        self._start_cuts = padded_cutpoints(initial_cutpoints(self.codes, n_levels, link="probit"))
        self._level_hyper = Hyper(
            problem.hyper.sigma2, problem.hyper.factor, problem.hyper.bias, 0.0, (n_levels - 1) * self.prior_prec
        )
        self._draw_z = TypedKernel(draw_interval)
        self._means = TypedKernel(interval_means)
        self._update_cuts = TypedKernel(update_cutpoints)
        self._loglik = TypedKernel(interval_log_likelihood)
        self._shift = TypedKernel(shift_biases)

    def _latent(self, state: ChainState) -> tuple[np.ndarray, np.ndarray]:
        """Return the chain's latent responses; first: the cutpoints from the level shares, z their interval means."""
        extra = state.extra
        if "z_user" not in extra:
            state.scalars[MU] = 0.0
            state.scalars[SIGMA2] = 1.0
            extra["cutpoints"] = self._start_cuts.copy()
            extra["z_user"] = _interval_means(self._start_cuts, self.codes)
            extra["z_item"] = extra["z_user"][self._to_item]
            extra["eta"] = np.empty(self.problem.n_obs)
            extra["eta_by_level"] = np.empty(self.problem.n_obs)
            extra["uniforms"] = np.empty(self.problem.n_obs)
        return extra["z_user"], extra["z_item"]

    def _shift_level(self, state: ChainState, cuts: np.ndarray, rng: np.random.Generator) -> None:
        """Shift the biases and the cutpoints along the directions the likelihood cannot see (step 1)."""
        scalars = state.scalars.copy()
        start = -float(np.mean(cuts[1:-1]))  # plays mu: c_k - eta = (c_k + mu) - (mu + eta)
        scalars[MU] = start
        self._shift(Params(state.user, state.item, scalars, state.factor_var), self._level_hyper,
                    rng.standard_normal(2))
        cuts[1:-1] -= scalars[MU] - start

    def augment(self, state: ChainState, rng: np.random.Generator) -> None:
        """Shift the level, redraw the cutpoints (z integrated out), then every latent response."""
        z_user, z_item = self._latent(state)
        state.scalars[MU] = 0.0
        state.scalars[SIGMA2] = 1.0
        cuts = state.extra["cutpoints"]
        if self.problem.has_bias:
            self._shift_level(state, cuts, rng)
        eta = self._eta(state)
        by_level = state.extra["eta_by_level"]
        np.take(eta, self._order, out=by_level)
        u = rng.random((len(cuts) - 2, CUTPOINT_UNIFORMS))
        u += 2.0**-54  # uniforms on (0, 1)
        self._update_cuts(by_level, self._level_ptr, cuts, self.prior_prec, u)
        uniforms = state.extra["uniforms"]
        rng.random(out=uniforms)
        uniforms += 2.0**-54  # uniforms on (0, 1)
        self._draw_z(eta, self.codes, cuts, uniforms, z_user)
        np.take(z_user, self._to_item, out=z_item)

    def expect(self, state: ChainState) -> None:
        r"""Set every latent response to its mean in its level's interval given :math:`\eta` (the start's E step)."""
        z_user, z_item = self._latent(state)
        state.scalars[MU] = 0.0
        state.scalars[SIGMA2] = 1.0
        cuts = state.extra["cutpoints"]
        eta = self._eta(state)
        self._means(eta, self.codes, cuts, z_user)
        np.take(z_user, self._to_item, out=z_item)

    def log_likelihood(self, state: ChainState) -> float:
        r""":math:`\sum_n \log P(r_n \mid \eta_n, c)` over the training ratings at the current point."""
        return float(self._loglik(self._eta(state), self.codes, state.extra["cutpoints"]))

    def draws(self, state: ChainState) -> dict[str, Any]:
        """Return ``cutpoints``."""
        self._latent(state)
        return {"cutpoints": state.extra["cutpoints"][1:-1].copy()}
