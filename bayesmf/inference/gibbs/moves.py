r"""The extra moves of the sweep, each a block of its own.

A move is a callable ``move(state, variates, rng)`` that leaves the posterior invariant,
built from the `Problem` (and the likelihood block, for a move that reads the responses)
and declaring by ``applies(problem)`` what it needs (biases, a
hierarchical prior, the per-side prior); `bayesmf.inference.gibbs.sweep` lists the moves
that apply, in a fixed order. A move that changes the latent scores either carries
``state.sse`` along or sets ``state.sse_stale``.

Under implicit feedback (`bayesmf.inference.gibbs.implicit`): `BiasShift`, `SideShift` and
`RescaleSides` leave every latent score unchanged and are drawn from priors alone, so they
hold for any likelihood; `CollapsedBiasScale` and `SparseScaleMoves` integrate or move
along the rating likelihood (per-row rating counts, the rating SSE) and do not apply.

`CollapsedBiasScale` and `SparseScaleMoves` read the chain's current responses through the
likelihood block (`GaussianLikelihood.ratings`): the training ratings, or under the probit
(`bayesmf.inference.gibbs.probit`) the latent :math:`z` of that sweep, never its 0/1 labels.

- `BiasShift`: :math:`(\mu, b, c)` along the directions the likelihood cannot see.
- `SideShift`: per side, each side's factors and mean, the other side's biases compensating.
- `RescaleSides`: per side, each factor's scale traded between users and items.
- `CollapsedBiasScale`: per side, each bias variance with its biases integrated out.
- `SparseScaleMoves`: shared scales, each prior variance with the sparse rows it governs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from bayesmf.inference.gibbs.block import Block
from bayesmf.inference.gibbs.kernels.bias_var import collapsed_bias_vars
from bayesmf.inference.gibbs.kernels.rescale import exp_cosh_fill, rescale_sides
from bayesmf.inference.gibbs.kernels.scale_moves import sparse_scale_moves
from bayesmf.inference.gibbs.kernels.shifts import shift_biases, shift_side
from bayesmf.inference.gibbs.kernels.structs import ITEM_BIAS_VAR, MU, SIGMA2, USER_BIAS_VAR, Marks

if TYPE_CHECKING:
    from bayesmf.inference.gibbs.kernels.structs import Ratings
    from bayesmf.inference.gibbs.likelihood import GaussianLikelihood
    from bayesmf.inference.gibbs.problem import Problem
    from bayesmf.inference.gibbs.state import ChainState
    from bayesmf.inference.gibbs.variates import Variates

__all__ = [
    "SPARSE_ROW_RATINGS",
    "BiasShift",
    "CollapsedBiasScale",
    "RescaleSides",
    "SideShift",
    "SparseScaleMoves",
    "exp_cosh_draws",
]

#: rows with at most this many training ratings are moved with their prior scale by
#: `SparseScaleMoves` (their factors and biases are mostly prior)
SPARSE_ROW_RATINGS = 10
#: uniforms handed to one slice-sampling step (level, placement, split, then shrinkages)
_SLICE_UNIFORMS = 64


class _Move(Block):
    """A move: a block with ``applies(problem)`` saying whether the spec needs it."""


class BiasShift(_Move):
    r"""Shift of :math:`(\mu, b, c)` (`shift_biases`); needs biases. Variates: ``variates.shift``."""

    kernel = shift_biases

    @staticmethod
    def applies(problem: Problem) -> bool:
        """With biases."""
        return problem.has_bias

    def __call__(self, state: ChainState, variates: Variates, rng: np.random.Generator) -> None:
        """Draw the shift and apply it."""
        self._kernel(state.params, self.problem.hyper, variates.shift)


class SideShift(_Move):
    """Per-side prior with biases: the users' factors and mean, then the items' (`shift_side`).

    Variates: ``variates.side[2]``, ``[3]``.
    """

    kernel = shift_side

    @staticmethod
    def applies(problem: Problem) -> bool:
        """Per-side prior, with biases."""
        return problem.per_side and problem.has_bias

    def __call__(self, state: ChainState, variates: Variates, rng: np.random.Generator) -> None:
        """Shift each side in turn."""
        kappa = self.problem.kappa
        self._kernel(state.user, state.P_item, state.prec_item[0], kappa, variates.side[2])
        self._kernel(state.item, state.P_user, state.prec_user[0], kappa, variates.side[3])


def exp_cosh_draws(rng: np.random.Generator, lam: np.ndarray) -> np.ndarray:
    r"""Exact draws from the densities :math:`\propto e^{-\lambda_k \cosh u}`, one per ``lam``.

    Rejection from the Gaussian envelope :math:`e^{-\lambda} e^{-\lambda u^2 / 2}`, which
    bounds the target everywhere (:math:`\cosh u \ge 1 + u^2/2`); a proposal is kept with
    probability :math:`e^{-\lambda(\cosh u - 1 - u^2/2)}` (compiled: `exp_cosh_fill`). The
    acceptance rate is :math:`2 K_0(\lambda) e^{\lambda} \sqrt{\lambda / 2\pi}`: 0.89 at
    :math:`\lambda = 0.7`, 0.38 at 0.01, 0.011 at :math:`10^{-6}`.
    """
    lam = np.ascontiguousarray(lam, dtype=np.float64)
    return exp_cosh_fill(rng, lam, np.empty(lam.shape[0]))


class RescaleSides(_Move):
    r"""Per-side prior: move each factor's scale between users and items, exactly.

    Under ``factor_prior="per_side"``, scaling column k of U, its mean and sd by
    :math:`a` and column k of V, its mean and sd by :math:`1/a` leaves the likelihood
    unchanged (every :math:`U_i \cdot V_j` is kept), and the rows' and means' normal priors
    with their Jacobians cancel; only the two inverse-gamma priors
    :math:`\mathrm{IG}(a_f, b_f)` of the variances :math:`v_{U,k}, v_{V,k}` see :math:`a`.
    With Haar measure :math:`da/a` (Liu & Sabatti 2000), :math:`s = \log a^2` has the
    conditional

    .. math::

        \pi(s) \propto \exp(-A e^{-s} - B e^{s}), \quad A = b_f / v_{U,k},\ B = b_f / v_{V,k},

    that is :math:`s = \tfrac12 \log(A/B) + u` with :math:`u \propto e^{-2\sqrt{AB}\cosh u}`,
    drawn exactly (`exp_cosh_draws`; the move compiled: `rescale_sides`). Without this move
    the split of each factor's scale between the two sides is set by those weak priors
    alone and drifts in a slow random walk (``benchmarks/RESULTS.md``, "Gibbs extra moves"). Without ``per_factor_scales`` each side has one
    variance, and one :math:`a` scales every column.
    """

    kernel = rescale_sides

    @staticmethod
    def applies(problem: Problem) -> bool:
        """Per-side prior."""
        return problem.per_side

    def __call__(self, state: ChainState, variates: Variates, rng: np.random.Generator) -> None:
        """Draw the scales and apply them (`rescale_sides`)."""
        problem = self.problem
        self._kernel(rng, state.user, state.item, problem.start, problem.hyper.factor.b, problem.per_factor)


class _ResponseMove(_Move):
    """A move along the Gaussian likelihood of the responses, read from the likelihood block.

    ``likelihood``: the sweep's likelihood block, whose `GaussianLikelihood.ratings` gives
    the chain's current responses; None reads the training ratings (``problem.ratings``),
    refused for binary data, whose ratings are labels, not responses.
    """

    def __init__(self, problem: Problem, likelihood: GaussianLikelihood | None = None) -> None:
        super().__init__(problem)
        if likelihood is None and problem.binary:
            raise ValueError(
                f"{type(self).__name__} of binary data needs the likelihood block (its latent responses), got None"
            )
        self.likelihood = likelihood

    def responses(self, state: ChainState) -> Ratings:
        """Return the chain's current responses, by user and by item."""
        return self.problem.ratings if self.likelihood is None else self.likelihood.ratings(state)


