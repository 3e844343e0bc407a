"""`bayesmf.convergence_stats` gives ArviZ's rank R-hat and bulk and tail ESS, scalar by scalar."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from arviz_stats.base import array_stats
from scipy import stats

from bayesmf.convergence_stats import (
    average_ranks,
    ess_bulk,
    ess_tail,
    mcse_mean_sd,
    rank_rhat,
    rhat_ess,
)


def _ar1(rng: np.random.Generator, shape: tuple[int, int, int], phi: float) -> np.ndarray:
    """Stationary AR(1) draws (quantity, chain, draw) with lag-one correlation ``phi``."""
    x = np.empty(shape)
    x[..., 0] = rng.standard_normal(shape[:2])
    for t in range(1, shape[2]):
        x[..., t] = phi * x[..., t - 1] + np.sqrt(1 - phi**2) * rng.standard_normal(shape[:2])
    return x


def _cases() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(20261202)
    nan = _ar1(rng, (6, 4, 80), 0.5)
    nan[0, 1, 5] = np.nan
    sign = rng.choice([-1.0, 1.0], size=(2, 4, 60))  # |x - median| constant: the folded R-hat is NaN
    return {
        "mixing": _ar1(rng, (40, 4, 507), 0.5),
        "anticorrelated": _ar1(rng, (10, 3, 101), -0.4),  # odd draws: the middle one is dropped
        "chains disagree": _ar1(rng, (10, 4, 301), 0.98) + 0.3 * np.arange(4)[None, :, None],
        "ties": np.round(_ar1(rng, (10, 4, 200), 0.3)),
        "indicators": (_ar1(rng, (10, 4, 100), 0.5) > 1.0).astype(float),
        "constant": np.ones((3, 4, 50)),
        "one chain": _ar1(rng, (5, 1, 100), 0.2),
        "too short": _ar1(rng, (3, 4, 3), 0.1),
        "nan": nan,
        "symmetric": np.concatenate([sign, _ar1(rng, (2, 4, 60), 0.0)]),
    }


@pytest.mark.parametrize("case", list(_cases()))
def test_matches_arviz_scalar_by_scalar(case: str) -> None:
    x = _cases()[case]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = {
            "r_hat": array_stats.rhat(x, chain_axis=-2, draw_axis=-1),
            "ess_bulk": array_stats.ess(x, chain_axis=-2, draw_axis=-1, method="bulk"),
            "ess_tail": array_stats.ess(x, chain_axis=-2, draw_axis=-1, method="tail", prob=0.89),
        }
    got = dict(zip(("r_hat", "ess_bulk", "ess_tail"), rhat_ess(x, 0.89), strict=True))
    for name, value in expected.items():
        np.testing.assert_allclose(got[name], value, rtol=1e-12, atol=0, equal_nan=True, err_msg=name)


def test_edge_cases_are_what_arviz_says() -> None:
    """Spelled out, so a change in ArviZ cannot silently move both sides of the test above."""
    cases = _cases()
    assert np.isnan(rank_rhat(cases["constant"])).all()
    assert (ess_bulk(cases["constant"]) == 4 * 50).all()  # draws that do not vary: every split draw counts
    assert np.isnan(rank_rhat(cases["one chain"])).all() and np.isfinite(ess_bulk(cases["one chain"])).all()
    assert np.isnan(ess_tail(cases["too short"], 0.89)).all()
    assert np.isnan(rank_rhat(cases["nan"])[0]) and np.isfinite(rank_rhat(cases["nan"])[1:]).all()
    assert np.isfinite(rank_rhat(cases["symmetric"])[:2]).all()  # folded NaN: the bulk R-hat stands


def test_it_sees_what_it_should() -> None:
    """Chains that disagree fail R-hat; independent draws have an ESS near their number."""
    cases = _cases()
    assert (rank_rhat(cases["chains disagree"]) > 1.05).all()
    independent = _ar1(np.random.default_rng(1), (20, 4, 500), 0.0)
    assert 1500 < np.median(ess_bulk(independent)) < 2600


def test_rejects_a_stack_of_the_wrong_shape() -> None:
    with pytest.raises(ValueError, match=r"\(quantity, chain, draw\); got shape \(4, 100\)"):
        ess_bulk(np.zeros((4, 100)))


@pytest.mark.parametrize("case", list(_cases()))
def test_mcse_matches_arviz_scalar_by_scalar(case: str) -> None:
    x = _cases()[case]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = [array_stats.mcse(x, chain_axis=-2, draw_axis=-1, method=m) for m in ("mean", "sd")]
    for name, got, value in zip(("mean", "sd"), mcse_mean_sd(x), expected, strict=True):
        np.testing.assert_allclose(got, value, rtol=1e-12, atol=0, equal_nan=True, err_msg=name)


def test_average_ranks_are_scipys() -> None:
    """The verdict's ranks equal scipy's rankdata(method="average"): ties, runs at the ends, inf, NaN rows."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(6, 41))
    rows = [x, np.abs(x - np.median(x, axis=1, keepdims=True)),  # folded draws: the middle pair ties
            np.round(x), np.ones((2, 7)), np.zeros((3, 1)), np.array([[np.inf, -np.inf, 1.0, np.inf, -np.inf]])]
    with_nan = rng.normal(size=(3, 9))
    with_nan[1, 4] = np.nan
    rows.append(with_nan)
    for flat in rows:
        np.testing.assert_array_equal(average_ranks(flat), stats.rankdata(flat, method="average", axis=1))
    for name, case in _cases().items():
        flat = case.reshape(case.shape[0], -1)
        np.testing.assert_array_equal(average_ranks(flat), stats.rankdata(flat, method="average", axis=1), err_msg=name)
