"""Features end to end: save/load, refusal by the other routes, unknown ids, fold-in from a result.

The sampler's feature block is tested in ``test_gibbs_features.py``; here, what a user does
with a fit that has features.
"""

from __future__ import annotations

import inspect

import numpy as np
import pandas as pd
import pytest

import bayesmf
from bayesmf.data import RatingsData
from bayesmf.features import Features
from bayesmf.inference import fit as fit_route
from bayesmf.inference.gibbs import fit_gibbs
from bayesmf.posterior import SCALAR_GROUP, make_posterior, shapes_for
from bayesmf.results import FitResult
from bayesmf.spec import PMF
from bayesmf.storage import read
from tests.test_gibbs_features import SPEC, feature_frames

N_USERS, N_ITEMS, N_COLD = 12, 9, 3
GIBBS = {"draws": 20, "tune": 20, "chains": 2, "progressbar": False, "random_seed": 1}


def _data(seed: int = 0) -> RatingsData:
    """12 users x 9 items; user features for 3 more users (ids 12-14, no ratings: cold start)."""
    rng = np.random.default_rng(seed)
    users, items = feature_frames(rng, N_USERS + N_COLD, N_ITEMS)
    u, i = np.nonzero(rng.random((N_USERS, N_ITEMS)) < 0.6)
    frame = pd.DataFrame({"user": u, "item": i, "rating": rng.integers(1, 6, len(u)).astype(float)})
    data = RatingsData.from_dataframe(frame, "user", "item", "rating", scale=(1, 5))
    return data.with_features(users, Features.from_frame(items, "item", multi=["genres"]))


@pytest.fixture(scope="module")
def data() -> RatingsData:
    return _data()


@pytest.fixture(scope="module")
def fit(data: RatingsData) -> FitResult:
    return fit_gibbs(SPEC, data, **GIBBS)


#: known pairs, and pairs of the cold users (features attached, no ratings)
QUERY = pd.DataFrame({"user": [0, 3, 12, 14, 13], "item": [1, 2, 0, 4, 8]})


# -- save / load -------------------------------------------------------------------------------
def _same_fit(back: FitResult, fit: FitResult) -> None:
    for side in ("user", "item"):
        mine, theirs = getattr(fit.train, f"{side}_features"), getattr(back.train, f"{side}_features")
        assert theirs.encoder == mine.encoder and theirs.ids.equals(mine.ids)
        np.testing.assert_array_equal(theirs.values, mine.values)
        for group in ("posterior", "constant_data"):
            coord = back.idata[group][f"{side}_feature"].values
            assert coord.dtype.kind == "U" and coord.tolist() == mine.names
    pd.testing.assert_frame_equal(back.predict(QUERY, random_seed=3), fit.predict(QUERY, random_seed=3))
    pd.testing.assert_frame_equal(back.predict_proba(QUERY, random_seed=3), fit.predict_proba(QUERY, random_seed=3))


@pytest.mark.parametrize("name", ["fit.nc", "fit.zarr"])
def test_save_and_load_keep_the_features_and_the_predictions(fit, tmp_path, name):
    fit.save(tmp_path / name)
    back = bayesmf.load(tmp_path / name)
    assert back.train.user_features.n_features == 5 and len(back.train.user_features.ids) == N_USERS + N_COLD
    _same_fit(back, fit)
    if name.endswith(".zarr"):  # the lazy read: draws left on disk
        lazy = FitResult(**read(tmp_path / name, lazy=True)._asdict())
        assert not isinstance(lazy.posterior["U"].data, np.ndarray)
        _same_fit(lazy, fit)


def test_a_store_backed_fit_reads_back_with_its_features(data, tmp_path):
    stored = fit_gibbs(SPEC, data, store=tmp_path / "run.zarr", **GIBBS)
    assert not isinstance(stored.posterior["U"].data, np.ndarray)
    in_memory = fit_gibbs(SPEC, data, **GIBBS)
    np.testing.assert_array_equal(stored.posterior["feature_weight_item"].values,
                                  in_memory.posterior["feature_weight_item"].values)
    _same_fit(bayesmf.load(tmp_path / "run.zarr"), in_memory)
    stored.save(tmp_path / "copy.nc")
    _same_fit(bayesmf.load(tmp_path / "copy.nc"), in_memory)


