"""``factor_draws``: the posterior keeps at most so many draws per chain, evenly spaced; the scalars keep all."""

from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest

from bayesmf import PMF, load, simulate
from bayesmf.exceptions import ConvergenceWarning
from bayesmf.inference.gibbs import fit_gibbs
from bayesmf.inference.gibbs.sink import MemorySink, compact_draws, empty_block
from bayesmf.inference.gibbs.spacing import SpacedSink, spacing_for
from bayesmf.posterior import SCALAR_GROUP, scalar_names

SPEC = PMF(n_factors=2)
KW = {"tune": 20, "chains": 2, "random_seed": 3, "progressbar": False}


@pytest.fixture(scope="module")
def data():
    return simulate(n_users=40, n_items=30, n_factors=2, density=0.3, seed=1).data


def _arrays(tree, group="posterior"):
    ds = tree[group].to_dataset()
    return {str(k): np.asarray(v.values) for k, v in ds.data_vars.items()}


def test_spacing_for_is_the_smallest_power_of_two_that_fits():
    assert spacing_for(100, None) == 1
    assert spacing_for(100, 100) == 1
    assert spacing_for(101, 100) == 2
    assert spacing_for(1000, 100) == 16  # ceil(1000 / 8) = 125 > 100
    assert spacing_for(10, 100, at_least=4) == 4  # never narrower than it was


def test_compact_draws_keeps_every_factor_th_draw_in_place():
    rng = np.random.default_rng(0)
    array = rng.normal(size=(2, 50, 3))
    before = array.copy()
    assert compact_draws(array, 1, 47, 4, block=5) == 12
    np.testing.assert_array_equal(array[1, :12], before[1, 0:47:4])
    np.testing.assert_array_equal(array[0], before[0])  # the other chain is untouched


def test_spaced_sink_stores_the_draws_a_thinned_chain_would():
    shapes = {"x": ((2,), np.dtype(np.float64))}
    spaced = SpacedSink(MemorySink(shapes, (), 1, 10), cap=10, draws=10)
    made = 0
    for target in (10, 15, 40, 100):
        spaced.prepare(target)
        for d in range(made, target):
            spaced.record(0, d, {"x": np.array([d, -d])}, {})
        made = target
        n = spaced.stored[0]
        assert n <= 10 and n == math.ceil(target / spaced.spacing)
        np.testing.assert_array_equal(spaced.inner.variables["x"][0, :n, 0], np.arange(0, target, spaced.spacing))
    assert spaced.spacing == 16


def test_fixed_run_keeps_every_kth_draw_and_every_scalar(data):
    full = fit_gibbs(SPEC, data, draws=100, factor_draws=None, **KW)
    spaced = fit_gibbs(SPEC, data, draws=100, factor_draws=30, **KW)
    assert spaced.info["draw_spacing"] == 4 and spaced.n_draws == 25 == spaced.info["draws"]
    assert spaced.info["kept_draws"] == 100 and spaced.info["factor_draws"] == 30
    for name, value in _arrays(full.idata).items():
        np.testing.assert_array_equal(_arrays(spaced.idata)[name], value[:, ::4], err_msg=name)
    trace = _arrays(spaced.idata, SCALAR_GROUP)
    assert set(trace) == {*scalar_names(SPEC), "log_likelihood_sum"}
    for name in scalar_names(SPEC):
        np.testing.assert_array_equal(trace[name], _arrays(full.idata)[name], err_msg=name)
    assert spaced.idata[SCALAR_GROUP].attrs["draw_spacing"] == 4
    assert spaced.info["posterior_nbytes"] * 4 == full.info["posterior_nbytes"]
    # a run shorter than the cap is not spaced, and its trace repeats the posterior's scalars
    short = fit_gibbs(SPEC, data, draws=30, factor_draws=30, **KW)
    assert short.info["draw_spacing"] == 1 and short.n_draws == 30


