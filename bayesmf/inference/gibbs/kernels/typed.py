"""A numba kernel whose argument types are fixed after its first call: `TypedKernel`.

Numba types every argument of every call before it picks the compiled code. For arrays
that runs in C; for the NamedTuples the Gibbs kernels take it runs in Python, several
times a sweep, at a cost comparable to a small kernel's run (``benchmarks/RESULTS.md``,
"Kernel calls before and after the restructuring"). Within one
fit the argument types never change, so each block wraps the kernels it calls in a
`TypedKernel`: the first call types the arguments and compiles (or loads from the disk
cache); later calls go straight to the compiled entry point. Its wrapper still unboxes
each argument against the compiled types, so an argument of another type is an error,
never a wrong result.
"""

from __future__ import annotations

from typing import Any

import numba

__all__ = ["TypedKernel"]


class TypedKernel:
    """Call ``kernel`` (a numba dispatcher) with the argument types of its first call."""

    def __init__(self, kernel: Any) -> None:
        self.kernel = kernel
        self._entry: Any = None

    def __call__(self, *args: Any) -> Any:
        """Run the kernel (typing the arguments on the first call only)."""
        entry = self._entry
        if entry is None:
            signature = tuple(numba.typeof(arg) for arg in args)
            self.kernel.compile(signature)
            entry = self._entry = self.kernel.overloads[signature].entry_point
        return entry(*args)
