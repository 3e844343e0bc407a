"""Save/load round trips (netCDF and zarr), refusal to overwrite, atomic writes, bad files."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import bayesmf
from bayesmf import PMF, RatingsData, simulate
from bayesmf.data import IdEncoder
from bayesmf.io import FORMAT_VERSION, BayesmfFileError, load, save
from bayesmf.posterior import dims_of, make_posterior, param_names
from bayesmf.results import FitResult

SUFFIXES = [".nc", ".zarr"]


def _data(str_users: bool) -> RatingsData:
    base = simulate(n_users=25, n_items=15, n_factors=2, density=0.3, seed=2).data
    users = (
        IdEncoder("user", np.asarray([f"user-{i}" for i in range(base.n_users)], dtype=object))
        if str_users
        else IdEncoder("user", np.arange(base.n_users) * 7 + 100)
    )
    items = IdEncoder("item", np.asarray([f"film é{i}" for i in range(base.n_items)], dtype=object))
    return RatingsData(base.user_idx, base.item_idx, base.rating, base.scale, users, items)


def _result(spec: PMF, data: RatingsData, method="nuts", chains=2, draws=20, seed=0) -> FitResult:
    rng = np.random.default_rng(seed)
    sizes = {"user": data.n_users, "item": data.n_items, "factor": spec.n_factors}
    if data.levels is not None:
        sizes["cutpoint"] = len(data.levels) - 1
    arrays = {
        name: rng.normal(size=(chains, draws, *(sizes[d] for d in dims_of(spec, name))))
        for name in param_names(spec)
    }
    stats = {"diverging": rng.random((chains, draws)) < 0.1, "depth": rng.integers(1, 6, (chains, draws))}
    tree = make_posterior(
        spec, data, arrays, sample_stats=stats, attrs={"method": method, "fit_seconds": 2.5, "sampler": "nutpie"}
    )
    info = {
        "fit_seconds": 2.5,
        "elbo": rng.normal(size=50),
        "options": {"draws": draws, "tune": 10, "seed": None, "nested": [1, 2.5, "x"]},
        "converged": True,
        "nan": float("nan"),
        "not_json": object(),
    }
    return FitResult(spec, tree, method, data, info)


@pytest.mark.parametrize("suffix", SUFFIXES)
@pytest.mark.parametrize("str_users", [True, False])
def test_round_trip_exact(tmp_path, suffix, str_users):
    data = _data(str_users)
    spec = PMF(n_factors=2, hyperpriors={"sigma2": (3.0, 0.5)})
    result = _result(spec, data)
    path = tmp_path / f"fit{suffix}"
    assert save(result, path) == path
    loaded = load(path)

    assert loaded.spec == spec
    assert loaded.method == result.method
    for group in ("posterior", "sample_stats", "observed_data", "constant_data"):
        before = result.idata[group].to_dataset()
        after = loaded.idata[group].to_dataset()
        xr.testing.assert_identical(after, before)
        for name in before.variables:
            assert after[name].dtype == before[name].dtype, (group, name)
    assert loaded.posterior["U"].dtype == np.float32 and loaded.posterior["V"].dtype == np.float32
    # encoders with their id types
    assert loaded.train.users.classes.tolist() == data.users.classes.tolist()
    assert loaded.train.items.classes.tolist() == data.items.classes.tolist()
    assert type(loaded.train.users.classes.tolist()[0]) is type(data.users.classes.tolist()[0])
    np.testing.assert_array_equal(loaded.train.user_idx, data.user_idx)
    np.testing.assert_array_equal(loaded.train.rating, data.rating)
    assert loaded.train.scale == data.scale
    # info: JSON-safe part, numpy arrays back exactly, the rest dropped
    np.testing.assert_array_equal(loaded.info["elbo"], result.info["elbo"])
    assert loaded.info["elbo"].dtype == result.info["elbo"].dtype
    assert loaded.info["options"] == result.info["options"]
    assert loaded.info["converged"] is True and np.isnan(loaded.info["nan"])
    assert "not_json" not in loaded.info
    # the caller's result is untouched
    assert "not_json" in result.info
    # the file carries the metadata as JSON
    tree = xr.open_datatree(path, engine="zarr" if suffix == ".zarr" else "h5netcdf", **({"consolidated": False} if suffix == ".zarr" else {}))
    with tree:
        assert json.loads(tree.attrs["bayesmf_spec"]) == spec.to_dict()
        assert tree.attrs["bayesmf_version"] == bayesmf.__version__
        assert int(tree.attrs["bayesmf_format"]) == FORMAT_VERSION


def test_round_trip_other_layouts(tmp_path):
    base = _data(False)
    ordinal = RatingsData(base.user_idx, base.item_idx, np.round(base.rating), base.scale, base.users, base.items)
    for i, (spec, data) in enumerate(
        [
            (PMF(n_factors=3, biases=False, priors="fixed"), base),
            (PMF(n_factors=2, per_factor_scales=True), base),
            (PMF(n_factors=2, likelihood="ordinal"), ordinal),
        ]
    ):
        result = _result(spec, data, method="advi", chains=1, draws=7)
        path = tmp_path / f"fit{i}.nc"
        result.save(path)  # the FitResult wrapper
        loaded = bayesmf.load(path)
        xr.testing.assert_identical(loaded.idata["posterior"].to_dataset(), result.idata["posterior"].to_dataset())
        assert loaded.spec == spec


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_refuses_to_overwrite(tmp_path, suffix):
    result = _result(PMF(n_factors=2), _data(True))
    other = _result(PMF(n_factors=2), _data(True), seed=1)
    path = tmp_path / f"fit{suffix}"
    save(result, path)
    with pytest.raises(ValueError, match="overwrite=True"):
        save(other, path)
    # nothing the user had is lost
    np.testing.assert_array_equal(load(path).posterior["U"].values, result.posterior["U"].values)
    save(other, path, overwrite=True)
    np.testing.assert_array_equal(load(path).posterior["U"].values, other.posterior["U"].values)
    assert sorted(os.listdir(tmp_path)) == [f"fit{suffix}"]  # no temp files left


def test_never_replaces_foreign_directory_or_kind(tmp_path):
    result = _result(PMF(n_factors=2), _data(True))
    folder = tmp_path / "mine.zarr"
    folder.mkdir()
    (folder / "precious.txt").write_text("keep me")
    with pytest.raises(ValueError, match="not a zarr store"):
        save(result, folder, overwrite=True)
    assert (folder / "precious.txt").read_text() == "keep me"
    afile = tmp_path / "file.zarr"
    afile.write_text("x")
    with pytest.raises(ValueError, match="is a file"):
        save(result, afile, overwrite=True)
    assert afile.read_text() == "x"


def test_failed_save_leaves_nothing(tmp_path, monkeypatch):
    result = _result(PMF(n_factors=2), _data(True))
    path = tmp_path / "fit.nc"

    def broken(self, *args, **kwargs):
        target = args[0]
        with open(target, "wb") as fh:  # a partial file, then a crash
            fh.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(xr.DataTree, "to_netcdf", broken)
    with pytest.raises(OSError, match="disk full"):
        save(result, path)
    assert os.listdir(tmp_path) == []


def test_format_choice(tmp_path):
    result = _result(PMF(n_factors=2), _data(True))
    with pytest.raises(ValueError, match="suffix"):
        save(result, tmp_path / "fit.pkl")
    with pytest.raises(ValueError, match="format"):
        save(result, tmp_path / "fit.nc", format="hdf5")
    path = save(result, tmp_path / "fit.bin", format="zarr")
    assert path.is_dir()
    assert load(path).method == "nuts"
    with pytest.raises(ValueError, match="does not exist"):
        save(result, tmp_path / "missing" / "fit.nc")
    with pytest.raises(TypeError, match="FitResult"):
        save(result.idata, tmp_path / "x.nc")


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope"):
        load(tmp_path / "nope.nc")
    # a netCDF file that bayesmf did not write
    foreign = tmp_path / "foreign.nc"
    xr.DataTree.from_dict({"posterior": xr.Dataset({"a": ("x", np.arange(3.0))})}).to_netcdf(foreign, engine="h5netcdf")
    with pytest.raises(BayesmfFileError, match="not written by bayesmf"):
        load(foreign)
    junk = tmp_path / "junk.nc"
    junk.write_bytes(b"not a netcdf file at all")
    with pytest.raises(BayesmfFileError, match=r"junk\.nc"):
        load(junk)


def _rewrite(path, dest, mutate):
    tree = xr.open_datatree(path, engine="h5netcdf")
    with tree:
        tree = tree.load()
    tree = mutate(tree)
    tree.to_netcdf(dest, engine="h5netcdf")
    return dest


def test_load_refuses_newer_format_and_mismatched_layout(tmp_path):
    result = _result(PMF(n_factors=2), _data(True))
    path = save(result, tmp_path / "fit.nc")

    def newer(tree):
        tree.attrs["bayesmf_format"] = FORMAT_VERSION + 1
        return tree

    with pytest.raises(BayesmfFileError, match="newer"):
        load(_rewrite(path, tmp_path / "newer.nc", newer))

    def other_spec(tree):
        # claims a model without biases, but stores bias draws
        tree.attrs["bayesmf_spec"] = PMF(n_factors=2, biases=False).to_json()
        return tree

    with pytest.raises(BayesmfFileError, match="variables"):
        load(_rewrite(path, tmp_path / "spec.nc", other_spec))

    def renamed(tree):
        post = tree["posterior"].to_dataset().rename({"sigma": "noise"})
        return _replace_group(tree, "posterior", post)

    with pytest.raises(BayesmfFileError, match="noise"):
        load(_rewrite(path, tmp_path / "renamed.nc", renamed))

    def unknown_option(tree):
        spec = json.loads(tree.attrs["bayesmf_spec"])
        spec["n_layers"] = 3
        tree.attrs["bayesmf_spec"] = json.dumps(spec)
        return tree

    with pytest.raises(BayesmfFileError, match="n_layers"):
        load(_rewrite(path, tmp_path / "unknown.nc", unknown_option))


def _replace_group(tree, name, ds):
    groups = {k: v.to_dataset() for k, v in tree.children.items()}
    groups[name] = ds
    new = xr.DataTree.from_dict(groups)
    new.attrs = dict(tree.attrs)
    return new


# -- implicit sets (SVD++): the protocol and the extra pairs come back ---------------------------
def _svdpp_data() -> tuple[RatingsData, pd.DataFrame]:
    """Tiny ratings and held-out pairs of known ids; user 0 has no training rating (only held-out pairs)."""
    rng = np.random.default_rng(5)
    u, i = np.nonzero(rng.random((10, 8)) < 0.6)
    frame = pd.DataFrame({"user": u, "item": i, "rating": rng.integers(1, 6, u.size).astype(float)})
    held = frame.sample(frac=0.3, random_state=2)
    held = pd.concat([held, frame[frame["user"] == 0]]).drop_duplicates()
    users, items = IdEncoder.fit("user", frame["user"]), IdEncoder.fit("item", frame["item"])
    data = RatingsData.from_dataframe(frame.drop(held.index), "user", "item", scale=(1, 5), users=users, items=items)
    return data, held.reset_index(drop=True)


@pytest.mark.parametrize(("protocol", "suffix"), [("strict", ".nc"), ("transductive", ".nc"), ("transductive", ".zarr")])
def test_implicit_set_fit_round_trip_predicts_the_same(tmp_path, protocol, suffix):
    """A saved and loaded SVD++ fit predicts the same numbers, and keeps its protocol and extra pairs."""
    from bayesmf.implicit_sets import implicit_design, protocol_of, with_implicit_pairs
    from bayesmf.inference.gibbs import fit_gibbs

    data, held = _svdpp_data()
    assert data.user_counts()[data.users.to_index([0])[0]] == 0
    if protocol == "transductive":
        data = with_implicit_pairs(data, held)
    spec = PMF(n_factors=2, factor_prior="per_side", implicit_sets="both")
    fit = fit_gibbs(spec, data, draws=4, tune=4, chains=1, progressbar=False, random_seed=0)
    loaded = load(save(fit, tmp_path / f"fit{suffix}"))

    assert protocol_of(loaded.train) == protocol_of(fit.train) == protocol
    assert loaded.info["implicit_protocol"] == loaded.posterior.attrs["implicit_protocol"] == protocol
    assert loaded.info["implicit_sets"] == "both"
    if protocol == "transductive":
        for before, after in zip(fit.train.implicit_pairs, loaded.train.implicit_pairs, strict=True):
            np.testing.assert_array_equal(after, before)
            assert after.dtype == np.int64 and not after.flags.writeable
    for side in ("user", "item"):  # the sets a refit on the loaded data would use
        assert (implicit_design(loaded.train, side) != implicit_design(fit.train, side)).nnz == 0
    pd.testing.assert_frame_equal(loaded.predict(held, random_seed=1), fit.predict(held, random_seed=1))
    # saved again from the loaded fit: still the same
    again = load(save(loaded, tmp_path / f"again{suffix}"))
    assert protocol_of(again.train) == protocol
    pd.testing.assert_frame_equal(again.predict(held, random_seed=1), fit.predict(held, random_seed=1))


def test_implicit_pairs_come_back_whatever_the_spec_and_are_checked_on_load(tmp_path):
    """The training data's extra pairs are stored with any fit; a file with bad ones is refused by name."""
    base = _data(True)
    pairs = (np.array([3, 0, 24]), np.array([14, 2, 0]))
    data = RatingsData(base.user_idx, base.item_idx, base.rating, base.scale, base.users, base.items, implicit_pairs=pairs)
    path = save(_result(PMF(n_factors=2), data), tmp_path / "fit.nc")
    loaded = load(path)
    for before, after in zip(pairs, loaded.train.implicit_pairs, strict=True):
        np.testing.assert_array_equal(after, before)
    assert load(save(_result(PMF(n_factors=2), base), tmp_path / "plain.nc")).train.implicit_pairs is None

    def out_of_range(tree):
        constant = tree["constant_data"].to_dataset()
        constant["implicit_user_idx"] = constant["implicit_user_idx"] + 1
        return _replace_group(tree, "constant_data", constant)

    with pytest.raises(BayesmfFileError, match=r"bad\.nc.*user index\(es\) \[25\], outside 0\.\.24"):
        load(_rewrite(path, tmp_path / "bad.nc", out_of_range))
