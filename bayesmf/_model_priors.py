r"""The priors of the PyMC models, in one place (`bayesmf.model`, `bayesmf.model_implicit`).

`latent_variables` declares, inside a ``pm.Model`` context, the factors, the offsets and
the global mean with their priors (fixed or hierarchical, shared or per-side factor
scales; with side information, a per-side factor mean ``m + X W``: `_feature_mean`);
`noise_sd` declares the noise sd. The maths of each prior is documented in
`bayesmf.model.build_model`; the rating model and the implicit-feedback model only differ
in how they combine these into the likelihood.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from bayesmf.link import mu_prior

if TYPE_CHECKING:
    from bayesmf.spec import PMF

__all__ = ["Latent", "latent_variables", "noise_sd"]


@dataclass(frozen=True)
class Latent:
    """The model's latent variables (None where the spec has none)."""

    U: Any
    V: Any
    user_bias: Any
    item_bias: Any
    mu: Any


def _side_prior(spec: PMF, side: str, X: np.ndarray | None = None) -> tuple[Any, Any]:
    """Per-side factor sd and mean of ``factor_prior="per_side"`` (inside a model context).

    With features ``X`` (n, F) the mean is per row, (n, K): `_feature_mean`.
    """
    import pymc as pm
    import pytensor.tensor as pt

    from bayesmf.spec import FACTOR_MEAN_KAPPA

    a, b = spec.hyper["factor_var"]
    dims = "factor" if spec.per_factor_scales else None
    var = pm.InverseGamma(f"factor_var_{side}", alpha=a, beta=b, dims=dims)
    sd = pm.Deterministic(f"sigma_factor_{side}", pt.sqrt(var), dims=dims)
    mean = pm.Normal(f"factor_mean_{side}", 0.0, sd / np.sqrt(FACTOR_MEAN_KAPPA), dims="factor")
    if X is None:
        return sd, mean
    return sd, _feature_mean(side, X, sd, mean)


def _feature_mean(side: str, X: np.ndarray, sd: Any, mean: Any) -> Any:
    r"""Declare ``side``'s feature weights and their precision; return the rows' prior mean :math:`m + X W`.

    The prior of the Gibbs sampler's `bayesmf.inference.gibbs.priors.FeatureFactors`, same
    names, dims and hyperparameters: :math:`W_k \mid v_k, \beta \sim \mathcal N(0, (v_k/\beta)
    I_F)` (``feature_weight_{side}``, dims ``{side}_feature``, ``factor``; :math:`\sqrt{v_k}`
    = ``sd``, one per side or per factor), :math:`\beta \sim \mathrm{Gamma}` (shape, rate)
    = ``FEATURE_PRECISION_PRIOR`` (``feature_precision_{side}``).
    """
    import pymc as pm
    import pytensor.tensor as pt

    from bayesmf.spec import FEATURE_PRECISION_PRIOR

    shape, rate = FEATURE_PRECISION_PRIOR
    beta = pm.Gamma(f"feature_precision_{side}", alpha=shape, beta=rate)
    W = pm.Normal(f"feature_weight_{side}", 0.0, sd / pt.sqrt(beta), dims=(f"{side}_feature", "factor"))
    return mean + pt.dot(pt.as_tensor(np.asarray(X, dtype=np.float64)), W)


def _factor_scales(spec: PMF, features: Mapping[str, np.ndarray | None]) -> tuple[Any, Any, Any, Any]:
    """(sd_u, sd_v, mean_u, mean_v) of the factor priors (a mean per row on a side with features)."""
    import pymc as pm
    import pytensor.tensor as pt

    if spec.priors != "hierarchical":
        return spec.sigma_u, spec.sigma_v, 0.0, 0.0
    if spec.factor_prior == "per_side":
        sd_u, mean_u = _side_prior(spec, "user", features.get("user"))
        sd_v, mean_v = _side_prior(spec, "item", features.get("item"))
        return sd_u, sd_v, mean_u, mean_v
    a, b = spec.hyper["factor_var"]
    dims = "factor" if spec.per_factor_scales else None
    factor_var = pm.InverseGamma("factor_var", alpha=a, beta=b, dims=dims)
    sigma_factor = pm.Deterministic("sigma_factor", pt.sqrt(factor_var), dims=dims)
    return sigma_factor, sigma_factor, 0.0, 0.0


