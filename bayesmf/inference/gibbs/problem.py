"""What every chain samples from, built once per fit: the ratings both ways, sizes, configuration.

`Problem` is immutable and shared by the chains (threads); each chain's parameters live in
its own `bayesmf.inference.gibbs.state.ChainState`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from bayesmf.inference.gibbs.kernels.structs import Csr, Hyper, InvGamma, Ratings
from bayesmf.link import mu_prior
from bayesmf.spec import FACTOR_MEAN_KAPPA

if TYPE_CHECKING:
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
    fixed_sigma2: float  # the noise variance under fixed priors
    fixed_prec_user: np.ndarray  # prior precisions of one (b_i, U_i) row under fixed priors
    fixed_prec_item: np.ndarray

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


def build_problem(spec: PMF, data: RatingsData) -> Problem:
    """Build the `Problem` of ``spec`` (normal likelihood, identity link) on ``data``."""
    hierarchical = spec.priors == "hierarchical"
    (a_s, b_s), (a_f, b_f), (a_b, b_b) = (spec.hyper[k] for k in ("sigma2", "factor_var", "bias_var"))
    mu_mean, mu_sd = mu_prior(spec, data.scale)
    bias_prec = [1.0 / spec.sigma_bias**2] if spec.biases else []
    return Problem(
        ratings=Ratings(
            by_user=_csr(data.user_idx, data.item_idx, data.rating, data.n_users),
            by_item=_csr(data.item_idx, data.user_idx, data.rating, data.n_items),
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
    )
