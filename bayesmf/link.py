r"""Link and likelihood maths: from the latent score :math:`\eta` to the rating and back.

One definition of each link's mean (`unit_mean`, `mean_rating`), of the ordinal
(ordered-logistic or ordered-probit) level probabilities (`ordinal_probs`), of the rescaling the likelihood sees (`to_unit`),
of the ordinal level codes and start cutpoints, and of the prior on ``mu``, shared by the
PyMC model (`bayesmf.model.build_model`), the inference routes and prediction. Everything
here works on numpy arrays; `unit_mean` also works on PyTensor tensors inside a model.
This module never imports PyMC or PyTensor itself, so numpy-only callers stay light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.special import expit, ndtr, ndtri

if TYPE_CHECKING:
    from bayesmf.data import RatingsData
    from bayesmf.spec import PMF

__all__ = [
    "CUTPOINT_PRIOR_SD",
    "IMPLICIT_SCALE",
    "initial_cutpoints",
    "level_codes",
    "mean_rating",
    "mu_prior",
    "ordinal_levels",
    "ordinal_probs",
    "response_scale",
    "to_unit",
    "unit_mean",
]


#: Prior sd of each ordinal cutpoint, ``cutpoints ~ N(0, 3^2)`` ordered, on the latent scale
#: of either link (logit or probit); shared by the PyMC model and the Gibbs sampler.
CUTPOINT_PRIOR_SD = 3.0
#: response scale of ``likelihood="implicit"``: preferences 0 / 1, E[y] = eta on [0, 1]
IMPLICIT_SCALE = (0.0, 1.0)


def response_scale(spec: PMF, scale: tuple[float, float]) -> tuple[float, float]:
    """Return the scale of the likelihood's response: ``scale``, or [0, 1] for implicit feedback.

    An implicit model's data hold counts or weights (only their confidence matters); its
    response is the 0 / 1 preference, whatever scale the data were given.
    """
    if spec.likelihood in ("implicit", "bernoulli"):  # binary feedback: y in {0, 1}
        return IMPLICIT_SCALE
    return (float(scale[0]), float(scale[1]))


def _is_tensor(x: Any) -> bool:
    # checked by module name so that numpy-only callers (prediction) never import PyTensor
    return type(x).__module__.startswith("pytensor")


def unit_mean(eta: Any, link: str) -> Any:
    r"""Mean of the (possibly rescaled) rating given the latent score :math:`\eta`.

    ``"identity"``: :math:`\eta` (rating units). ``"logistic"``: :math:`\mathrm{logistic}(\eta)`,
    the mean of the rating rescaled to [0, 1] by `to_unit`. ``"probit"``: :math:`\Phi(\eta)`,
    P(y = 1) of the Bernoulli likelihood. Works on numpy arrays and on PyTensor tensors
    (inside a model).
    """
    if link == "identity":
        return eta
    if link == "probit":
        if _is_tensor(eta):
            import pytensor.tensor as pt

            return 0.5 * pt.erfc(-eta / np.sqrt(2.0))
        return ndtr(eta)
    if link == "logistic":
        if _is_tensor(eta):
            import pytensor.tensor as pt

            return pt.sigmoid(eta)
        return expit(eta)
    raise ValueError(f"link={link!r} is not valid; choose one of 'identity', 'logistic', 'probit'")


def to_unit(rating: Any, scale: tuple[float, float], link: str) -> Any:
    """Ratings on the scale the likelihood sees: unchanged (identity) or ``(r - low) / (high - low)``."""
    if link == "logistic":
        low, high = scale
        return (rating - low) / (high - low)
    return rating


def mean_rating(
    eta: Any,
    spec: PMF,
    scale: tuple[float, float],
    *,
    cutpoints: np.ndarray | None = None,
    levels: np.ndarray | None = None,
) -> Any:
    r"""Return the expected rating, in rating units, for latent scores :math:`\eta`.

    .. math::

        E[r \mid \eta] = \begin{cases}
            \eta & \text{identity link} \\
            \text{low} + (\text{high} - \text{low})\,\mathrm{logistic}(\eta) & \text{logistic link} \\
            \Phi(\eta) = P(y = 1 \mid \eta) & \text{Bernoulli likelihood (probit)} \\
            \sum_k \ell_k \, P(r = \ell_k \mid \eta, c) & \text{ordinal likelihood}
        \end{cases}

    Parameters
    ----------
    eta : array_like or TensorVariable
        Latent scores :math:`\mu + b_i + c_j + U_i \cdot V_j` (``mu`` absent for ordinal).
    spec : PMF
        Decides the link / likelihood.
    scale : tuple of float
        ``(low, high)`` of the rating scale.
    cutpoints : numpy.ndarray, optional
        Ordinal only: cutpoints, shape ``(..., n_levels - 1)`` broadcasting against ``eta``
        with the level axis last.
    levels : numpy.ndarray, optional
        Ordinal only: the rating levels (``RatingsData.levels``).

    Returns
    -------
    array_like
        Same shape as ``eta``.
    """
    if spec.likelihood == "ordinal":
        if cutpoints is None or levels is None:
            raise ValueError("mean_rating of an ordinal model needs cutpoints and levels")
        probs = ordinal_probs(np.asarray(eta), np.asarray(cutpoints), spec.link)
        return probs @ np.asarray(levels, dtype=np.float64)
    if spec.link == "logistic":
        low, high = scale
        return low + (high - low) * unit_mean(eta, "logistic")
    if spec.link == "probit":
        return unit_mean(eta, "probit")
    return eta


def ordinal_probs(eta: np.ndarray, cutpoints: np.ndarray, link: str = "identity") -> np.ndarray:
    r"""Level probabilities of the ordinal likelihood: ordered logistic, or ordered probit.

    :math:`P(r = \ell_k) = F(c_k - \eta) - F(c_{k-1} - \eta)` with :math:`c_{-1} = -\infty`,
    :math:`c_{K-1} = +\infty` and :math:`F` the logistic function (``link="identity"``, the
    default ordinal link, as ``pm.OrderedLogistic``) or :math:`\Phi` (``link="probit"``, as
    ``pm.OrderedProbit``). Each row sums to 1.

    Parameters
    ----------
    eta : numpy.ndarray
        Latent scores, shape ``S``.
    cutpoints : numpy.ndarray
        Shape ``(K - 1,)`` or ``S + (K - 1,)``.
    link : {"identity", "probit"}
        ``spec.link`` of the ordinal model.

    Returns
    -------
    numpy.ndarray
        Shape ``S + (K,)``.
    """
    if link not in ("identity", "probit"):
        raise ValueError(f"link={link!r} is not an ordinal link; choose 'identity' (ordered logistic) or 'probit'")
    eta = np.asarray(eta, dtype=np.float64)[..., None]
    gap = eta - np.asarray(cutpoints, dtype=np.float64)
    upper = ndtr(gap) if link == "probit" else expit(gap)  # P(r > level k)
    ones = np.ones_like(upper[..., :1])
    zeros = np.zeros_like(upper[..., :1])
    above = np.concatenate([ones, upper, zeros], axis=-1)
    return above[..., :-1] - above[..., 1:]


def ordinal_levels(data: RatingsData) -> np.ndarray:
    """Return the rating levels of ``data`` for an ordinal model (`bayesmf.data.RatingsData.levels`).

    Raises
    ------
    ValueError
        If the ratings lie on no regular grid from the scale's low end (steps 1, 0.5, 0.25,
        0.1), naming the first rating off the finest grid, its row and its pair; or if the
        grid holds fewer than two levels.
    """
    from bayesmf.data import _LEVEL_STEPS

    levels = data.levels
    low, high = data.scale
    if levels is None:
        step = min(_LEVEL_STEPS)
        k = (np.asarray(data.rating, dtype=np.float64) - low) / step
        row = int(np.argmax(np.abs(k - np.round(k))))
        user, item = data.users.classes[data.user_idx[row]], data.items.classes[data.item_idx[row]]
        raise ValueError(
            f"likelihood='ordinal' needs discrete rating levels on a regular grid (step "
            f"{' or '.join(f'{s:g}' for s in _LEVEL_STEPS)} from the scale's low end {low!r}), but rating "
            f"{float(data.rating[row])!r} (row {row}, user {user!r}, item {item!r}) is on none; "
            "use likelihood='normal'"
        )
    if len(levels) < 2:
        raise ValueError(f"likelihood='ordinal' needs at least two rating levels, the scale {(low, high)!r} has {levels.tolist()}")
    return levels


def level_codes(rating: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Index of each rating among the discrete ``levels`` (int64)."""
    levels = np.asarray(levels, dtype=np.float64)
    codes = np.abs(np.asarray(rating, dtype=np.float64)[:, None] - levels[None, :]).argmin(axis=1)
    return codes.astype(np.int64)