def latent_variables(
    spec: PMF,
    scale: tuple[float, float],
    mu_start: float,
    features: Mapping[str, np.ndarray | None] | None = None,
) -> Latent:
    """Declare U, V, the offsets and mu with their priors (inside a ``pm.Model`` with coords).

    Parameters
    ----------
    spec : PMF
        Decides fixed or hierarchical priors, biases, factor prior.
    scale : tuple of float
        The data's scale, for the hierarchical prior of mu (`bayesmf.link.mu_prior`).
    mu_start : float
        Start value of a flat mu (fixed priors): the mean response on the latent scale.
    features : mapping of str to numpy.ndarray or None, optional
        Side -> encoded features (n, F) in index order (`bayesmf.data.RatingsData.feature_matrix`);
        a side with features gets the mean :math:`m + X W` (`_feature_mean`; the model needs
        the coordinate ``{side}_feature``). Only under ``factor_prior="per_side"``
        (`bayesmf.inference._contract.check_features`).

    Returns
    -------
    Latent
        ``user_bias``/``item_bias`` None without biases; ``mu`` None without biases or for
        the ordinal likelihood (its cutpoints absorb the global mean).
    """
    import pymc as pm
    import pytensor.tensor as pt

    features = dict(features or {})
    if any(X is not None for X in features.values()) and spec.factor_prior != "per_side":
        raise ValueError(
            "features need the per-side prior they extend: PMF(priors='hierarchical', factor_prior='per_side'), "
            f"got priors={spec.priors!r}, factor_prior={spec.factor_prior!r}"
        )
    sd_u, sd_v, mean_u, mean_v = _factor_scales(spec, features)
    U = pm.Normal("U", mean_u, sd_u, dims=("user", "factor"))
    V = pm.Normal("V", mean_v, sd_v, dims=("item", "factor"))
    if not spec.biases:
        return Latent(U, V, None, None, None)
    hierarchical = spec.priors == "hierarchical"
    if hierarchical:
        a, b = spec.hyper["bias_var"]
        user_bias_var = pm.InverseGamma("user_bias_var", alpha=a, beta=b)
        item_bias_var = pm.InverseGamma("item_bias_var", alpha=a, beta=b)
        sd_b: Any = pm.Deterministic("sigma_user_bias", pt.sqrt(user_bias_var))
        sd_c: Any = pm.Deterministic("sigma_item_bias", pt.sqrt(item_bias_var))
    else:
        sd_b = sd_c = spec.sigma_bias
    user_bias = pm.Normal("user_bias", 0.0, sd_b, dims="user")
    item_bias = pm.Normal("item_bias", 0.0, sd_c, dims="item")
    mu = None
    if spec.likelihood != "ordinal":
        if hierarchical:
            mean, sd = mu_prior(spec, scale)
            mu = pm.Normal("mu", mean, sd)
        else:
            mu = pm.Flat("mu", initval=mu_start)
    return Latent(U, V, user_bias, item_bias, mu)


def noise_sd(spec: PMF, scale: tuple[float, float]) -> Any:
    """Declare the noise sd ``sigma``: ``sqrt(sigma2)``, ``sigma2 ~ InvGamma``, or the fixed value.

    ``scale`` sets the fixed value (`bayesmf.spec.PMF.noise_sd`).
    """
    import pymc as pm
    import pytensor.tensor as pt

    if spec.priors == "hierarchical" and spec.sigma is None:
        a, b = spec.hyper["sigma2"]
        sigma2 = pm.InverseGamma("sigma2", alpha=a, beta=b)
        return pm.Deterministic("sigma", pt.sqrt(sigma2))
    return pm.Deterministic("sigma", pt.as_tensor(float(spec.noise_sd(scale))))
