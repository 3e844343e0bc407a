"""Prediction, ranking and saving from a fit whose draws stay on disk (a zarr store read lazily).

The same seed gives the same numbers from the store as from the fit held in memory, for
every route (`predict` of each kind, `predict_draws`, `predict_proba`, `recommend` by each
rule, the top-N ranking, the calibration table), whether the pairs form one group or many
(`bayesmf.predictive.lazy.GATHER_BUDGET`); the store is read a block of draws at a time,
so the peak memory stays far below the posterior's size where reading it whole holds all
of it; and a store is never overwritten by saving the fit it backs.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import bayesmf.inference.gibbs.zarr_sink as zarr_sink
import bayesmf.mean_ranking as mean_ranking
import bayesmf.predictive.lazy as lazy_module
import bayesmf.predictive.view as view_module
from bayesmf import PMF, load, simulate
from bayesmf.batched_ranking import rank_candidates
from bayesmf.data import RatingsData
from bayesmf.inference.gibbs import fit_gibbs
from bayesmf.metrics import calibration_table
from bayesmf.options import PredictOptions
from bayesmf.posterior import make_posterior, param_names, posterior_arrays
from bayesmf.results import FitResult
from bayesmf.storage import read

KW = {"draws": 23, "tune": 6, "thin": 2, "chains": 2, "random_seed": 4, "progressbar": False}
#: a budget that gathers eight user or item rows at a time: many groups
TINY = 8 * 2 * KW["draws"] * (2 + 1)


def _rated(sim_data: RatingsData) -> RatingsData:
    """The simulated ratings rounded to the levels 1..5 (so predict_proba applies)."""
    rating = np.clip(np.round(sim_data.rating), 1, 5)
    return RatingsData(sim_data.user_idx, sim_data.item_idx, rating, (1.0, 5.0), sim_data.users, sim_data.items)


@pytest.fixture(scope="module")
def fits(tmp_path_factory):
    """The same Gibbs fit in memory and through a store of several blocks of draws per chain."""
    data = _rated(simulate(n_users=40, n_items=30, n_factors=2, density=0.3, noise=0.5, seed=7).data)
    path = tmp_path_factory.mktemp("lazy") / "post.zarr"
    out = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(zarr_sink, "_MAX_BLOCK", 5)
        for name, spec in (
            ("biases", PMF(n_factors=2)),
            ("per_side", PMF(n_factors=2, factor_prior="per_side", per_factor_scales=True, biases=False)),
        ):
            stored = fit_gibbs(spec, data, store=path.with_name(f"{name}.zarr"), **KW)
            out[name] = (fit_gibbs(spec, data, **KW), stored)
    return data, out


@pytest.fixture(params=["one group", "many groups"])
def budget(request, monkeypatch):
    if request.param == "many groups":
        monkeypatch.setattr(lazy_module, "GATHER_BUDGET", TINY)
    return request.param


@pytest.fixture
def gathered(monkeypatch):
    """Count the groups `by_groups` gathers (0: the lazy path did not run)."""
    count = {"n": 0}
    gather = lazy_module.gather

    def counting(*args):
        count["n"] += 1
        return gather(*args)

    monkeypatch.setattr(lazy_module, "gather", counting)
    return count


def _queries(data: RatingsData) -> pd.DataFrame:
    """Known pairs (some twice), a new user, a new item and both new."""
    users, items = data.users.classes, data.items.classes
    rows = [(users[u], items[i]) for u, i in zip(data.user_idx[:25], data.item_idx[:25], strict=True)]
    rows += [(users[3], items[4]), (users[3], items[4]), ("new user", items[2]), (users[1], "new item")]
    rows += [("new user", "new item")]
    return pd.DataFrame(rows, columns=["user", "item"])


@pytest.mark.parametrize("name", ["biases", "per_side"])
def test_predict_routes_give_the_numbers_of_memory(fits, budget, gathered, name):
    data, pair = fits
    memory, stored = pair[name]
    assert not isinstance(stored.posterior["U"].data, np.ndarray)  # on disk
    assert len(stored.posterior["U"].data.chunks[1]) > 1  # several blocks of draws per chain
    query = _queries(data)
    for kwargs in (
        {},
        {"kind": "expected"},
        {"kind": "predictive", "interval": "hdi", "threshold": 4.0},
        {"kind": "expected", "interval": "hdi", "threshold": 2.5, "clip": False},
    ):
        got, expected = stored.predict(query, random_seed=3, **kwargs), memory.predict(query, random_seed=3, **kwargs)
        pd.testing.assert_frame_equal(got, expected, check_exact=False, rtol=1e-12, atol=1e-12, obj=str(kwargs))
    for kind in ("predictive", "expected"):
        np.testing.assert_allclose(
            stored.predict_draws(query, kind=kind, random_seed=2),
            memory.predict_draws(query, kind=kind, random_seed=2),
            rtol=1e-12, atol=1e-12,
        )
    proba = stored.predict_proba(query, random_seed=2)
    assert [c for c in proba.columns if c.startswith("p_")] == ["p_1", "p_2", "p_3", "p_4", "p_5"]
    pd.testing.assert_frame_equal(proba, memory.predict_proba(query, random_seed=2), check_exact=False, rtol=1e-12)
    pd.testing.assert_frame_equal(
        calibration_table(stored, data), calibration_table(memory, data), check_exact=False, rtol=1e-12
    )
    assert gathered["n"] >= (2 if budget == "many groups" else 1)


@pytest.mark.parametrize("rank_by", ["mean", "lower", "prob", "thompson"])
def test_recommend_gives_the_lists_of_memory(fits, budget, gathered, rank_by):
    data, pair = fits
    memory, stored = pair["biases"]
    users = [data.users.classes[0], data.users.classes[5], "new user"]
    for kwargs in ({}, {"kind": "expected", "interval": "hdi"}):
        got = stored.recommend(users, n=5, rank_by=rank_by, random_seed=11, **kwargs)
        expected = memory.recommend(users, n=5, rank_by=rank_by, random_seed=11, **kwargs)
        pd.testing.assert_frame_equal(got, expected, check_exact=False, rtol=1e-12, atol=1e-12)
    assert gathered["n"] >= 2


@pytest.mark.parametrize("kwargs", [{"kind": "expected", "threshold": 2.0}, {"kind": "predictive", "threshold": 1.0}])
def test_tied_scores_give_the_lists_of_memory(fits, budget, gathered, kwargs):
    """Scores tied (at 1 for the known user, a share of the prior draws for the new one) head
    every list; both fits order them by the mean, then the item."""
    data, pair = fits
    memory, stored = pair["biases"]
    users = [data.users.classes[0], data.users.classes[5], "new user"]
    got = stored.recommend(users, n=8, rank_by="prob", random_seed=11, **kwargs)
    expected = memory.recommend(users, n=8, rank_by="prob", random_seed=11, **kwargs)
    pd.testing.assert_frame_equal(got, expected, check_exact=False, rtol=1e-12, atol=1e-12)
    for _, rows in expected.groupby("user", sort=False):
        score, mean = rows["score"].to_numpy(), rows["mean"].to_numpy()
        tied = score[1:] == score[:-1]
        assert tied.sum() >= 2  # ties, and the mean decides among them
        assert (mean[1:][tied] < mean[:-1][tied]).all()
    assert gathered["n"] >= 2


@pytest.mark.parametrize("rank_by", ["mean", "lower", "prob", "thompson"])
@pytest.mark.parametrize("kind", ["predictive", "expected"])
def test_top_n_ranking_gives_the_lists_of_memory(fits, gathered, rank_by, kind):
    """The batched rankings (bounds summed a block of draws at a time) and the user-by-user one."""
    data, pair = fits
    memory, stored = pair["biases"]
    users = [0, 4, 9, 17]
    candidates = [np.setdiff1d(np.arange(data.n_items), data.item_idx[data.user_idx == u]) for u in users]
    opts = PredictOptions(kind=kind, threshold=3.5, random_seed=1)
    got = rank_candidates(stored, users, candidates, 5, rank_by, opts)
    expected = rank_candidates(memory, users, candidates, 5, rank_by, opts)
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_array_equal(a, b)
    assert gathered["n"] > 0


def test_draw_sums_and_top_n_evaluation_match_memory(fits):
    """The batched bounds' sums over draws, a stored block at a time, equal the in-memory sums;
    `evaluate_topn` gives the same table."""
    from bayesmf.batched_ranking import _sums
    from bayesmf.predictive.view import model_view
    from bayesmf.topn import evaluate_topn

    data, pair = fits
    memory, stored = pair["biases"]
    lazy_view, view = model_view(stored, lazy=True), model_view(memory)
    assert lazy_module.is_lazy(lazy_view) and not lazy_module.is_lazy(view)
    assert len(list(lazy_module.draw_blocks(lazy_view))) == len(stored.posterior["U"].data.chunks[1]) * KW["chains"]
    users = np.arange(0, data.n_users, 3)
    x = np.linspace(2.0, 4.0, len(users))
    for mode, sign in ((0, 1.0), (1, -1.0), (2, 1.0)):
        for got, expected in zip(_sums(lazy_view, users, mode, x, sign), _sums(view, users, mode, x, sign), strict=True):
            np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12, err_msg=f"mode {mode}")
    rows = []
    for u in range(20):  # held-out ratings of items the user did not rate in training
        unrated = np.setdiff1d(np.arange(data.n_items), data.item_idx[data.user_idx == u])[:4]
        rows += [(data.users.classes[u], data.items.classes[i], 5.0 if i % 2 else 2.0) for i in unrated]
    test = pd.DataFrame(rows, columns=["user", "item", "rating"])
    for rank_by in ("mean", "lower"):
        got = evaluate_topn(stored, test, k=3, rank_by=rank_by, threshold=3.5, random_seed=1, progressbar=False)
        expected = evaluate_topn(memory, test, k=3, rank_by=rank_by, threshold=3.5, random_seed=1, progressbar=False)
        pd.testing.assert_frame_equal(got.per_user, expected.per_user)
        pd.testing.assert_frame_equal(got.summary, expected.summary)


def test_saving_never_overwrites_the_store_it_reads(fits, tmp_path):
    _, pair = fits
    memory, stored = pair["biases"]
    source = stored.info["store"]
    before = load(source).posterior["U"].values
    for overwrite in (False, True):
        with pytest.raises(ValueError, match=r"biases\.zarr' is the store this result's draws are read from"):
            stored.save(source, overwrite=overwrite)
    np.testing.assert_array_equal(load(source).posterior["U"].values, before)
    # another path: the same draws, and the copy read lazily refuses its own path in turn
    copy = stored.save(tmp_path / "copy.zarr")
    reread = FitResult(**read(copy, lazy=True)._asdict())
    xr.testing.assert_equal(reread.posterior.load(), memory.posterior)
    with pytest.raises(ValueError, match="is the store this result's draws are read from"):
        reread.save(tmp_path / "copy.zarr", overwrite=True)


# -- memory ----------------------------------------------------------------------------

N_USERS, N_ITEMS, K, CHAINS, DRAWS, BLOCK = 2000, 1000, 8, 2, 100, 5


def _fake_store(path):
    """A store of 2 x 100 random draws (24 MB; 5 draws a chunk), read lazily; its size in bytes."""
    data = _rated(simulate(n_users=N_USERS, n_items=N_ITEMS, n_factors=K, density=0.01, seed=1).data)
    spec = PMF(n_factors=K, factor_prior="shared")
    rng = np.random.default_rng(0)
    sizes = {"U": (N_USERS, K), "V": (N_ITEMS, K), "user_bias": (N_USERS,), "item_bias": (N_ITEMS,)}
    draws = {}
    for name in param_names(spec):
        shape = (CHAINS, DRAWS, *sizes.get(name, ()))
        draws[name] = 0.3 * rng.standard_normal(shape) if name in sizes else 0.5 + rng.uniform(0, 0.2, shape)
    tree = make_posterior(spec, data, draws)
    posterior = tree["posterior"].to_dataset().chunk({"chain": 1, "draw": BLOCK})
    tree = xr.DataTree.from_dict({"posterior": posterior} | {k: v.to_dataset() for k, v in tree.children.items() if k != "posterior"})
    FitResult(spec, tree, "gibbs", data, {}).save(path)
    size = sum(v.nbytes for v in posterior.data_vars.values())
    return FitResult(**read(path, lazy=True)._asdict()), size


def _peak(call):
    tracemalloc.start()
    try:
        call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_stays_below_the_posterior(tmp_path, monkeypatch):
    """Each route's peak stays under a third of the posterior; read whole, it holds all of it.

    (`predict_proba`, HDIs and the other rules gather their draws as `predict` and
    ``"lower"`` do; the equality tests cover them.)

    The budget gathers 100 user or item rows (all 200 draws: 0.8 MB) per group, a block is
    5 of the 200 draws (0.6 MB), and chunks of 20 pairs keep the per-chunk buffers small;
    the posterior is 24 MB. The queries touch a few of the 3,000 rows, as a test set's
    pairs or a user's candidates are a small part of a large model.
    """
    fit, size = _fake_store(tmp_path / "post.zarr")
    monkeypatch.setattr(lazy_module, "GATHER_BUDGET", 100 * CHAINS * DRAWS * (K + 1))
    monkeypatch.setattr(mean_ranking, "BLOCK_BUDGET", 2**16)  # the batched mean ranking's copies
    train = fit.train
    pairs = pd.DataFrame({"user": train.users.classes[:60], "item": train.items.classes[100:160]})
    user, items = train.users.classes[0], train.items.classes[:30]
    top_users = list(range(20))
    candidates = [np.arange(50)] * len(top_users)
    routes = {
        "predict": lambda: fit.predict(pairs, chunk_size=20, progressbar=False),
        "predict_draws": lambda: fit.predict_draws(pairs[:10], chunk_size=5, random_seed=1),
        "recommend lower": lambda: fit.recommend(user, items=items, rank_by="lower", chunk_size=20, random_seed=1),
        **{
            f"top-N {rule}": (lambda rule=rule: rank_candidates(fit, top_users, candidates, 5, rule, PredictOptions()))
            for rule in ("mean", "lower")
        },
        "save": lambda: fit.save(tmp_path / "copy.zarr", overwrite=True),
    }
    fit.predict(pairs[:3], progressbar=False)  # compile and import outside the measurement
    peaks = {name: _peak(call) for name, call in routes.items()}
    assert max(peaks.values()) < size / 3, (peaks, size)
    # the test can fail: the old path reads the posterior whole into memory
    monkeypatch.setattr(view_module, "posterior_arrays", lambda tree, lazy=False: posterior_arrays(tree))
    for name in ("predict", "recommend lower"):
        assert _peak(routes[name]) > size, name
