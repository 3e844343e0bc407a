r"""Latent scores per chunk of pairs, over the components of each pair's predictive.

A pair's predictive is a mixture over components: the ``S`` posterior draws for a pair
whose user and item the model knows; for a pair with an unknown id, at least
`MIN_PRIOR_COMPONENTS` components (posterior draws repeated, component ``c`` using draw
``c % S``) whose unknown factors and bias are drawn from the prior given the draw's scales
(centred on :math:`m + W^\top x` for an id with features, `bayesmf.predictive.cold`),
seeded per id. Random numbers are keyed by the pair itself (`pair_seeds`), so results do
not depend on chunking nor on which other pairs are asked for.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

from bayesmf import _kernels_predict as kern
from bayesmf.latent import latent_scores_per_draw
from bayesmf.predictive.cold import feature_mean
from bayesmf.predictive.pairs import Pairs
from bayesmf.predictive.view import ModelView

__all__ = [
    "CHUNK_BUDGET",
    "MIN_PRIOR_COMPONENTS",
    "blocks",
    "chunk_width",
    "chunks",
    "latent",
    "pair_seeds",
    "prior_components",
    "row_groups",
]

#: float64 elements of the per-chunk (pairs x components) buffer (32 MB)
CHUNK_BUDGET = 2**22
#: components used for pairs with an unknown user or item (prior draws)
MIN_PRIOR_COMPONENTS = 1000


def prior_components(n_samples: int) -> int:
    """Components of a pair with an unknown id: a multiple of ``n_samples``, at least 1,000."""
    return n_samples * max(1, math.ceil(MIN_PRIOR_COMPONENTS / n_samples))


def pair_seeds(base: int, pairs: Pairs, stream: int) -> np.ndarray:
    """One 32-bit seed per pair, a hash of (seed, stream, user, item).

    Keyed by the pair itself (an unknown id by its code), so a pair's random draws do not
    depend on chunking nor on which other pairs are asked for.
    """
    mask = np.uint64(0xFFFFFFFFFFFFFFFF)
    uidx, iidx = pairs.keys
    user_key = np.where(uidx >= 0, uidx, (1 << 40) + pairs.user_code).astype(np.uint64)
    item_key = np.where(iidx >= 0, iidx, (1 << 40) + pairs.item_code).astype(np.uint64)
    h = _splitmix(np.full(len(pairs), (base * 4 + stream) & int(mask), dtype=np.uint64))
    h = _splitmix(h ^ user_key)
    h = _splitmix(h ^ item_key)
    return (h >> np.uint64(32)).astype(np.int64)


def _splitmix(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finalizer (vectorized, wrapping uint64 arithmetic)."""
    with np.errstate(over="ignore"):
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def _prior_draws(
    view: ModelView, base: int, side: int, code: int, n_comp: int, x: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    r"""Prior factors (C, K) and bias (C,) for unknown id ``code`` (side 0 user, 1 item), seeded per id.

    ``x``: the id's encoded features (a model with features on that side): the prior mean
    gains :math:`x^\top W` per draw (`bayesmf.predictive.cold`).
    """
    rng = np.random.default_rng([base, 7, side, code])
    z = rng.standard_normal((n_comp, view.n_factors + 1))
    s_of_c = np.arange(n_comp) % view.n_samples
    scale_f = view.prior_u if side == 0 else view.prior_v
    mean_f = view.prior_mean_u if side == 0 else view.prior_mean_v
    scale_b = view.prior_ub if side == 0 else view.prior_ib
    factors = mean_f[s_of_c] + z[:, :-1] * scale_f[s_of_c]
    if x is not None:
        factors += feature_mean(view, side, x, s_of_c)
    bias = z[:, -1] * scale_b[s_of_c] if view.has_bias else np.zeros(n_comp)
    return factors, bias


def _known_latent(view: ModelView, uidx: np.ndarray, iidx: np.ndarray, out: np.ndarray, reps: int) -> None:
    """``out[p, r * S + s]`` = the latent score of known pair ``p`` under draw ``s``."""
    a = view.arrays
    block = latent_scores_per_draw(
        a.U, a.V, uidx, iidx,
        mu=a.mu if view.has_bias else None,
        user_bias=a.user_bias if view.has_bias else None,
        item_bias=a.item_bias if view.has_bias else None,
    )
    kern.transpose_tiled(block, out, reps)


def _unknown_latent(view: ModelView, pairs: Pairs, rows: np.ndarray, n_comp: int, base: int) -> np.ndarray:
    """Latent scores ``(len(rows), n_comp)`` of pairs with an unknown id (prior draws for it)."""
    a = view.arrays
    s_of_c = np.arange(n_comp) % view.n_samples
    Uf = np.empty((len(rows), n_comp, view.n_factors))
    Vf = np.empty_like(Uf)
    bu = np.zeros((len(rows), n_comp))
    bi = np.zeros((len(rows), n_comp))
    for side, idx, codes, F, B, arr, bias, xs in (
        (0, pairs.uidx[rows], pairs.user_code[rows], Uf, bu, a.U, a.user_bias, pairs.user_x),
        (1, pairs.iidx[rows], pairs.item_code[rows], Vf, bi, a.V, a.item_bias, pairs.item_x),
    ):
        have = idx >= 0
        if have.any():
            F[have] = arr[s_of_c[None, :], idx[have][:, None]]
            if bias is not None:
                B[have] = bias[s_of_c[None, :], idx[have][:, None]]
        for code in np.unique(codes[~have]).tolist():
            factors, b = _prior_draws(view, base, side, code, n_comp, None if xs is None else xs[code])
            where = codes == code
            F[where] = factors
            B[where] = b
    return view.mu[s_of_c] + bu + bi + np.einsum("pck,pck->pc", Uf, Vf)


def latent(view: ModelView, pairs: Pairs, rows: np.ndarray, n_comp: int, base: int) -> np.ndarray:
    """Latent scores ``(len(rows), n_comp)``; component ``c`` uses posterior draw ``c % S``."""
    uidx, iidx = pairs.uidx[rows], pairs.iidx[rows]
    known = (uidx >= 0) & (iidx >= 0)
    reps = n_comp // view.n_samples
    out = np.empty((len(rows), n_comp))
    if known.all():
        _known_latent(view, uidx, iidx, out, reps)
        return out
    if known.any():
        dst = np.empty((int(known.sum()), n_comp))
        _known_latent(view, uidx[known], iidx[known], dst, reps)
        out[known] = dst
    out[~known] = _unknown_latent(view, pairs, rows[~known], n_comp, base)
    return out


def chunk_width(view: ModelView, unknown: bool) -> int:
    """Elements per (pair, component) of the chunk buffers (factor gathers, ordinal probs)."""
    width = 1
    if unknown:
        width = 2 * view.n_factors + 3
    if view.ordinal and view.levels is not None:
        width = max(width, len(view.levels) + 1)
    return width


def row_groups(view: ModelView, pairs: Pairs) -> list[tuple[np.ndarray, int, bool]]:
    """``(rows, components, unknown)``: the known pairs (``S`` components), then the others."""
    unknown = pairs.unknown
    groups = [(np.flatnonzero(~unknown), view.n_samples, False)]
    if unknown.any():
        groups.append((np.flatnonzero(unknown), prior_components(view.n_samples), True))
    return groups


def chunks(rows: np.ndarray, n_comp: int, width: int, chunk_size: int | None) -> Iterator[np.ndarray]:
    """Row blocks whose (rows x components x width) buffers stay near `CHUNK_BUDGET`."""
    if chunk_size is None:
        chunk_size = max(1, CHUNK_BUDGET // max(n_comp * width, 1))
    for start in range(0, len(rows), chunk_size):
        yield rows[start : start + chunk_size]


def blocks(
    view: ModelView, pairs: Pairs, chunk_size: int | None, min_width: int = 1
) -> list[tuple[np.ndarray, int]]:
    """Chunks ``(rows, components)`` of every pair: the groups of `row_groups`, cut by `chunks`."""
    return [
        (block, n_comp)
        for rows, n_comp, unknown in row_groups(view, pairs)
        for block in chunks(rows, n_comp, max(chunk_width(view, unknown), min_width), chunk_size)
    ]