class CollapsedBiasScale(_ResponseMove):
    r"""Per-side prior with biases: each side's bias variance with its biases integrated out.

    Items, then users (`collapsed_bias_vars`: per side a slice-sampling step on the log
    variance, then the biases given it; one pass through the factors serves both sides).
    Drawing the variance given the biases and the biases given the variance mixes slowly
    under this prior, where the spread of the item offsets trades with the side means
    (:math:`c_j + m_U \cdot V_j`); see ``benchmarks/RESULTS.md``, "Gibbs extra moves". The
    biases move; the kernel returns the change of the residual sum of squares they make, so
    ``state.sse`` is carried along exactly (left stale if it was stale before).
    """

    kernel = collapsed_bias_vars

    @staticmethod
    def applies(problem: Problem) -> bool:
        """Per-side prior, with biases; not implicit (its collapsed density is the Gaussian responses')."""
        return problem.per_side and problem.has_bias and not problem.implicit

    def __call__(self, state: ChainState, variates: Variates, rng: np.random.Generator) -> None:
        """Redraw the item side's, then the user side's (`collapsed_bias_vars`)."""
        u_item, z_item = rng.random(_SLICE_UNIFORMS), rng.standard_normal(state.P_item.shape[0])
        u_user, z_user = rng.random(_SLICE_UNIFORMS), rng.standard_normal(state.P_user.shape[0])
        scalars = state.scalars
        item_var, user_var, d_sse = self._kernel(
            self.responses(state), state.P_user, state.P_item, scalars[MU], scalars[SIGMA2],
            scalars[ITEM_BIAS_VAR], scalars[USER_BIAS_VAR], self.problem.hyper.bias, u_item, z_item, u_user, z_user,
        )
        scalars[ITEM_BIAS_VAR], scalars[USER_BIAS_VAR] = item_var, user_var
        state.item.prec[0], state.user.prec[0] = 1.0 / item_var, 1.0 / user_var
        state.sse = max(float(state.sse + d_sse), 0.0)