def test_run_until_converged_compacts_and_judges_the_draws_it_keeps(data, tmp_path):
    # a budget of 200 kept draws per chain: looks at 20, 30, 45, 68, 102, 152 and 200 draws,
    # with the posterior respaced on the way (a cap of 30 per chain fits no rule: it stops by budget)
    opts = {"factor_draws": 30, "ess_min": 50, "min_draws": 20, "thin": 5, "max_sweeps": 20 + 200 * 5} | KW
    with pytest.warns(ConvergenceWarning, match="max_sweeps"):
        fit = fit_gibbs(SPEC, data, **opts)
    info = fit.info
    kept, spacing = info["kept_draws"], info["draw_spacing"]
    assert kept == 200 and spacing == 8 and fit.n_draws == 25 == math.ceil(kept / spacing)
    assert [c["draws"] for c in info["checks"]] == [20, 30, 23, 17, 26, 19, 25]
    # the same chains as a fixed run of that length, every spacing-th draw
    reference = fit_gibbs(SPEC, data, draws=kept, factor_draws=None, **KW)
    for name, value in _arrays(reference.idata).items():
        np.testing.assert_array_equal(_arrays(fit.idata)[name], value[:, ::spacing], err_msg=name)
    for name in scalar_names(SPEC):
        np.testing.assert_array_equal(_arrays(fit.idata, SCALAR_GROUP)[name], _arrays(reference.idata)[name])
    # the rule judged the draws the posterior holds: its last verdict is diagnose()'s
    with pytest.warns(ConvergenceWarning):
        verdict = fit.diagnose()
    last = info["checks"][-1]
    assert last["draws"] == fit.n_draws and last["ok"] is verdict.ok is False
    assert last["max_r_hat"] == pytest.approx(float(verdict.table["r_hat"].max()), rel=1e-12)
    # a zarr store compacts alike, and saves the trace
    with pytest.warns(ConvergenceWarning):
        stored = fit_gibbs(SPEC, data, store=tmp_path / "p.zarr", **opts)
    assert stored.info["draw_spacing"] == spacing and stored.n_draws == fit.n_draws
    for name, value in _arrays(fit.idata).items():
        np.testing.assert_array_equal(_arrays(stored.idata)[name], value, err_msg=name)
    loaded = load(tmp_path / "p.zarr")
    np.testing.assert_array_equal(_arrays(loaded.idata, SCALAR_GROUP)["sigma"], _arrays(fit.idata, SCALAR_GROUP)["sigma"])


def test_memory_does_not_grow_with_the_run():
    """Ten times the draws, the same peak memory but for the scalar trace: the posterior stays
    within factor_draws per chain.

    The scalar trace (every kept draw of sigma, the scales and the means: 37 numbers a draw
    under the default prior at rank 8) is kept whole in memory by design, so it is counted
    apart; it is what grew (by 1.086-1.088 x the peak over 6 repeats, chains side by side,
    against the 1.1 once allowed for everything). The chains run one after the other
    (``cores=1``) so that two chains' transient copies cannot coincide at the peak; so run,
    the rest was 0.92-0.93 x the smaller run's peak over 5 repeats.
    """
    data = simulate(n_users=300, n_items=200, n_factors=8, density=0.1, noise=0.5, seed=3).data
    opts = {"tune": 4, "thin": 1, "chains": 2, "cores": 1, "random_seed": 0, "progressbar": False, "factor_draws": 32}
    fit_gibbs(PMF(n_factors=8), data, draws=8, **opts)  # compile and warm the caches first
    peaks, sizes, traces = [], [], []
    for draws in (64, 640):
        tracemalloc.start()
        fit = fit_gibbs(PMF(n_factors=8), data, draws=draws, **opts)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        assert 16 <= fit.n_draws <= 32
        sizes.append(fit.info["posterior_nbytes"])
        traces.append(sum(v.nbytes for v in fit.idata[SCALAR_GROUP].data_vars.values()))
    per_draw = sizes[0] / (2 * 32)
    assert traces[1] > 9 * traces[0]  # the trace does grow (all 640 draws of each chain)
    assert peaks[1] - (traces[1] - traces[0]) < 1.05 * peaks[0], (peaks, traces)
    assert peaks[0] > 32 * 2 * per_draw  # the posterior is what the peak holds (the test can see it)


