"""One Gibbs sweep, composed of blocks, and the configuration that lists them.

A step is a callable ``step(state, variates, rng)`` that updates the chain's `ChainState`
in place (`Step`). `build_sweep` lists, for a `Problem`, in this order:

1. the row updates of the users, then of the items (`RowUpdate`, overrelaxed);
2. the global mean (`GlobalMean`, with biases), the likelihood's fit statistic
   (`Likelihood.observe`), the shift of ``(mu, b, c)`` (`BiasShift`, with biases); the
   ordered probit has no global mean, and shifts its biases with its cutpoints in
   `OrdinalLikelihood.augment`;
3. sampling sweeps only: the likelihood's own parameters (`Likelihood.update`), the factor
   prior's hyperparameters (`FactorPrior.update`; with implicit sets also their weights,
   then `ImplicitShift`: `bayesmf.inference.gibbs.implicit_sets`), the per-side shifts (`SideShift`), the
   bias prior's (`BiasPrior.update`), then the moves that apply: `SparseScaleMoves`, or
   under the per-side prior `RescaleSides` and `CollapsedBiasScale` (the first and the
   last not under implicit feedback, whose likelihood they do not know; they read the
   chain's current responses from the likelihood block, the latent ones under the probit).

A sampling sweep draws the standard variates first (`bayesmf.inference.gibbs.variates`)
and, before the steps, lets the likelihood redraw latent responses
(`Likelihood.augment`; the ordered probit also its cutpoints there, before the
responses); after them, the likelihood refreshes a stale fit statistic. `problem_for`
builds the `Problem` of a spec (the ordered probit's carries its rating levels).
A conditional-mean sweep (``stochastic=False``: zero variates, no overrelaxation, latent
responses at their conditional means (`Likelihood.expect`), steps 1-2 only) is an ALS-like
(under a probit, EM-like) step toward a mode; the ``"map"`` start uses it.

A new likelihood, prior or move is a new block picked here for the spec (see
`bayesmf.inference.gibbs.likelihood`, `bayesmf.inference.gibbs.priors` and
`bayesmf.inference.gibbs.moves`); the sweep itself does not change.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from bayesmf.inference.gibbs import implicit_sets
from bayesmf.inference.gibbs.implicit import ImplicitLikelihood
from bayesmf.inference.gibbs.likelihood import GaussianLikelihood, GlobalMean, Likelihood
from bayesmf.inference.gibbs.moves import (
    BiasShift,
    CollapsedBiasScale,
    RescaleSides,
    SideShift,
    SparseScaleMoves,
)
from bayesmf.inference.gibbs.ordinal import OrdinalLikelihood, OrdinalProblem, build_ordinal_problem
from bayesmf.inference.gibbs.priors import bias_prior_for
from bayesmf.inference.gibbs.probit import ProbitLikelihood
from bayesmf.inference.gibbs.problem import Problem, build_problem
from bayesmf.inference.gibbs.row_update import RowUpdate
from bayesmf.inference.gibbs.state import ChainState
from bayesmf.inference.gibbs.variates import Variates
from bayesmf.inference.gibbs.variates import allocate as allocate_variates
from bayesmf.inference.gibbs.variates import draw as draw_variates

if TYPE_CHECKING:
    from bayesmf.data import RatingsData
    from bayesmf.spec import PMF

__all__ = ["Step", "Sweep", "build_sweep", "likelihood_for", "problem_for"]

#: a block of the sweep: updates the state in place
Step = Callable[[ChainState, Variates, np.random.Generator], None]


def _applicable(problem: Problem, *moves: Any) -> list[Step]:
    return [move(problem) for move in moves if move.applies(problem)]


def _moves(problem: Problem, likelihood: Likelihood) -> list[Step]:
    """Return the moves that apply, in order; those along the responses read them from ``likelihood``."""
    sparse: list[Step] = []
    bias: list[Step] = []
    if isinstance(likelihood, GaussianLikelihood):  # ratings or latent responses (the moves' `applies`: not implicit)
        sparse = [SparseScaleMoves(problem, likelihood)] if SparseScaleMoves.applies(problem) else []
        bias = [CollapsedBiasScale(problem, likelihood)] if CollapsedBiasScale.applies(problem) else []
    return [*sparse, *_applicable(problem, RescaleSides), *bias]


@dataclass(frozen=True)
class Sweep:
    """The steps of one sweep, and the blocks that record each kept draw.

    Shared by the chains (it holds no chain state): call ``sweep(state, variates, rng)``
    with each chain's own state, variates (`Sweep.variates`) and generator.
    """

    problem: Problem
    likelihood: Likelihood
    steps: tuple[Step, ...]
    recorders: tuple[Any, ...]  # blocks with draws(state) -> {layout name: value}
    stochastic: bool = True

    def variates(self) -> Variates:
        """Fresh buffers of standard variates for one chain (zeros)."""
        return allocate_variates(self.problem)

    def __call__(self, state: ChainState, variates: Variates, rng: np.random.Generator) -> None:
        """Run one sweep on ``state`` in place."""
        if self.stochastic:
            draw_variates(rng, variates)
            self.likelihood.augment(state, rng)
        else:
            self.likelihood.expect(state)
        for step in self.steps:
            step(state, variates, rng)
        self.likelihood.refresh(state)

    def draws(self, state: ChainState) -> dict[str, Any]:
        """Return the posterior variables at ``state``, by layout name."""
        out: dict[str, Any] = {}
        for block in self.recorders:
            out |= block.draws(state)
        return out

    def stats(self, state: ChainState) -> dict[str, float]:
        """Return the sample statistics at ``state``."""
        return {"log_likelihood_sum": self.likelihood.log_likelihood(state)}


def problem_for(spec: PMF, data: RatingsData) -> Problem:
    """Build the `Problem` of ``spec`` on ``data``: an `OrdinalProblem` for the ordered probit."""
    if spec.likelihood == "ordinal":
        return build_ordinal_problem(spec, data)
    return build_problem(spec, data)


def likelihood_for(problem: Problem) -> Likelihood:
    """Return the likelihood block of ``problem``'s spec (Gaussian, implicit, probit or ordered probit)."""
    if isinstance(problem, OrdinalProblem):
        return OrdinalLikelihood(problem)
    if problem.binary:
        return ProbitLikelihood(problem)
    return ImplicitLikelihood(problem) if problem.implicit else GaussianLikelihood(problem)


