"""Has an ELBO trace flattened? The convergence check of a variational fit (ADVI).

Used by `bayesmf.inference.advi` to warn when the optimizer stops early and by
`bayesmf.diagnostics.diagnose` in its verdict on an ADVI fit.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["elbo_convergence"]


def elbo_convergence(elbo: np.ndarray, window: float = 0.1, rel_tol: float = 1e-3) -> dict[str, Any]:
    """Tell whether an ELBO trace has flattened.

    Compares the mean ELBO over the last ``window`` fraction of iterations with the mean
    over the window before it. The trace is flat when the change is within
    ``rel_tol * |ELBO|`` or within three standard errors of the iteration-to-iteration noise
    (stochastic ELBO estimates never settle exactly).

    Parameters
    ----------
    elbo : numpy.ndarray
        ELBO per iteration (higher is better); non-finite values are dropped.
    window : float
        Fraction of the trace in each of the two windows compared.
    rel_tol : float
        Relative tolerance.

    Returns
    -------
    dict
        ``iterations``, ``final`` (mean of the last window), ``change`` (last minus previous
        window mean), ``relative_change``, ``noise_se`` and ``flat`` (bool).
    """
    elbo = np.asarray(elbo, dtype=np.float64)
    elbo = elbo[np.isfinite(elbo)]
    n = len(elbo)
    if n < 20:
        return {"iterations": n, "flat": False, "relative_change": float("nan"), "reason": "too few iterations"}
    width = max(int(n * window), 10)
    last, before = elbo[-width:], elbo[-2 * width : -width]
    change = float(last.mean() - before.mean())
    scale = max(abs(float(last.mean())), 1e-12)
    noise_se = float(np.sqrt(last.var(ddof=1) / len(last) + before.var(ddof=1) / len(before)))
    flat = abs(change) <= max(rel_tol * scale, 3.0 * noise_se)
    return {
        "iterations": n,
        "final": float(last.mean()),
        "change": change,
        "relative_change": abs(change) / scale,
        "noise_se": noise_se,
        "flat": bool(flat),
    }
