"""Numba kernels over rating pairs: the factor dot product of each (user, item) pair and its pullback.

Shared by the numpy objective (`bayesmf.objective.latent_scores`) and the PyTensor Op of
the model's latent score (`bayesmf._pytensor_ops.pair_dot`). No PyTensor import here.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["check_index", "pair_dots", "pair_dots_pullback"]


@numba.njit(cache=True, nogil=True)
def check_index(idx, size, message):  # type: ignore[no-untyped-def]
    """Raise ``IndexError(message)`` unless every ``idx`` lies in ``[0, size)``."""
    for t in range(idx.shape[0]):
        if idx[t] < 0 or idx[t] >= size:
            raise IndexError(message)


@numba.njit(cache=True, nogil=True)
def pair_dots(U, V, user_idx, item_idx):  # type: ignore[no-untyped-def]
    """``U[user_idx[n]] . V[item_idx[n]]`` for every n, without the (n, K) gathers (dtype of U)."""
    k = U.shape[1]
    out = np.empty(user_idx.shape[0], dtype=U.dtype)
    for t in range(user_idx.shape[0]):
        i = user_idx[t]
        j = item_idx[t]
        acc = 0.0
        for f in range(k):
            acc += U[i, f] * V[j, f]
        out[t] = acc
    return out


@numba.njit(cache=True, nogil=True)
def pair_dots_pullback(U, V, user_idx, item_idx, g):  # type: ignore[no-untyped-def]
    """Gradients ``(gU, gV)`` of ``sum_n g[n] * pair_dots(U, V, ...)[n]``: two scatter-adds."""
    k = U.shape[1]
    gU = np.zeros_like(U)
    gV = np.zeros_like(V)
    for t in range(user_idx.shape[0]):
        i = user_idx[t]
        j = item_idx[t]
        w = g[t]
        for f in range(k):
            gU[i, f] += w * V[j, f]
            gV[j, f] += w * U[i, f]
    return gU, gV