class SparseScaleMoves(_ResponseMove):
    r"""Move each prior variance together with the rows it governs that have few ratings.

    Rows with at most `SPARSE_ROW_RATINGS` ratings are mostly prior: given the variance
    :math:`v` they are drawn near :math:`\mathcal N(0, v)`, and given them :math:`v` is
    pinned near their sum of squares, so the two drift together in small steps. This move
    scales those rows by :math:`t` and :math:`v` by :math:`t^2`, a direction their priors
    do not resist; it is an exact update of :math:`\log\sqrt v` with the scaled rows
    :math:`x/\sqrt v` held fixed, one slice-sampling step. Its effect on the mixing of the
    factor and bias sds on sparse data: ``benchmarks/RESULTS.md``, "Gibbs extra moves".

    In turn (`sparse_scale_moves`): the shared factor variance with the marked rows'
    factors of both sides (with ``per_factor_scales``, each factor's variance with that
    factor's column), then the item-bias variance with the marked items' biases, and the
    user-bias variance with the marked users'. Carries ``state.sse`` along exactly.
    """

    kernel = sparse_scale_moves

    @staticmethod
    def applies(problem: Problem) -> bool:
        """Hierarchical priors but the per-side one; not implicit (its density is the responses' SSE's)."""
        return problem.hierarchical and not problem.per_side and not problem.implicit

    def __init__(self, problem: Problem, likelihood: GaussianLikelihood | None = None) -> None:
        super().__init__(problem, likelihood)
        self.marks = Marks(
            *((problem.counts(side) <= SPARSE_ROW_RATINGS).astype(np.uint8) for side in ("user", "item"))
        )

    def __call__(
        self, state: ChainState, variates: Variates | None, rng: np.random.Generator, only: int = -1
    ) -> None:
        """Run the moves (``only``: one kind alone, 0 factor, 1 item bias, 2 user bias; for tests)."""
        problem = self.problem
        n_moves = (problem.n_factors if problem.per_factor else 1) + 2 * int(problem.has_bias)
        state.sse = float(
            self._kernel(
                self.responses(state), state.params, problem.hyper, self.marks, problem.has_bias, problem.per_factor,
                rng.random((n_moves, _SLICE_UNIFORMS)), state.sse, only,
            )
        )
