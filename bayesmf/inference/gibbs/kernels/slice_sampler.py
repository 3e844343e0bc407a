"""The one slice sampler of the Gibbs moves (numba), for any log density of one variable.

Neal (2003): stepping out, then shrinkage. A move brings its own density: a numba function
``log_density(x, args)`` whose arguments ``args`` are a NamedTuple of a class of its own,
registered with `register_density`; `slice_step` picks the density by the class of
``args`` when it compiles. Registered: `bayesmf.inference.gibbs.kernels.bias_var` (a bias
variance with the biases integrated out) and `bayesmf.inference.gibbs.kernels.scale_moves`
(the sparse-row scale moves).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numba
import numpy as np
from numba.extending import overload

__all__ = ["log_density", "register_density", "slice_step"]

#: NamedTuple class of a density's arguments -> its numba log density
_DENSITIES: dict[Any, Any] = {}


def register_density(args_class: type) -> Callable[[Any], Any]:
    """Register (as a decorator) a numba ``log_density(x, args)`` for arguments of ``args_class``."""

    def register(function: Any) -> Any:
        _DENSITIES[args_class] = function
        return function

    return register


def log_density(x, args):  # type: ignore[no-untyped-def]
    """Return the registered log density of ``args``'s class at ``x`` (numba only)."""
    raise NotImplementedError("compiled by numba only (see register_density)")


@overload(log_density)
def _log_density_impl(x, args):  # type: ignore[no-untyped-def]
    function = _DENSITIES.get(getattr(args, "instance_class", None))
    if function is None:
        return None
    return lambda x, args: function(x, args)


@numba.njit(cache=True, nogil=True)
def slice_step(args, x0, width, max_steps, u):
    """One slice-sampling update of ``x0`` under the log density of ``args``; returns the new x.

    Stepping out by ``width`` (at most ``max_steps`` steps, split at random between the
    two sides), then shrinkage. ``u``: uniforms (level, placement, split, then one per
    shrinkage). Should they run out, ``x0`` is kept; that takes over ``len(u) - 3``
    shrinkages, each cutting the interval to a uniformly placed part of itself, so with
    a few dozen it does not happen in practice.
    """
    level = log_density(x0, args) + np.log(u[0])
    left = x0 - width * u[1]
    right = left + width
    steps_left = int(max_steps * u[2])
    steps_right = max_steps - 1 - steps_left
    while steps_left > 0 and log_density(left, args) > level:
        left -= width
        steps_left -= 1
    while steps_right > 0 and log_density(right, args) > level:
        right += width
        steps_right -= 1
    for k in range(3, u.shape[0]):
        x = left + (right - left) * u[k]
        if log_density(x, args) > level:
            return x
        if x < x0:
            left = x
        else:
            right = x
    return x0