@pytest.mark.parametrize("bad", [0, -3, 2.5, "100", True, float("nan")])
def test_bad_factor_draws_is_named(data, bad):
    with pytest.raises((TypeError, ValueError), match="factor_draws"):
        fit_gibbs(SPEC, data, draws=10, factor_draws=bad, **KW)


def test_a_cap_the_rule_could_never_pass_is_refused(data):
    with pytest.raises(ValueError, match=r"factor_draws=100 keeps at most 200 draws.*ess_min=400"):
        fit_gibbs(SPEC, data, factor_draws=100, **KW)
    with pytest.raises(ValueError, match=r"factor_draws=20 .* ess_min=50"):
        fit_gibbs(SPEC, data, factor_draws=20, ess_min=50, **KW)
    fit_gibbs(SPEC, data, draws=10, factor_draws=100, **KW)  # a fixed run has no rule to pass


def test_a_run_cut_short_keeps_matching_posterior_and_trace(data):
    """A time budget stops a spaced fixed run mid-way: the posterior is every spacing-th trace draw."""
    opts = KW | {"thin": 20, "factor_draws": 320}
    with pytest.warns(UserWarning, match="max_seconds") as record:
        fit = fit_gibbs(SPEC, data, draws=6400, max_seconds=1.0, **opts)
    info, spacing = fit.info, fit.info["draw_spacing"]
    assert spacing == 32 and info["stopped_by"] == "max_seconds"
    n, kept = fit.n_draws, info["kept_draws"]
    assert n >= 1 and (n - 1) * spacing < kept
    # the warning counts the draws made and the ones the posterior holds
    message = next(str(w.message) for w in record if "max_seconds" in str(w.message))
    assert f"keeping the first {kept} draws (the posterior holds one in 32: {n}) (6400 requested)" in message
    reference = fit_gibbs(SPEC, data, draws=kept, **(opts | {"factor_draws": None}))
    for name, value in _arrays(reference.idata).items():
        np.testing.assert_array_equal(_arrays(fit.idata)[name], value[:, ::spacing][:, :n], err_msg=name)
    np.testing.assert_array_equal(_arrays(fit.idata, SCALAR_GROUP)["sigma"], _arrays(reference.idata)["sigma"])


def test_memory_sink_grows_into_its_reserve_without_copying():
    shapes = {"x": ((1000,), np.dtype(np.float32))}  # 4 kB a draw: the reserve is a huge-page block
    sink = MemorySink(shapes, ["s"], chains=2, n_keep=10, reserve=2000)
    for draw in range(10):
        for chain in range(2):
            sink.record(chain, draw, {"x": np.full(1000, 10 * chain + draw)}, {"s": float(draw)})
    first = sink.variables["x"]
    assert first.shape == (2, 10, 1000) and first.flags.writeable
    sink.grow(500)  # within the reserve: the same memory, a longer view
    assert sink.variables["x"].shape == (2, 500, 1000) and np.shares_memory(first, sink.variables["x"])
    sink.grow(3000)  # past it: new blocks, the draws so far copied
    grown = sink.variables["x"]
    assert grown.shape == (2, 3000, 1000) and not np.shares_memory(first, grown)
    np.testing.assert_array_equal(grown[1, :10, 0], 10 + np.arange(10))
    np.testing.assert_array_equal(sink.stats["s"][0, :10], np.arange(10))
    sink.keep([1], 10)
    np.testing.assert_array_equal(sink.variables["x"][0, :, 5], 10 + np.arange(10))


def test_empty_block_is_a_plain_writable_array():
    for shape in ((3, 4), (2, 600, 1000)):  # small: numpy.empty; large: huge-page memory where offered
        block = empty_block(shape, np.float64)
        block[...] = 1.5
        assert block.shape == shape and block.dtype == np.float64 and block.sum() == 1.5 * block.size
