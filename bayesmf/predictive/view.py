"""What the predictive computations need from a fitted result, read once per call."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from bayesmf.link import response_scale
from bayesmf.posterior import PosteriorArrays, feature_weights, posterior_arrays, prior_moments

if TYPE_CHECKING:
    from bayesmf.results import FitResult

__all__ = ["ModelView", "model_view"]


@dataclass(frozen=True, eq=False)
class ModelView:
    """Posterior arrays plus the per-draw prior scales and noise of a result."""

    result: FitResult
    arrays: PosteriorArrays
    low: float
    high: float
    n_samples: int
    n_factors: int
    ordinal: bool
    noise: np.ndarray | None  # (S,) noise sd in rating units (normal likelihood)
    cutpoints: np.ndarray | None  # (S, L-1) (ordinal)
    levels: np.ndarray | None  # (L,) rating levels (ordinal, or of the train data)
    prior_u: np.ndarray  # (S, K) prior sd of a user's factors, per draw
    prior_v: np.ndarray  # (S, K) prior sd of an item's factors
    prior_mean_u: np.ndarray  # (S, K) prior mean of a user's factors (0 unless per-side)
    prior_mean_v: np.ndarray  # (S, K)
    prior_ub: np.ndarray  # (S,) prior sd of a user bias (unused without biases)
    prior_ib: np.ndarray  # (S,)
    mu: np.ndarray  # (S,) zeros when the model has no global mean
    has_bias: bool
    implicit: bool = False  # implicit feedback: response 0 / 1 on [0, 1], levels (0, 1)
    binary: bool = False  # Bernoulli (probit): response 0 / 1, mean Phi(eta), levels (0, 1), no noise sd
    # (S, F, K) feature weights of each side (None without features): an unknown id's prior
    # mean is prior_mean + x^T W for its encoded features x (`bayesmf.predictive.cold`)
    weights_u: np.ndarray | None = None
    weights_v: np.ndarray | None = None

    @property
    def spec(self) -> Any:
        """The fitted spec."""
        return self.result.spec

    def threshold_cut(self, threshold: float, kind: str) -> float:
        r"""Return the cut ``c`` of the predictive rating behind :math:`P(r \ge \text{threshold}) = P(y \ge c)`.

        Ratings typed on a grid (whole or half stars: ``levels`` of the training data) are
        modelled by a continuous normal rating :math:`y`; the rating a user types is
        :math:`y` rounded to the nearest level. So "at least ``threshold``" is
        :math:`y \ge \ell - \text{step}/2` with :math:`\ell` the lowest level at or above
        the threshold (a continuity correction: at least 4 whole stars is
        :math:`y \ge 3.5`). Without it :math:`P(r \ge 4)` reads far too low (on ML-100K
        u1, 0.35 predicted on average against 0.56 of held-out ratings at 4 or 5 stars).

        The threshold is returned unchanged for continuous ratings (no levels), for
        ``kind="expected"`` (a statement about the mean rating, which is continuous), and
        for the ordinal, Bernoulli and implicit likelihoods, whose summaries are over their
        discrete levels already. NaN (no threshold) stays NaN.
        """
        levels = self.levels
        if (
            kind != "predictive" or math.isnan(threshold) or levels is None or len(levels) < 2
            or self.ordinal or self.binary or self.implicit
        ):
            return threshold
        at = int(np.searchsorted(levels, threshold - 1e-9 * max(1.0, abs(threshold))))
        if at >= len(levels):
            return threshold
        return float(levels[at] - (levels[1] - levels[0]) / 2.0)


def model_view(result: FitResult, lazy: bool = False) -> ModelView:
    """Read ``result``'s draws, noise sds (rating units), cutpoints and prior moments.

    ``lazy=True``: a posterior read lazily from a zarr store keeps its factors and offsets
    on disk (dask arrays, `bayesmf.posterior.posterior_arrays`); the callers that take such
    a view work through it a group of pairs at a time (`bayesmf.predictive.lazy`).

    An implicit-feedback fit is read on its response scale: ``low, high = 0, 1`` and
    levels ``(0, 1)`` (not chosen, chosen), whatever the scale of its training values;
    its noise sd is the predictive sd of a new pair (confidence 1).

    Raises
    ------
    ValueError
        If the posterior lacks what its likelihood needs (``sigma``; cutpoints and levels).
    """
    arrays = posterior_arrays(result.idata, lazy=lazy)
    spec = result.spec
    implicit = spec.likelihood == "implicit"
    low, high = response_scale(spec, result.train.scale)
    n_samples = arrays.n_samples
    ordinal = spec.likelihood == "ordinal"
    binary = spec.likelihood == "bernoulli"
    noise = None
    if not ordinal and not binary:
        if arrays.sigma is None:
            raise ValueError("a normal-likelihood posterior lacks sigma")
        noise = np.asarray(arrays.sigma, dtype=np.float64).reshape(n_samples)
        if spec.link == "logistic":
            noise = noise * (high - low)
    cut = None if arrays.cutpoints is None else np.asarray(arrays.cutpoints, dtype=np.float64)
    levels = np.array([0.0, 1.0]) if implicit or binary else result.train.levels
    if ordinal and (cut is None or levels is None or cut.shape[1] != len(levels) - 1):
        raise ValueError("an ordinal posterior needs cutpoints and the rating levels of its train data")
    moments = prior_moments(result.idata, spec)
    return ModelView(
        result=result,
        arrays=arrays,
        low=low,
        high=high,
        n_samples=n_samples,
        n_factors=int(arrays.U.shape[2]),
        ordinal=ordinal,
        noise=noise,
        cutpoints=cut,
        levels=None if levels is None else np.asarray(levels, dtype=np.float64),
        prior_u=moments["user_factor"],
        prior_v=moments["item_factor"],
        prior_mean_u=moments["user_factor_mean"],
        prior_mean_v=moments["item_factor_mean"],
        prior_ub=moments["user_bias"],
        prior_ib=moments["item_bias"],
        mu=np.zeros(n_samples) if arrays.mu is None else np.asarray(arrays.mu, dtype=np.float64),
        has_bias=spec.biases,
        implicit=implicit,
        binary=binary,
        weights_u=feature_weights(result.idata, "user"),
        weights_v=feature_weights(result.idata, "item"),
    )
