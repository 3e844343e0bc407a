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
    contiguous dot product. The lower triangle goes in blocks of two rows by four columns
    of ``lam``: one pass over the ratings loads six rows of ``X`` for eight products (a
    block of one row by four, the layout before, loaded five for four), and the triangle's
    ragged edge entry by entry. Each entry is still its own dot product over the ratings.
    Against the one-by-four blocks, one thread, u1-like row lengths: 0.72 x the time at 65
    coordinates, 0.77 x at 33, 0.82-0.87 x at 11-12; whole row passes 0.82-0.94 x
    (``benchmarks/RESULTS.md``, "The Gram sums in tiles of two rows by four columns").
    """
    kp = lam.shape[0]
    for a in range(kp):
        xa = X[a]
        acc = 0.0
        for q in range(n):
            acc += xa[q] * target[q]
        rhs[a] = acc
    a = 0
    while a + 2 <= kp:
        _gram_rows(X, n, lam, a, 2)
        a += 2
    if a < kp:
        _gram_rows(X, n, lam, a, 1)


@numba.njit(cache=True, nogil=True, fastmath={"reassoc", "contract"}, inline="always")
def _gram_rows(X, n, lam, a, rows):  # type: ignore[no-untyped-def]
    """Entries ``lam[a + s, :a + s + 1]`` for ``s < rows`` (``rows`` 1 or 2)."""
    top = X[a]
    bottom = X[a + rows - 1]
    b = 0
    while b + 4 <= a + 1:
        x0, x1, x2, x3 = X[b], X[b + 1], X[b + 2], X[b + 3]
        s0 = 0.0
        s1 = 0.0
        s2 = 0.0
        s3 = 0.0
        t0 = 0.0
        t1 = 0.0
        t2 = 0.0
        t3 = 0.0
        for q in range(n):
            u = top[q]
            v = bottom[q]
            w0 = x0[q]
            w1 = x1[q]
            w2 = x2[q]
            w3 = x3[q]
            s0 += u * w0
            s1 += u * w1
            s2 += u * w2
            s3 += u * w3
            t0 += v * w0
            t1 += v * w1
            t2 += v * w2
            t3 += v * w3
        lam[a, b] = s0
        lam[a, b + 1] = s1
        lam[a, b + 2] = s2
        lam[a, b + 3] = s3
        if rows == 2:
            lam[a + 1, b] = t0
            lam[a + 1, b + 1] = t1
            lam[a + 1, b + 2] = t2
            lam[a + 1, b + 3] = t3
        b += 4
    for s in range(rows):
        xa = X[a + s]
        for c in range(b, a + s + 1):
            xc = X[c]
            acc = 0.0
            for q in range(n):
                acc += xa[q] * xc[q]
            lam[a + s, c] = acc
