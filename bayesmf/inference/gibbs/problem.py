"""What every chain samples from, built once per fit: the ratings both ways, sizes, configuration.

`Problem` is immutable and shared by the chains (threads); each chain's parameters live in
its own `bayesmf.inference.gibbs.state.ChainState`.

Implicit feedback (``PMF(likelihood="implicit")``): ``ratings`` holds each observed pair's
response (1) and ``weights`` its confidence weight (`bayesmf.confidence.confidence_weights`),
both by user and by item; every other pair of the matrix has response 0 and weight 1. The
responses live on [0, 1] (`bayesmf.link.response_scale`), the scale of the mu prior
(`bayesmf.link.mu_prior`) and of a ``"prior"`` start's flat mu; the fixed noise sd is
``spec.sigma`` or 1/4.5 (`bayesmf.spec.PMF.noise_sd`).

Binary feedback (``PMF(likelihood="bernoulli")``, ``binary``): ``ratings`` holds the 0/1
labels (the probit block, `bayesmf.inference.gibbs.probit`, regresses on latent responses
it keeps per chain), the scale is [0, 1], the fixed noise variance 1 and the mu prior
N(0, 1) (`bayesmf.link.mu_prior`).

Implicit sets (``PMF(implicit_sets=...)``, SVD++): ``implicit_sets`` holds each side's
normalized indicator design (`bayesmf.implicit_sets.implicit_design`) or None, and
``protocol`` whether the sets hold extra pairs (``"transductive"``) or not (``"strict"``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

from bayesmf.binary import check_binary
from bayesmf.confidence import confidence_weights
from bayesmf.implicit_sets import implicit_design, protocol_of
from bayesmf.inference.gibbs.kernels.structs import Csr, Hyper, InvGamma, Ratings
from bayesmf.link import mu_prior, response_scale
from bayesmf.spec import FACTOR_MEAN_KAPPA

if TYPE_CHECKING:
    import scipy.sparse as sp

    from bayesmf.data import RatingsData
    from bayesmf.spec import PMF

__all__ = ["Problem", "build_problem"]


@dataclass(frozen=True)
class Problem:
    """Everything a sweep needs that does not change during sampling."""

    ratings: Ratings  # the training ratings by user and by item
    n_users: int
    n_items: int
    n_factors: int
    has_bias: bool
    hierarchical: bool
    per_factor: bool  # per_factor_scales under hierarchical priors
    per_side: bool  # factor_prior="per_side": each side's own factor mean and variance(s)
    hyper: Hyper
    kappa: float  # prior precision scale of the per-side factor means (FACTOR_MEAN_KAPPA)
    fixed_sigma2: float  # the noise variance when not learned (fixed priors, or hierarchical with spec.sigma)
    fixed_prec_user: np.ndarray  # prior precisions of one (b_i, U_i) row under fixed priors
    fixed_prec_item: np.ndarray
    scale: tuple[float, float]  # the responses' scale: the rating scale, or [0, 1] (link.response_scale)
    #: implicit feedback: each observed pair's weight, in the order of ratings.by_user and
    #: ratings.by_item; None: ratings (only the observed pairs count)
    weights: tuple[np.ndarray, np.ndarray] | None = None
    #: binary feedback (probit): ``ratings`` holds 0/1 labels
    binary: bool = False
    #: side information: each side's features in index order, (n, F), or None
    #: (`bayesmf.data.RatingsData.feature_matrix`; used by `bayesmf.inference.gibbs.priors.FeatureFactors`)
    features: tuple[np.ndarray | None, np.ndarray | None] = (None, None)
    #: implicit sets: each side's design |N(i)|^(-1/2) 1[j in N(i)], (n_side, n_other) CSR, or None
    #: (`bayesmf.inference.gibbs.implicit_sets.ImplicitSetFactors`)
    implicit_sets: tuple[sp.csr_matrix | None, sp.csr_matrix | None] = (None, None)
    protocol: str = "strict"  # the implicit sets' protocol (bayesmf.implicit_sets.protocol_of)
    #: the noise variance is drawn (hierarchical priors without a fixed ``spec.sigma``)
    learn_noise: bool = False

    @property
    def implicit(self) -> bool:
        """Whether every pair of the matrix counts (implicit feedback)."""
        return self.weights is not None

    @property
    def n_terms(self) -> int:
        """Number of terms of the likelihood: the ratings, or every pair (implicit)."""
        return self.n_users * self.n_items if self.implicit else self.n_obs

    @cached_property
    def weight_sum(self) -> float:
        """Sum of the precision weights over the likelihood's terms (``n_obs`` for ratings)."""
        if self.weights is None:
            return self.n_obs
        return float(self.n_users * self.n_items + np.sum(self.weights[0] - 1.0))

    @property
    def kp(self) -> int:
        """Coordinates of one row: the factors, and the bias first with biases."""
        return self.n_factors + int(self.has_bias)

    @property
    def start(self) -> int:
        """Column of the first factor in a row (1 with biases, 0 without)."""
        return int(self.has_bias)

    @property
    def n_obs(self) -> int:
        """Number of training ratings."""
        return len(self.ratings.by_user.rating)

    def counts(self, side: str) -> np.ndarray:
        """Return the number of training ratings of each row of ``side`` ("user" or "item")."""
        return np.diff(getattr(self.ratings, f"by_{side}").indptr)


