"""The fused factor-dot Op of the model: values, gradient, bounds, backends."""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.gradient import verify_grad

from bayesmf._pytensor_ops import pair_dot


def _problem(seed=0, n_users=7, n_items=5, k=3, n=40):
    rng = np.random.default_rng(seed)
    U = rng.normal(size=(n_users, k))
    V = rng.normal(size=(n_items, k))
    uidx = rng.integers(0, n_users, n)
    vidx = rng.integers(0, n_items, n)
    return rng, U, V, uidx, vidx


@pytest.mark.parametrize("mode", ["NUMBA", "FAST_COMPILE"])
def test_values_and_gradient_match_the_plain_gather_graph(mode):
    rng, U0, V0, uidx, vidx = _problem()
    w = rng.normal(size=uidx.size)
    U, V = pt.matrix("U"), pt.matrix("V")
    fused = (pair_dot(U, V, uidx, vidx) * w).sum()
    plain = ((U[uidx] * V[vidx]).sum(-1) * w).sum()
    f = pytensor.function([U, V], [fused, *pytensor.grad(fused, [U, V])], mode=mode)
    g = pytensor.function([U, V], [plain, *pytensor.grad(plain, [U, V])], mode=mode)
    for got, want in zip(f(U0, V0), g(U0, V0), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(
        pytensor.function([U, V], pair_dot(U, V, uidx, vidx), mode=mode)(U0, V0),
        np.einsum("nk,nk->n", U0[uidx], V0[vidx]),
        rtol=1e-12,
    )


def test_gradient_by_finite_differences():
    rng, U0, V0, uidx, vidx = _problem(seed=1)
    w = rng.normal(size=uidx.size)
    verify_grad(
        lambda U, V: (pair_dot(U, V, uidx, vidx) ** 2 * w).sum(),
        [U0, V0],
        rng=np.random.default_rng(2),
        mode="NUMBA",
    )


def test_repeated_pairs_accumulate_in_the_gradient():
    U0 = np.array([[1.0, 2.0]])
    V0 = np.array([[3.0, 4.0], [5.0, 6.0]])
    U, V = pt.matrix("U"), pt.matrix("V")
    out = pair_dot(U, V, np.array([0, 0, 0]), np.array([0, 0, 1])).sum()
    gU, gV = pytensor.function([U, V], pytensor.grad(out, [U, V]), mode="NUMBA")(U0, V0)
    np.testing.assert_allclose(gU, [[2 * 3 + 5, 2 * 4 + 6]])
    np.testing.assert_allclose(gV, [[2.0, 4.0], [1.0, 2.0]])


@pytest.mark.parametrize("mode", ["NUMBA", "FAST_COMPILE"])
@pytest.mark.parametrize(
    ("uidx", "vidx", "message"),
    [
        ([0, 7], [0, 1], "user index is out of range"),
        ([0, -1], [0, 1], "user index is out of range"),
        ([0, 1], [0, 5], "item index is out of range"),
        ([0, 1], [0], "differ in length"),
    ],
)
def test_bad_indices_raise_instead_of_reading_outside_the_arrays(mode, uidx, vidx, message):
    _, U0, V0, _, _ = _problem()
    U, V = pt.matrix("U"), pt.matrix("V")
    u, v = pt.lvector("u"), pt.lvector("v")
    f = pytensor.function([U, V, u, v], pair_dot(U, V, u, v), mode=mode)
    with pytest.raises((IndexError, ValueError), match=message):
        f(U0, V0, np.array(uidx), np.array(vidx))


def test_make_node_rejects_wrong_types():
    with pytest.raises(TypeError, match="matrices"):
        pair_dot(pt.vector("U"), pt.matrix("V"), [0], [0])
    with pytest.raises(TypeError, match="integer user index"):
        pair_dot(pt.matrix("U"), pt.matrix("V"), pt.vector("u"), [0])


def test_float32_factors_keep_their_dtype():
    _, U0, V0, uidx, vidx = _problem()
    U, V = pt.fmatrix("U"), pt.fmatrix("V")
    out = pair_dot(U, V, uidx, vidx)
    assert out.dtype == "float32"
    got = pytensor.function([U, V], out, mode="NUMBA")(U0.astype(np.float32), V0.astype(np.float32))
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, np.einsum("nk,nk->n", U0[uidx], V0[vidx]), rtol=1e-5)


def test_numba_backend_uses_the_registered_kernels_not_object_mode():
    import warnings

    _, U0, V0, uidx, vidx = _problem()
    U, V = pt.matrix("U"), pt.matrix("V")
    out = pair_dot(U, V, uidx, vidx).sum()
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*object mode.*")
        f = pytensor.function([U, V], [out, *pytensor.grad(out, [U, V])], mode="NUMBA")
        f(U0, V0)


def test_second_derivatives_are_refused_not_silently_wrong():
    _, _, _, uidx, vidx = _problem()
    U, V = pt.matrix("U"), pt.matrix("V")
    gU = pytensor.grad((pair_dot(U, V, uidx, vidx) ** 2).sum(), U)
    with pytest.raises(NotImplementedError, match="PairDotPullback"):
        pytensor.grad(gU.sum(), U)