def build_sweep(problem: Problem, overrelaxation: float = 0.0, stochastic: bool = True) -> Sweep:
    """Build the sweep of ``problem``'s spec (see the module docstring for the order of its steps)."""
    likelihood = likelihood_for(problem)
    factor_prior = implicit_sets.prior_with_sets(problem)  # `factor_prior_for`'s block without implicit sets
    bias_prior = bias_prior_for(problem)
    alpha = overrelaxation if stochastic else 0.0
    rows = [
        RowUpdate(problem, "user", likelihood, factor_prior, alpha),
        RowUpdate(problem, "item", likelihood, factor_prior, alpha, residuals=True),
    ]
    # the ordered probit: no global mean; its cutpoints shift with the biases (in augment)
    ordinal = isinstance(likelihood, OrdinalLikelihood)
    mean = [] if ordinal else _applicable(problem, GlobalMean)
    shift = [] if ordinal else _applicable(problem, BiasShift)
    steps: list[Step] = [*rows, *mean, likelihood.observe, *shift]
    if stochastic:
        steps += [likelihood.update, factor_prior.update, *implicit_sets.implicit_shifts(problem, likelihood, factor_prior)]
        steps += [*_applicable(problem, SideShift), bias_prior.update]
        steps += _moves(problem, likelihood)
    recorders = (*rows, *mean, likelihood, factor_prior, bias_prior)
    return Sweep(problem, likelihood, tuple(steps), recorders, stochastic)
