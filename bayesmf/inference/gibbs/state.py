"""One chain's current point: the arrays the kernels update in place, and the fit statistic."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bayesmf.inference.gibbs.kernels.structs import Params, Side

__all__ = ["ChainState"]


@dataclass
class ChainState:
    """One chain's current point (arrays are updated in place by the blocks and kernels).

    ``scalars`` is ``[mu, sigma2, user-bias variance, item-bias variance]`` (index
    constants in `bayesmf.inference.gibbs.kernels.structs`). ``sse`` is the residual sum of
    squares of the training ratings at the current point: the blocks that change the
    latent scores either carry it along or set ``sse_stale``, and the likelihood
    recomputes it at the end of the sweep. ``extra`` holds per-chain arrays of blocks that
    need their own (latent responses, per-row prior means, ...).
    """

    P_user: np.ndarray  # (n_users, kp): (b_i, U_i) per row, U_i without biases
    P_item: np.ndarray
    scalars: np.ndarray
    factor_var: np.ndarray  # (K,): the factor variance(s) shared by U and V
    prec_user: np.ndarray  # (kp,): prior precisions of one (b_i, U_i) row
    prec_item: np.ndarray
    pm_user: np.ndarray  # (kp,): prior mean of one row: 0 but for per-side factor means
    pm_item: np.ndarray
    sse: float = math.nan
    sse_stale: bool = False
    #: (sum, sum of squares) of the residuals without mu, from the last item-row pass
    resid: tuple[float, float] = (0.0, 0.0)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def user(self) -> Side:
        """The user rows and their prior, for the kernels."""
        return Side(self.P_user, self.prec_user, self.pm_user)

    @property
    def item(self) -> Side:
        """The item rows and their prior, for the kernels."""
        return Side(self.P_item, self.prec_item, self.pm_item)

    def side(self, name: str) -> Side:
        """``user`` or ``item`` by name."""
        return self.user if name == "user" else self.item

    @property
    def params(self) -> Params:
        """Everything sampled, for the kernels that touch both sides."""
        return Params(self.user, self.item, self.scalars, self.factor_var)