def initial_cutpoints(codes: np.ndarray, n_levels: int, link: str = "identity") -> np.ndarray:
    r"""Strictly increasing cutpoints matching the empirical level frequencies (a start value).

    On the logit scale (``link="identity"``, ordered logistic) or the probit scale
    (``link="probit"``), at :math:`\eta = 0`.
    """
    counts = np.bincount(codes, minlength=n_levels).astype(np.float64) + 0.5
    cum = np.cumsum(counts)[:-1] / counts.sum()
    cut = ndtri(cum) if link == "probit" else np.log(cum / (1.0 - cum))
    # empty levels would give ties; the ordered transform needs strict increase
    return cut + 1e-3 * np.arange(n_levels - 1)


def mu_prior(spec: PMF, scale: tuple[float, float]) -> tuple[float, float]:
    r"""(mean, sd) of the hierarchical prior on ``mu`` (latent scale).

    Identity link: ``N((low + high) / 2, ((high - low) / 2)^2)`` in rating units. Logistic
    link: ``N(0, 2^2)`` on the logit scale (the middle of the scale, ratings spread over it).
    Implicit feedback: the identity-link prior on its response scale [0, 1]
    (`response_scale`), ``N(0.5, 0.5^2)``, whatever scale the data carry. Probit link
    (``likelihood="bernoulli"``): ``N(0, 1)``, under which :math:`\Phi(\mu)` is uniform on
    (0, 1).
    """
    if spec.link == "probit":
        return 0.0, 1.0
    low, high = response_scale(spec, scale)
    if spec.link == "logistic":
        return 0.0, 2.0
    return 0.5 * (low + high), 0.5 * (high - low)
