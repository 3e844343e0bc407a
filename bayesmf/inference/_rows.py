"""Numba helper shared by the row-wise solvers (ALS `_ridge_rows`, Gibbs `sample_rows`)."""

from __future__ import annotations

import numba

__all__ = ["BLOCKED_FROM_KP", "gram_and_rhs"]

#: from this many coordinates per row on, `gram_and_rhs` sums four Gram entries per pass over
#: the gathered rows (one load of row ``a`` serves four products). Timed alone on u1's user
#: rows (by hand): 11.3 against 14.3 ms at rank 64, 3.0 against 3.8 ms at rank 32, a little
#: slower than the plain loops at rank 10
BLOCKED_FROM_KP = 24


# reassoc lets LLVM vectorize the sums over the gathered rows (about 4x here); results stay
# deterministic for a given build, so a seed still reproduces its draws.
@numba.njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
def gram_and_rhs(X, target, n, lam, rhs):  # type: ignore[no-untyped-def]
    r"""Fill ``rhs = X[:, :n] @ target[:n]`` and the lower triangle of ``lam = X X^T``.

    ``X`` is (kp, longest) with one gathered rating per column, so every sum is a
    contiguous dot product. From `BLOCKED_FROM_KP` rows on, the entries of row ``a`` of
    ``lam`` are summed four at a time (`_gram_blocked`); each entry is still its own dot
    product over the ratings, in the same order, so both give the same numbers.
    """
    if lam.shape[0] >= BLOCKED_FROM_KP:
        _gram_blocked(X, target, n, lam, rhs)
        return
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


@numba.njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
def _gram_blocked(X, target, n, lam, rhs):  # type: ignore[no-untyped-def]
    """`gram_and_rhs` with four entries of a row of ``lam`` per pass over the ratings."""
    kp = lam.shape[0]
    for a in range(kp):
        xa = X[a]
        acc = 0.0
        for q in range(n):
            acc += xa[q] * target[q]
        rhs[a] = acc
        b = 0
        while b + 4 <= a + 1:
            x0, x1, x2, x3 = X[b], X[b + 1], X[b + 2], X[b + 3]
            s0 = 0.0
            s1 = 0.0
            s2 = 0.0
            s3 = 0.0
            for q in range(n):
                v = xa[q]
                s0 += v * x0[q]
                s1 += v * x1[q]
                s2 += v * x2[q]
                s3 += v * x3[q]
            lam[a, b] = s0
            lam[a, b + 1] = s1
            lam[a, b + 2] = s2
            lam[a, b + 3] = s3
            b += 4
        while b <= a:
            xb = X[b]
            acc = 0.0
            for q in range(n):
                acc += xa[q] * xb[q]
            lam[a, b] = acc
            b += 1