def _csr(rows: np.ndarray, cols: np.ndarray, rating: np.ndarray, n_rows: int) -> Csr:
    order = np.argsort(rows, kind="stable")
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n_rows), out=indptr[1:])
    return Csr(indptr, np.ascontiguousarray(cols[order]), np.ascontiguousarray(rating[order]))


def _check_unique_pairs(data: RatingsData) -> None:
    key = data.user_idx.astype(np.int64) * data.n_items + data.item_idx
    unique, first, counts = np.unique(key, return_index=True, return_counts=True)
    if unique.size < key.size:
        at = int(first[np.argmax(counts > 1)])
        user, item = data.users.classes[data.user_idx[at]], data.items.classes[data.item_idx[at]]
        raise ValueError(
            f"implicit feedback needs each (user, item) pair once; pair ({user!r}, {item!r}) occurs "
            f"{int(counts.max())} or more times ({int(np.sum(counts > 1))} repeated pairs): combine them "
            "first (RatingsData.from_dataframe(..., duplicates=...))"
        )


def _per_pair(name: str, values: np.ndarray, data: RatingsData) -> np.ndarray:
    out = np.asarray(values, dtype=np.float64)
    if out.shape != (data.n_ratings,) or not np.all(np.isfinite(out)):
        raise ValueError(f"{name} must be {data.n_ratings} finite numbers, one per pair of the data")
    return out


def build_problem(
    spec: PMF, data: RatingsData, *, responses: np.ndarray | None = None, weights: np.ndarray | None = None
) -> Problem:
    """Build the `Problem` of ``spec`` (identity link with a normal or implicit likelihood, or bernoulli) on ``data``.

    ``responses`` and ``weights`` (implicit only, one per pair of ``data``): the observed
    pairs' responses (default 1) and precision weights, each >= 1 (default the confidence
    weights of ``data.rating``); every other pair keeps response 0 and weight 1. For tests
    that draw the responses from the model.
    """
    hierarchical = spec.priors == "hierarchical"
    (a_s, b_s), (a_f, b_f), (a_b, b_b) = (spec.hyper[k] for k in ("sigma2", "factor_var", "bias_var"))
    implicit = spec.likelihood == "implicit"
    if spec.likelihood == "bernoulli":
        check_binary(data)
    scale = response_scale(spec, data.scale)
    mu_mean, mu_sd = mu_prior(spec, scale)
    bias_prec = [1.0 / spec.sigma_bias**2] if spec.biases else []
    response = data.rating
    pair_weights = None
    if implicit:
        _check_unique_pairs(data)
        response = np.ones(data.n_ratings) if responses is None else _per_pair("responses", responses, data)
        w = confidence_weights(spec, data.rating) if weights is None else _per_pair("weights", weights, data)
        if np.any(w < 1.0):  # the row kernel writes each observed pair as 1 + (w - 1)
            raise ValueError(f"weights must be >= 1 (an unobserved pair weighs 1), got {float(w.min())!r}")
        by_user = _csr(data.user_idx, data.item_idx, w, data.n_users).rating
        pair_weights = (by_user, _csr(data.item_idx, data.user_idx, w, data.n_items).rating)
    return Problem(
        ratings=Ratings(
            by_user=_csr(data.user_idx, data.item_idx, response, data.n_users),
            by_item=_csr(data.item_idx, data.user_idx, response, data.n_items),
        ),
        n_users=data.n_users,
        n_items=data.n_items,
        n_factors=spec.n_factors,
        has_bias=spec.biases,
        hierarchical=hierarchical,
        per_factor=hierarchical and spec.per_factor_scales,
        per_side=hierarchical and spec.factor_prior == "per_side",
        hyper=Hyper(
            sigma2=InvGamma(float(a_s), float(b_s)),
            factor=InvGamma(float(a_f), float(b_f)),
            bias=InvGamma(float(a_b), float(b_b)),
            mu_mean=float(mu_mean),
            mu_prec=1.0 / mu_sd**2 if hierarchical else 0.0,  # 0: flat prior (fixed priors)
        ),
        kappa=FACTOR_MEAN_KAPPA,
        fixed_sigma2=spec.noise_sd(data.scale) ** 2,
        fixed_prec_user=np.array(bias_prec + [1.0 / spec.sigma_u**2] * spec.n_factors),
        fixed_prec_item=np.array(bias_prec + [1.0 / spec.sigma_v**2] * spec.n_factors),
        scale=scale,
        weights=pair_weights,
        binary=spec.likelihood == "bernoulli",
        features=(data.feature_matrix("user"), data.feature_matrix("item")),
        implicit_sets=tuple(  # type: ignore[arg-type]
            implicit_design(data, side) if side in spec.implicit_sides else None for side in ("user", "item")
        ),
        protocol=protocol_of(data),
        learn_noise=hierarchical and spec.sigma is None,
    )