# -- the other routes refuse features before fitting -------------------------------------------
_NO_FEATURES = r"does not use features, and this data has {which} features.*method='gibbs'"
_NEEDS_PER_SIDE = r"this data has {which} features, which need the per-side prior"


@pytest.mark.parametrize(
    ("method", "spec", "message"),
    [("nuts", PMF(n_factors=2, factor_prior="shared"), _NEEDS_PER_SIDE), ("advi", PMF(n_factors=2, factor_prior="shared"), _NEEDS_PER_SIDE),
     ("map", PMF(n_factors=2, priors="fixed"), _NO_FEATURES), ("als", PMF(n_factors=2, priors="fixed"), _NO_FEATURES),
     ("sgd", PMF(n_factors=2, priors="fixed"), _NO_FEATURES)],
)
def test_other_routes_refuse_features_before_fitting(data, method, spec, message, monkeypatch):
    """MAP, ALS and SGD never use features; NUTS and ADVI refuse them under the shared prior."""
    import importlib

    module = importlib.import_module(f"bayesmf.inference.{method}")
    public = getattr(module, f"fit_{method}")
    # nothing may be fitted: the starting point and the model are never built
    monkeypatch.setattr("bayesmf.inference.starts.map_start", lambda *a, **k: pytest.fail("fitting started"))
    both = message.format(which="user and item")
    with pytest.raises(ValueError, match=both):
        public(spec, data)
    with pytest.raises(ValueError, match=both):
        fit_route(spec, data, method=method)
    only_items = RatingsData(data.user_idx, data.item_idx, data.rating, data.scale, data.users, data.items,
                             item_features=data.item_features)
    with pytest.raises(ValueError, match=message.format(which="item")):
        public(spec, only_items)
    assert data.without_features().user_features is None and data.without_features().n_ratings == data.n_ratings


def test_gibbs_refuses_features_without_the_per_side_prior(data):
    for spec in (PMF(n_factors=2, factor_prior="shared"), PMF(n_factors=2, priors="fixed")):
        with pytest.raises(ValueError, match="features, which need the per-side prior"):
            fit_gibbs(spec, data, **GIBBS)


# -- unknown ids --------------------------------------------------------------------------------
def test_unknown_ids_without_features_are_refused_naming_them(fit):
    pairs = pd.DataFrame({"user": [0, 100, 101], "item": [0, 1, 2]})
    for call in (lambda: fit.predict(pairs), lambda: fit.predict_proba(pairs), lambda: fit.predict_draws(pairs),
                 lambda: fit.recommend([100], n=2)):
        with pytest.raises(ValueError, match=r"user id\(s\) \[100(, 101)?\] are not in the model.*fold_in\(\{\}"):
            call()
    with pytest.raises(ValueError, match=r"item id\(s\) \['new'\].*fold_in_items"):
        fit.predict(pd.DataFrame({"user": [0], "item": ["new"]}))
    with pytest.raises(KeyError, match="unknown user"):
        fit.predict(pairs, unknown="raise")


def _planted_result(data: RatingsData, seed: int = 4) -> FitResult:
    """Hand-built draws of the feature layout with strong user-feature weights."""
    rng = np.random.default_rng(seed)
    shapes = shapes_for(SPEC, data)
    draws = {name: rng.normal(0, 0.3, (2, 30, *shape)) for name, (shape, _) in shapes.items()}
    for name in ("sigma", "sigma_factor_user", "sigma_factor_item", "sigma_user_bias", "sigma_item_bias"):
        draws[name] = np.abs(draws[name]) + 0.2
    draws["mu"] += 3.0
    draws["feature_weight_user"] += np.array([1.5, 1.0])  # every feature moves both factors
    draws["V"] += 1.0
    return FitResult(SPEC, make_posterior(SPEC, data, draws), "gibbs", data)


