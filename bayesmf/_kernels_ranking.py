r"""numba kernels behind `bayesmf.batched_ranking`: per-draw sums over (users x items) blocks.

For posterior draw ``s``, user ``u`` and item ``j`` the latent score is
``eta = U[s, u] . V[s, j] + (mu[s] + ub[s, u] + ib[s, j])`` (each term only when present).
`pair_sums` accumulates, for a batch of users and EVERY item, one of:

* ``mode == 0``: ``sum_s eta`` and ``sum_s eta**2`` (the draws' moments);
* ``mode == 1``: lower and upper bounds on ``sum_s Phi(t)``, ``t = sign * (x[b] - eta) /
  sd[s]``, read from a table of the standard normal CDF on a fine grid (`phi_table`):
  :math:`\Phi` is increasing, so the table's values at the grid points either side of
  ``t`` bracket it. No transcendental function is evaluated per draw.
* ``mode == 2``: the counts of draws with ``sign * (x[b] - eta) > eps`` (lower) and
  ``>= -eps`` (upper): they bracket the count of ``> 0`` for any error below ``eps`` in
  ``eta``.

The loop over item blocks runs in parallel threads (``numba.prange``); inside a block the
draw loop is outermost, so the block's item factors (copied factor-major, so that the
products run contiguously over items) stay in cache while every user of the batch reads
them. Each (user, item) sum is accumulated in draw order by one thread, so the
results do not depend on the number of threads. Memory: the caller's two (users x items)
outputs and a (factors x `ITEM_BLOCK`) scratch per block.
"""

from __future__ import annotations

import functools

import numba
import numpy as np
from scipy.special import ndtr

__all__ = ["ITEM_BLOCK", "TABLE_LOW", "TABLE_STEP", "pair_sums", "phi_table"]

#: items per parallel block (their factors of one draw stay in L1)
ITEM_BLOCK = 64
#: the CDF table covers [TABLE_LOW, -TABLE_LOW] in steps of TABLE_STEP (a power of 2: exact grid)
TABLE_LOW = -9.0
TABLE_STEP = 1.0 / 1024.0


@functools.cache
def phi_table() -> np.ndarray:
    """Return the standard normal CDF at ``TABLE_LOW + k * TABLE_STEP`` up to ``-TABLE_LOW`` (read-only)."""
    n = round(-2.0 * TABLE_LOW / TABLE_STEP) + 1
    table = ndtr(TABLE_LOW + TABLE_STEP * np.arange(n))
    table.flags.writeable = False
    return table


@numba.njit(cache=True, parallel=True)
def pair_sums(  # type: ignore[no-untyped-def]
    U, V, mu, ub, ib, has_mu, has_ub, has_ib, users, mode, x, sign, inv_sd, table, eps, lo_out, hi_out
):
    """Accumulate per (user ``b`` of ``users``, item ``j``) sums over draws into ``lo_out``/``hi_out``.

    ``U`` (S, n_users, K), ``V`` (S, n_items, K); ``mu`` (S,), ``ub`` (S, n_users), ``ib``
    (S, n_items) are read only when their ``has_*`` flag is set. ``mode`` 0: moments of
    eta; 1: CDF-table bounds at ``x[b]`` (``sign``, ``inv_sd`` (S,) and ``table`` as in the
    module docstring); 2: counts at ``x[b]`` with margin ``eps``. Outputs are
    ``(len(users), n_items)`` float64, overwritten.
    """
    n_samples, _, n_factors = U.shape
    n_items = V.shape[1]
    n_users = users.shape[0]
    last = table.shape[0] - 1
    inv_step = 1.0 / TABLE_STEP
    t0 = TABLE_LOW
    n_blocks = (n_items + ITEM_BLOCK - 1) // ITEM_BLOCK
    for blk in numba.prange(n_blocks):
        j0 = blk * ITEM_BLOCK
        nb = min(ITEM_BLOCK, n_items - j0)
        vt = np.empty((n_factors, nb))  # the block's item factors of one draw, factor-major
        buf = np.empty(nb)
        for b in range(n_users):
            for jj in range(nb):
                lo_out[b, j0 + jj] = 0.0
                hi_out[b, j0 + jj] = 0.0
        for s in range(n_samples):
            for jj in range(nb):
                for k in range(n_factors):
                    vt[k, jj] = np.float64(V[s, j0 + jj, k])
            inv = inv_sd[s]
            for b in range(n_users):
                u = users[b]
                off_u = 0.0
                if has_mu:
                    off_u += mu[s]
                if has_ub:
                    off_u += ub[s, u]
                xb = x[b]
                buf[:] = 0.0
                for k in range(n_factors):  # contiguous over items: vectorizes
                    uk = np.float64(U[s, u, k])
                    for jj in range(nb):
                        buf[jj] += uk * vt[k, jj]
                for jj in range(nb):
                    j = j0 + jj
                    eta = buf[jj] + off_u
                    if has_ib:
                        eta += ib[s, j]
                    if mode == 0:
                        lo_out[b, j] += eta
                        hi_out[b, j] += eta * eta
                    elif mode == 2:
                        d = sign * (xb - eta)
                        if d > eps:
                            lo_out[b, j] += 1.0
                        if d >= -eps:
                            hi_out[b, j] += 1.0
                    else:
                        pos = (sign * (xb - eta) * inv - t0) * inv_step
                        if pos < 0.0:
                            hi_out[b, j] += table[0]
                        elif pos >= last:
                            lo_out[b, j] += table[last]
                            hi_out[b, j] += 1.0
                        else:
                            i = int(pos)
                            lo_out[b, j] += table[i]
                            hi_out[b, j] += table[i + 1]
