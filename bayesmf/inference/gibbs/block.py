"""What the sweep's blocks share: the problem they act on and the numba kernel they call."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bayesmf.inference.gibbs.kernels.typed import TypedKernel

if TYPE_CHECKING:
    from bayesmf.inference.gibbs.problem import Problem

__all__ = ["Block"]


class Block:
    """A block of the sweep acting on ``problem``.

    A subclass names the numba kernel it calls in the class attribute ``kernel``; each
    instance calls it as ``self._kernel(...)``, a `TypedKernel` (typed on the first call).
    """

    #: the numba kernel the block calls, if any
    kernel: Any = None

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        kernel = type(self).kernel  # through the class: a numba dispatcher binds like a method
        self._kernel: Any = TypedKernel(kernel) if kernel is not None else None
