r"""The PyMC model of implicit feedback (``PMF(likelihood="implicit")``), dense over all pairs.

Hu, Koren & Volinsky (2008) in Bayesian form. With :math:`O` the pairs in the data,

.. math::

    \eta_{ij} = \mu + b_i + c_j + U_i \cdot V_j, \qquad
    y_{ij} \sim \mathcal N(\eta_{ij}, \sigma^2 / w_{ij}) \quad \text{for EVERY pair } (i, j),

with :math:`y_{ij} = 1, w_{ij} = c_{ij}` on :math:`O` (:math:`c_{ij}` the confidence of the
pair's value, `bayesmf.confidence.confidence_weights`) and :math:`y_{ij} = 0, w_{ij} = 1`
elsewhere. :math:`E[y_{ij}] = \eta_{ij}`: the score estimates the probability that the user
chooses the item (a linear probability model). Priors are those of the rating model
(`bayesmf._model_priors`, documented in `bayesmf.model.build_model`); the prior of
:math:`\mu` and the default fixed :math:`\sigma` are taken on the response scale [0, 1]
(`bayesmf.link.response_scale`).

The model holds the whole users x items matrix, so it is for small problems (checks of
the Gibbs sampler against NUTS, teaching); `MAX_DENSE_PAIRS` bounds it. Larger data:
``method="gibbs"``, whose cost grows with the observed pairs only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from bayesmf._model_priors import latent_variables, noise_sd
from bayesmf.confidence import confidence_weights
from bayesmf.link import response_scale
from bayesmf.posterior import coords_for

if TYPE_CHECKING:
    import pymc as pm

    from bayesmf.data import RatingsData
    from bayesmf.spec import PMF

__all__ = ["MAX_DENSE_PAIRS", "build_implicit_model", "dense_targets"]

#: the most (user, item) pairs the dense PyMC model accepts
MAX_DENSE_PAIRS = 2_000_000


def dense_targets(spec: PMF, data: RatingsData) -> tuple[np.ndarray, np.ndarray]:
    """Return the preferences ``y`` and weights ``w`` of every pair, both ``(n_users, n_items)``.

    ``y = 1, w = c`` on the pairs of ``data`` (``c`` from their values), ``y = 0, w = 1``
    elsewhere.

    Raises
    ------
    ValueError
        Empty data, more than `MAX_DENSE_PAIRS` pairs (naming the size), a value not > 0
        (`bayesmf.confidence.confidence_weights`), or a pair present twice (named).
    """
    if data.n_ratings == 0:
        raise ValueError("cannot build a model on an empty dataset (0 interactions)")
    n_pairs = data.n_users * data.n_items
    if n_pairs > MAX_DENSE_PAIRS:
        raise ValueError(
            f"the implicit PyMC model is dense over all {data.n_users} x {data.n_items} = "
            f"{n_pairs:,} (user, item) pairs, more than {MAX_DENSE_PAIRS:,}; fit it with "
            "method='gibbs', whose cost grows with the observed pairs only"
        )
    weights = confidence_weights(spec, np.asarray(data.rating))
    flat = np.asarray(data.user_idx) * data.n_items + np.asarray(data.item_idx)
    unique, counts = np.unique(flat, return_counts=True)
    if (counts > 1).any():
        u, i = divmod(int(unique[np.argmax(counts > 1)]), data.n_items)
        raise ValueError(
            f"the pair (user {data.users.to_raw([u]).tolist()[0]!r}, item "
            f"{data.items.to_raw([i]).tolist()[0]!r}) "
            "is in the data more than once; combine repeats first "
            "(bayesmf.interactions_from_dataframe sums them)"
        )
    y = np.zeros((data.n_users, data.n_items))
    w = np.ones((data.n_users, data.n_items))
    y[data.user_idx, data.item_idx] = 1.0
    w[data.user_idx, data.item_idx] = weights
    return y, w


def build_implicit_model(spec: PMF, data: RatingsData) -> pm.Model:
    """Build the dense PyMC model of implicit feedback, in the bayesmf posterior layout.

    Parameters
    ----------
    spec : PMF
        A spec with ``likelihood="implicit"``.
    data : RatingsData
        The interactions (`bayesmf.interactions_from_dataframe`, `bayesmf.as_implicit`):
        each pair's value (> 0) sets its confidence.

    Returns
    -------
    pymc.Model
        Free variables as in the rating model (``U``, ``V``, ``mu``, ``user_bias``,
        ``item_bias``, ``sigma2`` and the scales; ``sigma`` deterministic); the observed
        ``preference`` has dims ``(user, item)``.

    Raises
    ------
    ValueError
        As `dense_targets`; a spec whose likelihood is not ``"implicit"``.
    """
    import pymc as pm

    if spec.likelihood != "implicit":
        raise ValueError(f"build_implicit_model needs likelihood='implicit', got {spec.likelihood!r}")
    y, w = dense_targets(spec, data)
    scale = response_scale(spec, data.scale)
    coords: dict[str, Any] = dict(coords_for(spec, data.users, data.items))
    with pm.Model(coords=coords) as model:
        # a flat mu starts at the mean preference (the share of pairs in the data)
        latent = latent_variables(spec, scale, float(y.mean()))
        eta = latent.U @ latent.V.T
        if spec.biases:
            eta = latent.mu + latent.user_bias[:, None] + latent.item_bias[None, :] + eta
        sigma = noise_sd(spec, scale)
        pm.Normal("preference", mu=eta, sigma=sigma / np.sqrt(w), observed=y, dims=("user", "item"))
    return model