def test_unknown_id_with_features_is_predicted_from_its_feature_prior(data):
    """The expected rating of a cold user equals the mean over draws of mu + c_j + (m + x^T W) . V_j.

    Prior draws for the user (1,020 components) add Monte Carlo error of known sd; the bound
    is 5 of those sds per pair (false alarm < 1e-5 for the 6 pairs). The population prior's
    value (no x^T W) lies over 10 sds away for most of them, so the check fails when the
    features are ignored.
    """
    result = _planted_result(data)
    a = result.arrays()
    post = result.posterior
    m = post["factor_mean_user"].values.reshape(-1, 2)
    W = post["feature_weight_user"].values.reshape(-1, 5, 2)
    sd_u = post["sigma_factor_user"].values.reshape(-1)
    sd_b = post["sigma_user_bias"].values.reshape(-1)
    pairs = pd.DataFrame({"user": [12, 12, 13, 13, 14, 14], "item": [0, 5, 1, 7, 2, 8]})
    out = result.predict(pairs, kind="expected", clip=False, random_seed=2)
    assert out["new_user"].all()
    x = data.user_features.rows_for([12, 12, 13, 13, 14, 14])
    j = pairs["item"].to_numpy()
    V = a.V[:, j].astype(float)  # (S, P, K)
    base = a.mu[:, None] + a.item_bias[:, j]
    exact = (base + np.einsum("spk,spk->sp", m[:, None] + np.einsum("pf,sfk->spk", x, W), V)).mean(axis=0)
    population = (base + np.einsum("sk,spk->sp", m, V)).mean(axis=0)
    n_comp = 1020  # prior_components(60)
    mc_sd = np.sqrt(np.mean(sd_u[:, None] ** 2 * np.sum(V**2, axis=-1) + sd_b[:, None] ** 2, axis=0) / n_comp)
    np.testing.assert_array_less(np.abs(out["mean"].to_numpy() - exact), 5 * mc_sd)
    assert np.sum(np.abs(population - exact) > 10 * mc_sd) >= 4  # ignoring the features would fail
    # the same users folded in from their stored features (one prior draw per posterior draw) agree
    folded = result
    for user in (12, 13, 14):
        folded = folded.fold_in({}, user=user, random_seed=user)
    again = folded.predict(pairs, kind="expected", clip=False)
    np.testing.assert_array_less(np.abs(again["mean"].to_numpy() - exact), 5 * mc_sd * np.sqrt(n_comp / 60))


# -- fold-in from a result -----------------------------------------------------------------------
def test_fold_in_methods_show_their_signatures_and_keep_the_scalar_groups(data):
    for name, first in (("fold_in", "user"), ("fold_in_items", "item")):
        params = inspect.signature(getattr(FitResult, name)).parameters
        assert list(params)[:3] == ["self", "ratings", first] and "features" in params
    fit = fit_gibbs(SPEC, data, keep_warmup=True, **GIBBS)
    assert {SCALAR_GROUP, "sample_stats", "warmup_posterior"} <= set(fit.idata.children)
    rng = np.random.default_rng(0)
    _, new_items = feature_frames(rng, 1, 2)
    frame = new_items.set_axis(["n1", "n2"])
    folded = fit.fold_in_items(pd.DataFrame({"user": [0, 1], "item": ["n1", "n1"], "rating": [4.0, 5.0]}),
                               random_seed=1, features=frame)
    folded = folded.fold_in_items({}, item="n2", random_seed=1, features=frame)
    assert folded.info["folded_in_items"] == ["n1", "n2"]
    assert folded.posterior.sizes["item"] == N_ITEMS + 2
    for group in (SCALAR_GROUP, "sample_stats"):
        xr_equal = folded.idata[group].to_dataset().identical(fit.idata[group].to_dataset())
        assert xr_equal, group
    assert "warmup_posterior" not in folded.idata.children
    out = folded.predict(pd.DataFrame({"user": [0, 0], "item": ["n1", "n2"]}), random_seed=0)
    assert out["new_item"].tolist() == [False, True] and np.all(np.isfinite(out["mean"]))
