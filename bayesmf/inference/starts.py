"""Starting points of the sampling and ADVI routes: the MAP start and per-chain jitter.

Starting NUTS (or ADVI) from the model's default point is fragile for PMF: at U = V = 0
every factor gradient vanishes. `map_start` instead fits the same model with fixed priors
by a quick empirical-Bayes MAP (ALS or SGD, no model to compile) and sets the hierarchical
scales from it; `jitter_start` spreads one chain's start around it.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from bayesmf._seed import generator
from bayesmf.data import RatingsData
from bayesmf.link import initial_cutpoints, level_codes, to_unit, unit_mean
from bayesmf.objective import latent_scores

if TYPE_CHECKING:
    from bayesmf.spec import PMF

__all__ = ["SCALE_VARS", "jitter_start", "map_start"]

#: variance parameters of the hierarchical model (names in `bayesmf.model.build_model`)
SCALE_VARS = (
    "sigma2",
    "factor_var",
    "factor_var_user",
    "factor_var_item",
    "user_bias_var",
    "item_bias_var",
)
_FLOOR = 1e-4


def map_start(spec: PMF, data: RatingsData, *, random_seed: Any = None) -> dict[str, np.ndarray]:
    """Find a starting point for sampling or ADVI: a quick MAP fit, with scales set from it.

    The joint mode of a hierarchical model is degenerate (scales collapse to zero), and the
    fixed-prior MAP with the spec's default scales can collapse the factors to zero on small
    data (a saddle of the posterior that NUTS leaves only slowly), so the start is a
    two-step empirical-Bayes MAP of ``spec`` with fixed priors (ALS for the identity-link
    normal model, SGD for the logistic link; for the ordinal likelihood, ALS on the centred
    ratings carried over to the logit or probit scale, see `_ordinal_start`), with no model to
    compile:

    1. prior sds 1 for factors and offsets and noise sd half the sd of the ratings (on the
       likelihood's scale): a weak penalty, so the factors do not collapse;
    2. refit with the noise sd, factor sd and offset sd set to the root mean squares of the
       residuals, factors and offsets of step 1.

    For hierarchical specs the variances then start at the mean squares of the fitted
    factors (per factor with ``per_factor_scales``) and offsets, and the noise variance at
    the mean squared residual.

    Parameters
    ----------
    spec : PMF
        The spec to be sampled.
    data : RatingsData
        Training ratings.
    random_seed : int, numpy.random.Generator or None
        Seed of the MAP fit's random start.

    Returns
    -------
    dict of str to numpy.ndarray
        Values in the constrained space keyed by the model's random-variable names
        (``U``, ``V``, ``mu``, ``user_bias``, ``item_bias``, ``cutpoints``, ``sigma2``,
        ``factor_var`` (or ``factor_var_user``, ``factor_var_item``, ``factor_mean_user``,
        ``factor_mean_item``), ``user_bias_var``, ``item_bias_var``: those the spec has).
    """
    rng = generator(random_seed)
    ordinal = spec.likelihood == "ordinal"
    binary = spec.likelihood == "bernoulli"
    fit_data, fit_spec = data, spec
    if ordinal or binary:
        # no compile: fit the normal model to the centred ratings (labels) by ALS, then rescale
        mean = float(np.mean(data.rating))
        low, high = data.scale
        fit_data = RatingsData(
            data.user_idx, data.item_idx, data.rating - mean, (low - mean, high - mean), data.users, data.items
        )
        fit_spec = dataclasses.replace(spec, likelihood="normal", link="identity")
    observed = to_unit(np.asarray(fit_data.rating, dtype=np.float64), fit_data.scale, fit_spec.link)
    weak = dataclasses.replace(
        fit_spec,
        priors="fixed",
        per_factor_scales=False,
        factor_prior="shared",
        sigma=max(0.5 * float(np.std(observed)), 1e-3),
        sigma_u=1.0,
        sigma_v=1.0,
        sigma_bias=1.0,
    )
    start = _point_fit(weak, fit_data, rng)
    residual, factor_rms, bias_rms = _fit_scales(fit_spec, fit_data, start, observed)
    refit = dataclasses.replace(
        weak,
        sigma=max(residual, 1e-3),
        sigma_u=max(factor_rms, 1e-2),
        sigma_v=max(factor_rms, 1e-2),
        sigma_bias=max(bias_rms, 1e-2),
    )
    start = _point_fit(refit, fit_data, rng)
    if ordinal:
        start = _ordinal_start(start, data, float(np.std(data.rating)), spec.link)
    if binary:
        start = _probit_start(start, float(np.mean(data.rating)))
    _fill_unrated(start, data, rng)
    if spec.priors == "hierarchical":
        residual, _, _ = _fit_scales(spec, data, start, observed)
        if spec.factor_prior == "per_side":
            for side, name in (("user", "U"), ("item", "V")):
                column_mean = np.asarray(start[name].mean(axis=0))
                start[f"factor_mean_{side}"] = column_mean
                start[f"factor_var_{side}"] = _mean_square(start[name] - column_mean, spec.per_factor_scales)
        else:
            factors = np.concatenate([start["U"], start["V"]])
            start["factor_var"] = _mean_square(factors, spec.per_factor_scales)
        if spec.biases:
            start["user_bias_var"] = np.asarray(max(float(np.mean(start["user_bias"] ** 2)), _FLOOR))
            start["item_bias_var"] = np.asarray(max(float(np.mean(start["item_bias"] ** 2)), _FLOOR))
        if spec.likelihood == "normal" and spec.sigma is None:  # a given sigma is fixed, not a variable
            start["sigma2"] = np.asarray(max(residual**2, _FLOOR))
    return start


def _mean_square(values: np.ndarray, per_factor: bool) -> np.ndarray:
    """Mean square of the columns (``per_factor``) or of all entries, floored at ``_FLOOR``."""
    if per_factor:
        return np.maximum(np.mean(values**2, axis=0), _FLOOR)
    return np.asarray(max(float(np.mean(values**2)), _FLOOR))


def _fill_unrated(start: dict[str, np.ndarray], data: RatingsData, rng: np.random.Generator) -> None:
    """Give users and items without training ratings prior-sized random values, not 0.

    Their MAP is exactly 0, where the gradient of every such coordinate vanishes; nutpie
    sets its initial mass matrix from the gradient and refuses such a start ("bad initial
    gradient"), and a zero start sits on the U = V = 0 saddle of those rows anyway.
    """
    for counts, factor_name, bias_name in (
        (data.user_counts(), "U", "user_bias"),
        (data.item_counts(), "V", "item_bias"),
    ):
        empty = counts == 0
        if not empty.any():
            continue
        for name in (factor_name, bias_name):
            if name not in start:
                continue
            value = start[name].copy()
            rated = value[~empty]
            sd = float(np.sqrt(np.mean(rated**2))) if rated.size else 0.1
            value[empty] = rng.normal(0.0, max(sd, 1e-2), size=value[empty].shape)
            start[name] = value


def _ordinal_start(
    start: dict[str, np.ndarray], data: RatingsData, rating_sd: float, link: str = "identity"
) -> dict[str, np.ndarray]:
    r"""Carry a normal fit of the centred ratings over to the ordinal model's latent scale.

    The latent score of the ordered logistic (``link="identity"``) is on the logit scale,
    where the logistic distribution has sd :math:`\pi/\sqrt 3 \approx 1.8`; that of the
    ordered probit (``link="probit"``) has noise sd 1. Scale the centred fit by
    :math:`c = s / \mathrm{sd}(r)` with that sd :math:`s` (factors by :math:`\sqrt c`
    each), fold the fitted mean (near 0) into the user offsets, and set the cutpoints from
    the level frequencies on the link's scale.
    """
    levels = data.levels
    if levels is None:
        raise ValueError("likelihood='ordinal' needs discrete rating levels")
    noise_sd = 1.0 if link == "probit" else np.pi / np.sqrt(3.0)
    c = noise_sd / max(rating_sd, 1e-6)
    out = {"U": start["U"] * np.sqrt(c), "V": start["V"] * np.sqrt(c)}
    if "user_bias" in start:
        out["user_bias"] = c * (start["user_bias"] + float(start.get("mu", 0.0)))
        out["item_bias"] = c * start["item_bias"]
    out["cutpoints"] = initial_cutpoints(level_codes(np.asarray(data.rating), levels), len(levels), link)
    return out


def _probit_start(start: dict[str, np.ndarray], share: float) -> dict[str, np.ndarray]:
    r"""Carry a least-squares fit of the centred 0/1 labels over to the probit scale.

    Near the share :math:`\bar y` of ones, :math:`\Phi(\eta) \approx \bar y + \phi(q)(\eta - q)`
    with :math:`q = \Phi^{-1}(\bar y)`: scale the fit by :math:`c = 1/\phi(q)` (factors by
    :math:`\sqrt c` each) and put :math:`\mu` at :math:`q` plus the scaled fitted mean.
    """
    from scipy.special import ndtri
    from scipy.stats import norm

    q = float(ndtri(min(max(share, 1e-3), 1.0 - 1e-3)))
    c = 1.0 / float(norm.pdf(q))
    out = {"U": start["U"] * np.sqrt(c), "V": start["V"] * np.sqrt(c)}
    if "user_bias" in start:
        out |= {"mu": np.asarray(q + c * float(start["mu"])), "user_bias": c * start["user_bias"],
                "item_bias": c * start["item_bias"]}
    return out


def _point_fit(fixed: PMF, data: RatingsData, rng: np.random.Generator) -> dict[str, np.ndarray]:
    from bayesmf.inference.als import fit_als
    from bayesmf.inference.sgd import fit_sgd

    seed = int(rng.integers(0, 2**31 - 1))
    with warnings.catch_warnings():
        # a rough optimum is all a start needs: stopping early is fine here
        warnings.simplefilter("ignore", UserWarning)
        if fixed.likelihood == "normal" and fixed.link == "identity":
            point = fit_als(fixed, data, max_iter=50, tol=1e-5, random_seed=seed, progressbar=False)
        else:
            point = fit_sgd(fixed, data, epochs=100, random_seed=seed, progressbar=False)
    post = point.idata["posterior"].to_dataset()
    return {
        name: np.asarray(post[name].values[0, 0], dtype=np.float64)
        for name in ("U", "V", "mu", "user_bias", "item_bias", "cutpoints")
        if name in post
    }


def _fit_scales(
    spec: PMF, data: RatingsData, point: Mapping[str, np.ndarray], observed: np.ndarray
) -> tuple[float, float, float]:
    """Root mean squares of the residuals (normal likelihood), factors and offsets of a fit."""
    U, V = point["U"], point["V"]
    u, i = data.user_idx, data.item_idx
    mu = float(point["mu"]) if "mu" in point else None
    eta = latent_scores(U, V, u, i, mu=mu, user_bias=point.get("user_bias"), item_bias=point.get("item_bias"))
    biases = np.concatenate([point["user_bias"], point["item_bias"]]) if "user_bias" in point else np.zeros(1)
    residual = float(np.sqrt(np.mean((observed - unit_mean(eta, spec.link)) ** 2)))
    factor_rms = float(np.sqrt(np.mean(np.concatenate([U, V]) ** 2)))
    return residual, factor_rms, float(np.sqrt(np.mean(biases**2)))


def jitter_start(start: Mapping[str, np.ndarray], scale_names: list[str], rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Spread one chain's start around ``start``.

    Location parameters get noise of a tenth of their block's rms, variances a log-uniform
    (-1, 1) factor; cutpoints are kept (they must stay ordered).
    """
    out = {}
    for name, value in start.items():
        value = np.asarray(value, dtype=np.float64)
        if name in scale_names:
            out[name] = value * np.exp(rng.uniform(-1.0, 1.0, size=value.shape))
        elif name == "cutpoints":
            out[name] = value.copy()
        else:
            rms = float(np.sqrt(np.mean(value**2))) if value.size else 0.0
            out[name] = value + 0.1 * max(rms, 1e-3) * rng.normal(size=value.shape)
    return out
