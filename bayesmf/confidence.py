r"""Confidence weights of the implicit-feedback likelihood (``PMF(likelihood="implicit")``).

Hu, Koren & Volinsky (2008): a pair the user chose, with value :math:`r_{ij} > 0` (a count,
a rating, or 1), is a positive with confidence :math:`c_{ij} = 1 + \alpha r_{ij}`
(``"linear"``) or :math:`1 + \alpha \log(1 + r_{ij}/\epsilon)` (``"log"``); every pair not
in the data is a negative with confidence 1. In the Bayesian form the noise variance of a
pair is :math:`\sigma^2 / c_{ij}`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from bayesmf.spec import PMF

__all__ = ["confidence_weights"]


def confidence_weights(spec: PMF, values: np.ndarray) -> np.ndarray:
    r"""Return :math:`c_{ij}` of the observed pairs with values ``values`` (all > 0).

    Parameters
    ----------
    spec : PMF
        Gives ``confidence`` (``"linear"`` or ``"log"``), ``confidence_scale``
        (:math:`\alpha`) and ``confidence_eps`` (:math:`\epsilon`).
    values : numpy.ndarray
        Values of the observed pairs (counts, ratings or ones), finite and > 0.

    Returns
    -------
    numpy.ndarray
        float64 weights, each > 1.

    Raises
    ------
    ValueError
        If a value is not finite or not > 0 (the message names the first one and its position).
    """
    values = np.asarray(values, dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(values) | (values <= 0))
    if bad.size:
        raise ValueError(
            f"implicit feedback needs finite values > 0 for the observed pairs; value "
            f"{float(values[bad[0]])!r} at position {int(bad[0])} ({bad.size} such values)"
        )
    alpha = float(spec.confidence_scale)
    if spec.confidence == "log":
        return 1.0 + alpha * np.log1p(values / float(spec.confidence_eps))
    return 1.0 + alpha * values
