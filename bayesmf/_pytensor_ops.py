r"""A PyTensor Op for the factor term of the PMF latent score, with a fused numba gradient.

`pair_dot` computes :math:`s_n = U_{u_n} \cdot V_{v_n}` for every rating :math:`n`. Written
with plain PyTensor (``(U[u] * V[v]).sum(-1)``) the gradient materializes two
(n_ratings, K) gathers and two scatter-adds; this Op does neither, and NUTS, ADVI and
``find_MAP`` spend their time in that gradient (times of both graphs on ML-100K u1:
`benchmarks/RESULTS.md`, "Log density + gradient of the PyMC model").

The forward and the pullback are the numba loops of `bayesmf._kernels_pairs`; the forward
checks the indices' bounds and lengths. They are registered for PyTensor's numba backend
(PyMC 6's default, and nutpie's), so the compiled graph calls them directly; ``perform``
calls the same kernels for the other backends. Only first derivatives exist: asking for the
gradient of the pullback raises ``NotImplementedError`` (NUTS, ADVI and L-BFGS need none).
"""

from __future__ import annotations

from typing import Any

import numba
import pytensor.tensor as pt
from pytensor.gradient import DisconnectedType
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op
from pytensor.link.numba.dispatch.basic import numba_njit, register_funcify_default_op_cache_key
from pytensor.scalar.basic import upcast

from bayesmf._kernels_pairs import check_index, pair_dots, pair_dots_pullback

__all__ = ["pair_dot"]


@numba.njit(cache=True, nogil=True)
def _pair_dot(U, V, uidx, vidx):  # type: ignore[no-untyped-def]
    if uidx.shape[0] != vidx.shape[0]:
        raise ValueError("pair_dot: the user and item index vectors differ in length")
    if U.shape[1] != V.shape[1]:
        raise ValueError("pair_dot: U and V have different numbers of factors")
    check_index(uidx, U.shape[0], "pair_dot: a user index is out of range")
    check_index(vidx, V.shape[0], "pair_dot: an item index is out of range")
    return pair_dots(U, V, uidx, vidx)


class PairDotPullback(Op):
    """``(gU, gV)`` of `PairDot` given the cotangent ``g`` of its output."""

    __props__ = ()

    def make_node(self, *inputs: Any) -> Apply:
        inputs = tuple(pt.as_tensor_variable(x) for x in inputs)  # U, V, uidx, vidx, g
        return Apply(self, inputs, [inputs[0].type(), inputs[1].type()])

    def perform(self, node: Apply, inputs: Any, output_storage: Any) -> None:
        U, V, uidx, vidx, g = inputs
        gU, gV = pair_dots_pullback(U, V, uidx, vidx, g.astype(U.dtype, copy=False))
        output_storage[0][0] = gU
        output_storage[1][0] = gV

    def infer_shape(self, fgraph: Any, node: Apply, shapes: Any) -> list[Any]:
        return [shapes[0], shapes[1]]


class PairDot(Op):
    """``out[n] = sum_k U[uidx[n], k] * V[vidx[n], k]`` (see the module docstring)."""

    __props__ = ()

    def make_node(self, *inputs: Any) -> Apply:
        U, V, uidx, vidx = inputs
        U = pt.as_tensor_variable(U)
        V = pt.as_tensor_variable(V)
        if U.ndim != 2 or V.ndim != 2:
            raise TypeError(f"pair_dot needs matrices U and V, got ndim {U.ndim} and {V.ndim}")
        dtype = upcast(U.dtype, V.dtype)
        if not dtype.startswith("float"):
            raise TypeError(f"pair_dot needs float factors, got {U.dtype} and {V.dtype}")
        U, V = pt.cast(U, dtype), pt.cast(V, dtype)
        uidx = pt.as_tensor_variable(uidx)
        vidx = pt.as_tensor_variable(vidx)
        for name, idx in (("user", uidx), ("item", vidx)):
            if idx.ndim != 1 or not idx.dtype.startswith("int"):
                raise TypeError(
                    f"pair_dot needs a 1-d integer {name} index, got ndim {idx.ndim}, {idx.dtype}"
                )
        out = pt.tensor(dtype=dtype, shape=(uidx.type.shape[0],))
        return Apply(self, [U, V, uidx, vidx], [out])

    def perform(self, node: Apply, inputs: Any, output_storage: Any) -> None:
        output_storage[0][0] = _pair_dot(*inputs)

    def infer_shape(self, fgraph: Any, node: Apply, shapes: Any) -> list[Any]:
        return [(shapes[2][0],)]

    def pullback(self, inputs: Any, outputs: Any, cotangents: Any) -> list[Any]:
        U, V, uidx, vidx = inputs
        gU, gV = PairDotPullback().make_node(U, V, uidx, vidx, cotangents[0]).outputs
        return [gU, gV, DisconnectedType()(), DisconnectedType()()]

    def connection_pattern(self, node: Apply) -> list[list[bool]]:
        return [[True], [True], [False], [False]]


@register_funcify_default_op_cache_key(PairDot)
def _numba_pair_dot(op: PairDot, **kwargs: Any) -> Any:
    @numba_njit
    def pair_dot_numba(U, V, uidx, vidx):  # type: ignore[no-untyped-def]
        return _pair_dot(U, V, uidx, vidx)

    return pair_dot_numba


@register_funcify_default_op_cache_key(PairDotPullback)
def _numba_pair_dot_pullback(op: PairDotPullback, **kwargs: Any) -> Any:
    @numba_njit
    def pair_dot_pullback_numba(U, V, uidx, vidx, g):  # type: ignore[no-untyped-def]
        return pair_dots_pullback(U, V, uidx, vidx, g)

    return pair_dot_pullback_numba


def pair_dot(U: Any, V: Any, user_idx: Any, item_idx: Any) -> Any:
    """Per-rating factor dot products ``(U[user_idx] * V[item_idx]).sum(-1)`` as one Op."""
    return PairDot()(U, V, user_idx, item_idx)
