"""The structured arguments of the Gibbs kernels (NamedTuples of arrays and scalars).

numba types a NamedTuple by its fields, so a kernel reads ``ratings.indptr`` or
``side.prec`` at no cost, and the orchestration passes a few named bundles instead of
dozens of positional arrays. Arrays are updated in place by the kernels; the tuples
themselves are cheap views, built anew wherever convenient.

Index constants of ``scalars`` (the chain's scalar parameters, one float64 array):
`MU` (global mean), `SIGMA2` (noise variance), `USER_BIAS_VAR`, `ITEM_BIAS_VAR` (the
squares of ``sigma_user_bias`` and ``sigma_item_bias``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = [
    "ITEM_BIAS_VAR",
    "MU",
    "SIGMA2",
    "USER_BIAS_VAR",
    "BiasVarDensity",
    "Csr",
    "Hyper",
    "InvGamma",
    "Marks",
    "Params",
    "Ratings",
    "RowFit",
    "ScaleDensity",
    "Side",
]

MU, SIGMA2, USER_BIAS_VAR, ITEM_BIAS_VAR = 0, 1, 2, 3


class Csr(NamedTuple):
    """One side's ratings grouped by row: row ``r`` owns entries ``indptr[r]:indptr[r + 1]``."""

    indptr: np.ndarray  # (n_rows + 1,) int64
    other: np.ndarray  # (n_ratings,) the other side's row of each rating
    rating: np.ndarray  # (n_ratings,) float64: the response the rows regress on


class Ratings(NamedTuple):
    """The training ratings grouped by user and by item (the same ratings, two orders)."""

    by_user: Csr
    by_item: Csr


class Side(NamedTuple):
    """One side's rows and their Gaussian prior, as the kernels see them.

    ``P`` is (n_rows, kp): row ``i`` is :math:`(b_i, U_i)` with biases (``kp = K + 1``),
    :math:`U_i` without. ``prec`` (kp,) holds the prior precision of each coordinate of a
    row (bias first). ``mean`` is the prior mean of a row: (kp,), shared by every row (0,
    or the side's factor means under ``factor_prior="per_side"``), or (n_rows, kp), one
    per row (a prior mean that depends on each row's features); `sample_rows` takes both.
    """

    P: np.ndarray
    prec: np.ndarray
    mean: np.ndarray


class Params(NamedTuple):
    """Everything a chain samples, for the kernels that touch both sides."""

    user: Side
    item: Side
    scalars: np.ndarray  # (4,): see MU, SIGMA2, USER_BIAS_VAR, ITEM_BIAS_VAR
    factor_var: np.ndarray  # (K,): the factor variance(s) shared by U and V


class RowFit(NamedTuple):
    """How the ratings see one side's rows: offset ``mu`` (with biases) and noise precision."""

    mu: float
    inv_sigma2: float
    has_bias: bool


class InvGamma(NamedTuple):
    r"""An inverse-gamma prior :math:`\mathrm{IG}(a, b)` (density :math:`\propto x^{-a-1} e^{-b/x}`)."""

    a: float
    b: float


class Hyper(NamedTuple):
    """The fixed hyperparameters of the hierarchical model (``spec.hyper``, the mu prior)."""

    sigma2: InvGamma  # noise variance
    factor: InvGamma  # factor variance(s)
    bias: InvGamma  # each bias variance
    mu_mean: float
    mu_prec: float  # 0: flat prior on mu (fixed priors)


class Marks(NamedTuple):
    """Rows moved by a scale move, per side (uint8: 1 moved, 0 not)."""

    user: np.ndarray
    item: np.ndarray


class ScaleDensity(NamedTuple):
    """Terms of the log density of a scale move (`bayesmf.inference.gibbs.kernels.scale_moves`)."""

    sums: np.ndarray  # P1, Q1, P2, Q2
    inv_sigma2: float
    power: float
    rate: float


class BiasVarDensity(NamedTuple):
    """Terms of the collapsed log density of a bias variance (`...kernels.bias_var`)."""

    chat: np.ndarray  # per rated row: mean residual without the row's bias
    noise: np.ndarray  # per rated row: sigma^2 / n_ratings
    prior: InvGamma
