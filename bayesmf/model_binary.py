r"""The likelihood of binary feedback in the PyMC model (``PMF(likelihood="bernoulli")``).

:math:`y_n \sim \mathrm{Bernoulli}(\Phi(\eta_n))` (probit link), written as a
``pm.CustomDist`` named ``rating`` whose log-density is :math:`\log\Phi(s_n \eta_n)`,
:math:`s_n = 2 y_n - 1`, through PyMC's stable normal log-CDF (``erfcx`` in the lower
tail), so that neither :math:`\Phi(\eta)` nor :math:`1 - \Phi(\eta)` is formed and rounded
to 0 or 1. `bayesmf.model.build_model` calls it with the latent scores; the priors are
the rating model's (`bayesmf._model_priors`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from bayesmf.binary import check_binary

if TYPE_CHECKING:
    from bayesmf.data import RatingsData

__all__ = ["probit_logp", "probit_rating"]


def probit_logp(value: Any, eta: Any) -> Any:
    r""":math:`\log\Phi(\eta)` where ``value`` is 1, :math:`\log\Phi(-\eta)` where it is 0 (tensors)."""
    import pytensor.tensor as pt
    from pymc.distributions.dist_math import normal_lcdf

    sign = 2.0 * pt.cast(value, "float64") - 1.0
    return normal_lcdf(0.0, 1.0, sign * eta)


def _probit_random(eta: Any, rng: np.random.Generator | None = None, size: Any = None) -> np.ndarray:
    """Draw 0/1 labels with P(1) = Phi(eta) (prior and posterior predictive)."""
    from scipy.special import ndtr

    generator = rng if rng is not None else np.random.default_rng()
    return (generator.random(size=size) < ndtr(eta)).astype(np.int64)


def probit_rating(eta: Any, data: RatingsData, shape: Any) -> Any:
    """Declare the observed ``rating`` (0/1, dim ``obs``) with the probit likelihood, inside a model.

    ``shape``: the symbolic number of pairs (``user_idx.shape``), so predictions for new
    pairs work through ``pm.set_data`` as for ratings.

    Raises
    ------
    ValueError
        A value that is neither 0 nor 1, named with its row (`bayesmf.binary.check_binary`).
    """
    import pymc as pm

    check_binary(data)
    return pm.CustomDist(
        "rating",
        eta,
        logp=probit_logp,
        random=_probit_random,
        observed=np.asarray(data.rating).astype(np.int64),
        shape=shape,
        dims="obs",
        dtype="int64",
    )
