r"""The ordinal likelihood in the PyMC model (``PMF(likelihood="ordinal")``): cutpoints and ``rating``.

:math:`P(r_n = \ell_k) = F(c_k - \eta_n) - F(c_{k-1} - \eta_n)` over the rating levels,
with :math:`F` the logistic function (``link="identity"``, ``pm.OrderedLogistic``) or
:math:`\Phi` (``link="probit"``, the ordered probit the Gibbs sampler draws by data
augmentation, `bayesmf.inference.gibbs.ordinal`). The cutpoints are
:math:`\mathcal N(0, \tau^2)` each, restricted to the ordered set (PyMC's ``ordered``
transform), :math:`\tau` = `bayesmf.link.CUTPOINT_PRIOR_SD`, for both links and both prior
kinds; the Gibbs sampler uses the same prior.

The ordered probit is a ``pm.CustomDist`` whose log-density picks the observed level's
:math:`\log(\Phi(c_k - \eta) - \Phi(c_{k-1} - \eta))` from PyMC's stable log-CDF
differences (as ``pm.OrderedProbit`` computes them), without forming the level
probabilities and taking their log, which would round far-tail levels to
:math:`\log 0`. `bayesmf.model.build_model` calls `ordinal_rating` with the latent scores.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from bayesmf.link import CUTPOINT_PRIOR_SD, initial_cutpoints, level_codes, ordinal_probs

if TYPE_CHECKING:
    from bayesmf.data import RatingsData

__all__ = ["ordered_probit_logp", "ordinal_rating"]


def ordered_probit_logp(value: Any, eta: Any, cutpoints: Any) -> Any:
    r""":math:`\log P(r = \text{value} \mid \eta, c)` of the ordered probit (tensors; ``value`` the level index)."""
    import pytensor.tensor as pt
    from pymc.distributions.dist_math import log_diff_normal_cdf, normal_lccdf, normal_lcdf

    gaps = pt.shape_padright(eta) - cutpoints  # eta - c_k
    log_p = pt.concatenate(
        [
            pt.shape_padright(normal_lccdf(0.0, 1.0, gaps[..., 0])),
            log_diff_normal_cdf(0.0, pt.ones_like(gaps[..., :1]), gaps[..., :-1], gaps[..., 1:]),
            pt.shape_padright(normal_lcdf(0.0, 1.0, gaps[..., -1])),
        ],
        axis=-1,
    )
    index = pt.shape_padright(pt.cast(value, "int64"))
    return pt.take_along_axis(log_p, index, axis=-1)[..., 0]


def _ordered_probit_random(
    eta: Any, cutpoints: Any, rng: np.random.Generator | None = None, size: Any = None
) -> np.ndarray:
    """Draw level indices from the ordered probit (prior and posterior predictive)."""
    generator = rng if rng is not None else np.random.default_rng()
    probs = ordinal_probs(np.asarray(eta), np.asarray(cutpoints), "probit")
    cdf = np.cumsum(probs, axis=-1)
    u = generator.random(size=np.shape(cdf)[:-1] if size is None else size)
    return np.minimum(np.sum(cdf < u[..., None], axis=-1), probs.shape[-1] - 1).astype(np.int64)


def ordinal_rating(eta: Any, data: RatingsData, levels: np.ndarray, shape: Any, link: str) -> Any:
    """Declare ``cutpoints`` and the observed ``rating`` (level index, dim ``obs``) inside a model.

    ``shape``: the symbolic number of pairs (``user_idx.shape``), so predictions for new
    pairs work through ``pm.set_data``; ``link``: ``spec.link`` (``"identity"``: ordered
    logistic, ``"probit"``: ordered probit).
    """
    import pymc as pm

    codes = level_codes(np.asarray(data.rating), levels)
    cutpoints = pm.Normal(
        "cutpoints",
        0.0,
        CUTPOINT_PRIOR_SD,
        dims="cutpoint",
        transform=pm.distributions.transforms.ordered,
        initval=initial_cutpoints(codes, len(levels), link),
    )
    if link == "probit":
        return pm.CustomDist(
            "rating",
            eta,
            cutpoints,
            logp=ordered_probit_logp,
            random=_ordered_probit_random,
            observed=codes,
            shape=shape,
            dims="obs",
            dtype="int64",
        )
    return pm.OrderedLogistic(
        "rating", eta=eta, cutpoints=cutpoints, observed=codes, shape=shape, dims="obs", compute_p=False
    )
