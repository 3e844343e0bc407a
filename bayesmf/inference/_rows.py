"""Numba helper shared by the row-wise solvers (ALS `_ridge_rows`, Gibbs `sample_rows`)."""

from __future__ import annotations

import numba

__all__ = ["gram_and_rhs"]


# reassoc lets LLVM vectorize the sums over the gathered rows (about 4x here); results stay
# deterministic for a given build, so a seed still reproduces its draws.
@numba.njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
def gram_and_rhs(X, target, n, lam, rhs):  # type: ignore[no-untyped-def]
    r"""Fill ``rhs = X[:, :n] @ target[:n]`` and the lower triangle of ``lam = X X^T``.

    ``X`` is (kp, longest) with one gathered rating per column, so every sum is a
    contiguous dot product.
    """
    kp = lam.shape[0]
    for a in range(kp):
        acc = 0.0
        for q in range(n):
            acc += X[a, q] * target[q]
        rhs[a] = acc
        for b in range(a + 1):
            acc = 0.0
            for q in range(n):
                acc += X[a, q] * X[b, q]
            lam[a, b] = acc
