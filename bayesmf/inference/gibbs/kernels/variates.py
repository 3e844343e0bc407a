"""Numba kernel that fills a sweep's standard variates from the chain's numpy ``Generator``.

numba draws from a ``numpy.random.Generator`` passed in with NumPy's own algorithms on its
bit generator, so the numbers, and the generator's state after them, are exactly those of
the same calls made through NumPy (checked in ``tests/test_gibbs.py``). Compiled, the
element-wise loop is faster than NumPy's calls (ML-100K u1 at rank 10, one chain, timed by
hand: 0.19-0.21 against 0.34 ms a sweep of about 4.5 ms) and runs without the GIL.
"""

from __future__ import annotations

import numba

__all__ = ["fill_variates"]


@numba.njit(cache=True, nogil=True)
def fill_variates(rng, user, item, scalar, side, shapes, gammas):  # type: ignore[no-untyped-def]
    """Fill the buffers from ``rng``: normals, then gammas.

    Standard normals into ``user``, ``item``, ``scalar``, ``side`` (in that order, each in C
    order), then one standard gamma per ``shapes[k]`` into ``gammas``.
    """
    for buffer in (user.reshape(-1), item.reshape(-1), scalar, side.reshape(-1)):
        for k in range(buffer.shape[0]):
            buffer[k] = rng.standard_normal()
    for k in range(shapes.shape[0]):
        gammas[k] = rng.standard_gamma(shapes[k])
