r"""Latent scores of (user, item) index pairs under every posterior draw.

For draw :math:`s` and the pair (user :math:`i`, item :math:`j`),
:math:`\eta^{(s)}_{ij} = \mu^{(s)} + b^{(s)}_i + c^{(s)}_j + U^{(s)}_i \cdot V^{(s)}_j`.
The one place this is computed per draw (numba kernel `bayesmf._kernels_predict.eta_known`:
no (draws x pairs x factors) gathers); `bayesmf.objective.latent_scores` is its one-point
counterpart. The mean rating is :math:`g(\eta)` (`bayesmf.model.mean_rating`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bayesmf._kernels_predict import eta_known, eta_known_serial

__all__ = ["latent_scores_per_draw"]


def latent_scores_per_draw(
    U: np.ndarray,
    V: np.ndarray,
    user_idx: Any,
    item_idx: Any,
    *,
    mu: Any = None,
    user_bias: np.ndarray | None = None,
    item_bias: np.ndarray | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    r"""Latent scores :math:`\eta^{(s)}_p` of index pairs ``p`` under each draw ``s``, shape ``(S, P)``.

    Parameters
    ----------
    U, V : numpy.ndarray
        Factors per draw, shapes ``(S, n_users, K)`` and ``(S, n_items, K)`` (any float
        dtype; products are summed in float64). A point estimate is ``S = 1``
        (``U[None]``).
    user_idx, item_idx : array_like of int
        Index pairs (every index must be valid: unknown ids are the caller's business).
    mu : float or numpy.ndarray, optional
        Global mean per draw, ``(S,)`` (a scalar is broadcast).
    user_bias, item_bias : numpy.ndarray, optional
        Offsets per draw, ``(S, n_users)`` and ``(S, n_items)``. Absent terms count as 0.
    out : numpy.ndarray, optional
        float64 ``(S, P)`` array to write into.

    Returns
    -------
    numpy.ndarray
        float64 ``(S, P)``, draw-major.

    Raises
    ------
    ValueError
        If the shapes of ``U``, ``V``, the offsets or ``out`` do not fit together.
    IndexError
        If an index is out of range.
    """
    U = np.asarray(U)
    V = np.asarray(V)
    if U.ndim != 3 or V.ndim != 3 or U.shape[0] != V.shape[0] or U.shape[2] != V.shape[2]:
        raise ValueError(
            f"U and V must be (draw, row, factor) with the same draws and factors, got {U.shape} and {V.shape}"
        )
    n_samples = U.shape[0]
    uidx = np.asarray(user_idx, dtype=np.int64)
    iidx = np.asarray(item_idx, dtype=np.int64)
    if out is None:
        out = np.empty((n_samples, len(uidx)))
    elif out.shape != (n_samples, len(uidx)) or out.dtype != np.float64:
        raise ValueError(f"out must be float64 of shape {(n_samples, len(uidx))}, got {out.dtype} {out.shape}")
    for name, idx, size in (("user_idx", uidx, U.shape[1]), ("item_idx", iidx, V.shape[1])):
        if len(idx) and (idx.min() < 0 or idx.max() >= size):
            raise IndexError(f"{name} holds indices outside [0, {size})")
    for name, bias, size in (("user_bias", user_bias, U.shape[1]), ("item_bias", item_bias, V.shape[1])):
        if bias is not None and np.shape(bias) != (n_samples, size):
            raise ValueError(f"{name} must have shape {(n_samples, size)}, got {np.shape(bias)}")
    has_offsets = mu is not None or user_bias is not None or item_bias is not None
    mu_ = np.zeros(n_samples) if mu is None else np.asarray(mu, dtype=np.float64)
    if mu_.ndim == 0:
        mu_ = np.full(n_samples, float(mu_))
    # an absent offset is read as zeros of its full shape (the kernel indexes it by row)
    ub = np.zeros((n_samples, U.shape[1] if has_offsets else 1)) if user_bias is None else user_bias
    ib = np.zeros((n_samples, V.shape[1] if has_offsets else 1)) if item_bias is None else item_bias
    # one draw (a Gibbs chain's monitor, on its own thread): no parallel launch
    kernel = eta_known if n_samples > 1 else eta_known_serial
    kernel(U, V, mu_, ub, ib, uidx, iidx, has_offsets, out)
    return out
