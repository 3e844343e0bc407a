"""Tests of bayesmf.datasets: simulation from the PMF model, MovieLens loaders.

The downloads are faked by patching `bayesmf._movielens_files`, where the download code lives.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import urllib.error
import zipfile
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from movielens_fixtures import movielens_zip, write_movielens

from bayesmf import _movielens_archives as ml_archives
from bayesmf import _movielens_files as ml_files
from bayesmf.data import RatingsData
from bayesmf.datasets import (
    DATASETS,
    ML100K_SHA256,
    ML100K_URL,
    ML_LATEST_SMALL_SHA256,
    Simulation,
    cache_dir,
    download_movielens,
    load_movielens,
    movielens_items,
    simulate,
)


# -- simulate ------------------------------------------------------------------------------
def test_simulate_shapes_coverage_and_density():
    sim = simulate(n_users=60, n_items=40, n_factors=2, density=0.15, seed=3)
    assert isinstance(sim, Simulation)
    data = sim.data
    assert (data.n_users, data.n_items) == (60, 40)
    assert data.n_ratings == round(0.15 * 60 * 40)
    assert data.user_counts().min() >= 1 and data.item_counts().min() >= 1
    pairs = data.user_idx * 40 + data.item_idx
    assert len(np.unique(pairs)) == data.n_ratings  # without replacement
    assert sim.truth["U"].shape == (60, 2) and sim.truth["V"].shape == (40, 2)
    assert sim.truth["user_bias"].shape == (60,) and sim.truth["item_bias"].shape == (40,)
    assert sim.n_factors == 2
    low, high = data.scale
    assert low <= data.rating.min() and data.rating.max() <= high
    assert data.levels is None  # continuous ratings


def test_simulate_coverage_when_density_is_tiny():
    sim = simulate(n_users=30, n_items=70, density=0.001, seed=0)
    assert sim.data.user_counts().min() >= 1 and sim.data.item_counts().min() >= 1
    assert sim.data.n_ratings == 70


def test_simulate_is_deterministic_under_seed():
    a, b, c = simulate(seed=5), simulate(seed=5), simulate(seed=6)
    np.testing.assert_array_equal(a.data.rating, b.data.rating)
    np.testing.assert_array_equal(a.data.user_idx, b.data.user_idx)
    np.testing.assert_array_equal(a.truth["U"], b.truth["U"])
    assert not np.array_equal(a.data.rating, c.data.rating)


def test_simulate_residuals_have_the_planted_noise_and_signal_sd():
    sim = simulate(n_users=400, n_items=300, n_factors=4, density=0.2, noise=0.7, seed=1)
    data = sim.data
    residual = data.rating - sim.true_mean(data.user_idx, data.item_idx)
    n = data.n_ratings
    # sd of a normal sample: standard error ~ sigma / sqrt(2n); allow 5 se
    assert abs(residual.std() - 0.7) < 5 * 0.7 / np.sqrt(2 * n)
    assert abs(residual.mean()) < 5 * 0.7 / np.sqrt(n)
    # default factor_sd makes U.V have sd ~0.75 (the truth, over all cells)
    dot = sim.truth["U"] @ sim.truth["V"].T
    assert 0.6 < dot.std() < 0.9
    assert float(sim.truth["sigma"]) == 0.7


def test_simulate_biases_off_and_truth_readonly():
    sim = simulate(n_users=20, n_items=20, biases=False, seed=0)
    assert float(sim.truth["mu"]) == 0.0
    assert not sim.truth["user_bias"].any() and not sim.truth["item_bias"].any()
    with pytest.raises(ValueError):
        sim.truth["U"][0, 0] = 1.0
    eta = sim.truth["U"][sim.data.user_idx] * sim.truth["V"][sim.data.item_idx]
    np.testing.assert_allclose(sim.true_mean(sim.data.user_idx, sim.data.item_idx), eta.sum(axis=1))


def test_simulate_popularity_skew_concentrates_ratings():
    flat = simulate(n_users=300, n_items=200, density=0.05, seed=2).data.item_counts()
    skewed = simulate(
        n_users=300, n_items=200, density=0.05, popularity_skew=1.2, seed=2
    ).data.item_counts()
    top = lambda c: np.sort(c)[-20:].sum() / c.sum()  # share of the 10% most rated items  # noqa: E731
    assert top(skewed) > 2 * top(flat)


def test_simulate_logistic_link():
    sim = simulate(n_users=100, n_items=80, density=0.2, noise=0.05, link="logistic", seed=0)
    data = sim.data
    assert data.scale == (1.0, 5.0)
    assert data.rating.min() >= 1.0 and data.rating.max() <= 5.0
    mean = sim.true_mean(data.user_idx, data.item_idx)
    assert np.all((mean > 1.0) & (mean < 5.0))
    # noise is on [0, 1]: residual sd in rating units ~ 4 * 0.05 (a little less from clipping)
    assert 0.15 < (data.rating - mean).std() < 0.22
    # mu is the typical rating: the latent mean is its logit on [0, 1]
    np.testing.assert_allclose(float(sim.truth["mu"]), np.log(0.625 / 0.375))


def test_simulate_declared_scale():
    sim = simulate(n_users=30, n_items=30, noise=0.1, scale=(-10, 20), seed=0)
    assert sim.data.scale == (-10.0, 20.0)
    with pytest.raises(ValueError, match=r"scale=\(3, 4\)"):
        simulate(n_users=30, n_items=30, scale=(3, 4), seed=0)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"density": 0.0}, ValueError, "density"),
        ({"density": 1.5}, ValueError, "1.5"),
        ({"noise": -1.0}, ValueError, "-1.0"),
        ({"n_users": 0}, ValueError, "n_users"),
        ({"n_factors": 2.5}, TypeError, "2.5"),
        ({"link": "probit"}, ValueError, "probit"),
        ({"scale": (5, 1)}, ValueError, r"\(5, 1\)"),
    ],
)
def test_simulate_rejects_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        simulate(**kwargs)


# -- bundled ml-latest-small ----------------------------------------------------------------
def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_bundled_files_are_intact_and_found_as_package_data():
    root = resources.files("bayesmf") / "data" / "ml-latest-small"
    for filename, expected in ML_LATEST_SMALL_SHA256.items():
        assert hashlib.sha256((root / filename).read_bytes()).hexdigest() == expected
    assert "commercial" in (root / "README.txt").read_text(encoding="utf-8")  # license travels


def test_bundled_sums_agree_with_the_shared_copy():
    sums = Path(__file__).resolve().parents[2] / "shared" / "data" / "SHA256SUMS"
    if not sums.is_file():
        pytest.skip("no shared SHA256SUMS beside the checkout")
    listed = dict(reversed(line.split()) for line in sums.read_text().splitlines() if line.strip())
    for filename, expected in ML_LATEST_SMALL_SHA256.items():
        assert listed[f"ml-latest-small/{filename}"] == expected
    for filename, expected in ML100K_SHA256.items():
        assert listed[f"ml-100k/{filename}"] == expected


def test_load_ml_latest_small():
    data = load_movielens("ml-latest-small")
    assert (data.n_ratings, data.n_users, data.n_items) == (100836, 610, 9724)
    assert data.scale == (0.5, 5.0)
    np.testing.assert_allclose(data.levels, np.arange(1, 11) / 2)
    assert data.users.classes.dtype == np.int64
    # raw ids are MovieLens's own: user 1 rated movie 1 with 4.0 (first line of ratings.csv)
    first = data.to_dataframe().iloc[0]
    assert (first["user"], first["item"], first["rating"]) == (1, 1, 4.0)


def test_ml_latest_small_items_cover_the_rated_movies():
    items = movielens_items("ml-latest-small")
    assert list(items.columns) == ["item", "title", "genres"]
    assert items["item"].is_unique
    rated = load_movielens("ml-latest-small").items.classes
    assert np.isin(rated, items["item"].to_numpy()).all()
    assert items.set_index("item").loc[1, "title"] == "Toy Story (1995)"


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"name": "ml-2m"}, ValueError, "'ml-2m'"),
        ({"name": "ml-latest-small", "split": "u1"}, ValueError, "'u1'"),
        ({"name": "ml-100k", "split": "u9"}, ValueError, "'u9'"),
    ],
)
def test_load_movielens_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        load_movielens(**kwargs)


# -- ml-100k on disk --------------------------------------------------------------------------
@pytest.fixture
def ml100k(shared_data_dir):
    if shared_data_dir is None:
        pytest.skip("ml-100k not found (set BAYESMF_DATA_DIR)")
    return shared_data_dir


def test_load_ml100k_full(ml100k):
    data = load_movielens("ml-100k", data_dir=ml100k)
    assert (data.n_ratings, data.n_users, data.n_items) == (100000, 943, 1682)
    assert data.scale == (1.0, 5.0)
    np.testing.assert_array_equal(data.levels, [1, 2, 3, 4, 5])
    assert data.users.classes.tolist() == list(range(1, 944))
    # the other layout: data_dir pointing at the ml-100k folder itself
    inner = load_movielens("ml-100k", data_dir=Path(ml100k) / "ml-100k")
    np.testing.assert_array_equal(inner.rating, data.rating)


@pytest.mark.parametrize(
    ("split", "sizes"), [("u1", (80000, 20000)), ("u5", (80000, 20000)), ("ua", (90570, 9430))]
)
def test_load_ml100k_canonical_split(ml100k, split, sizes):
    train, test = load_movielens("ml-100k", split=split, data_dir=ml100k)
    assert (train.n_ratings, test.n_ratings) == sizes
    assert train.users is test.users and train.items is test.items
    full = load_movielens("ml-100k", data_dir=ml100k)
    # the two files partition u.data and indices mean the same ids in train and test
    def key(d):
        return set(
            zip(
                d.users.to_raw(d.user_idx).tolist(),
                d.items.to_raw(d.item_idx).tolist(),
                d.rating.tolist(),
                strict=True,
            )
        )
    assert key(train) | key(test) == key(full) and key(train).isdisjoint(key(test))
    flags = test.unseen(train)
    assert len(flags) == test.n_ratings
    counts = train.item_counts()[test.item_idx]
    np.testing.assert_array_equal(flags["new_item"].to_numpy(), counts == 0)
    if split == "ua":
        assert (test.user_counts() == 10).all()  # ua.test: 10 ratings per user, per the README


def test_ml100k_items_latin1(ml100k):
    items = movielens_items("ml-100k", data_dir=ml100k)
    assert items.shape == (1682, 3)
    assert items["item"].tolist() == list(range(1, 1683))
    assert items.loc[0, "title"] == "Toy Story (1995)"
    assert items.loc[0, "genres"] == "Animation|Children's|Comedy"
    assert items["title"].str.contains("Misérables").any()


def test_env_var_is_used(ml100k, monkeypatch, tmp_path):
    monkeypatch.setenv("BAYESMF_DATA_DIR", ml100k)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(ml_files, "_fetch", fail_fetch)
    assert load_movielens("ml-100k").n_ratings == 100000


# -- lookup and download, offline ------------------------------------------------------------
def fail_fetch(url, out):
    raise AssertionError(f"tests must not download {url}")


@pytest.fixture
def empty_env(monkeypatch, tmp_path):
    monkeypatch.delenv("BAYESMF_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "bayesmf"


def make_zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, payload in files.items():
            zf.writestr(f"ml-100k/{name}", payload)
    return buffer.getvalue()


def serve(payload: bytes, calls: list[str]):
    def fetch(url, out):
        calls.append(url)
        out.write(payload)

    return fetch


def leftovers(directory: Path) -> list[str]:
    return (
        sorted(str(p.relative_to(directory)) for p in directory.rglob("*"))
        if directory.exists()
        else []
    )


def test_cache_dir_follows_xdg(empty_env):
    assert cache_dir() == empty_env


def test_missing_data_dir_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_movielens("ml-100k", data_dir=tmp_path / "nowhere")


def test_no_download_when_not_allowed(empty_env, monkeypatch):
    monkeypatch.setattr(ml_files, "_fetch", fail_fetch)
    with pytest.raises(FileNotFoundError, match="download=False"):
        load_movielens("ml-100k", download=False)


def test_corrupted_download_raises_and_leaves_nothing(empty_env, monkeypatch):
    calls: list[str] = []
    monkeypatch.setattr(ml_files, "_fetch", serve(b"PK\x03\x04 this is not the archive", calls))
    with pytest.raises(ValueError, match="corrupted"):
        load_movielens("ml-100k")
    assert calls == [ML100K_URL]
    assert leftovers(empty_env) == []


def test_failed_download_raises_oserror_and_leaves_nothing(empty_env, monkeypatch):
    def broken(url, out):
        out.write(b"partial bytes")
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setattr(ml_files, "_fetch", broken)
    with pytest.raises(OSError, match="could not download"):
        load_movielens("ml-100k")
    assert leftovers(empty_env) == []


def test_archive_with_a_tampered_member_is_rejected(empty_env, monkeypatch):
    files = {name: b"fake" for name in ML100K_SHA256}
    payload = make_zip(files)
    # pretend the archive itself matched, so the check on each member is what fails
    monkeypatch.setattr(ml_files, "ML100K_ZIP_SHA256", hashlib.sha256(payload).hexdigest())
    monkeypatch.setattr(ml_files, "_fetch", serve(payload, []))
    with pytest.raises(ValueError, match="does not match its SHA-256"):
        load_movielens("ml-100k")
    assert leftovers(empty_env) == []


def test_modified_local_copy_is_rejected(tmp_path):
    (tmp_path / "u.data").write_bytes(b"1\t1\t5\t0\n")
    with pytest.raises(ValueError, match=r"u\.data does not match"):
        load_movielens("ml-100k", data_dir=tmp_path)


def test_download_success_path_then_cached(ml100k, empty_env, monkeypatch):
    source = Path(ml100k) / "ml-100k"
    payload = make_zip({name: (source / name).read_bytes() for name in ML100K_SHA256})
    monkeypatch.setattr(ml_files, "ML100K_ZIP_SHA256", hashlib.sha256(payload).hexdigest())
    calls: list[str] = []
    monkeypatch.setattr(ml_files, "_fetch", serve(payload, calls))
    train, test = load_movielens("ml-100k", split="u1")
    assert (train.n_ratings, test.n_ratings) == (80000, 20000)
    assert sorted(leftovers(empty_env)) == sorted(
        ["ml-100k", *(f"ml-100k/{n}" for n in ML100K_SHA256)]
    )
    assert load_movielens("ml-100k").n_ratings == 100000  # from the cache
    assert len(calls) == 1


def test_datasets_reexports_simulation_and_movielens():
    """``bayesmf.datasets`` keeps every public name; each is its defining module's object."""
    from bayesmf import datasets, movielens, simulation

    assert datasets.simulate is simulation.simulate and datasets.Simulation is simulation.Simulation
    for name in (
        "load_movielens",
        "movielens_items",
        "cache_dir",
        "download_ml100k",
        "download_movielens",
        "DATASETS",
    ):
        assert getattr(datasets, name) is getattr(movielens, name)
    for name in ("ML100K_SHA256", "ML100K_URL", "ML100K_ZIP_SHA256", "ML_LATEST_SMALL_SHA256"):
        assert getattr(datasets, name) is getattr(ml_files, name)
    assert datasets.ARCHIVES is ml_archives.ARCHIVES


# -- ml-1m, ml-10m, ml-20m, ml-25m: tiny files in each format, offline ------------------------
LARGE = ("ml-1m", "ml-10m", "ml-20m", "ml-25m")


def ratings_of(data: RatingsData) -> pd.DataFrame:
    return data.to_dataframe()[["user", "item", "rating"]]


def use_zip(monkeypatch, name: str, payload: bytes) -> None:
    """Make ``payload`` the zip the package expects for ``name`` (its size and SHA-256)."""
    fake = dataclasses.replace(
        ml_archives.ARCHIVES[name], size=len(payload), sha256=hashlib.sha256(payload).hexdigest()
    )
    monkeypatch.setitem(ml_archives.ARCHIVES, name, fake)


def test_large_checksums_are_sha256_of_the_grouplens_zips():
    assert set(LARGE) == set(ml_archives.ARCHIVES) and set(LARGE) <= set(DATASETS)
    for name, archive in ml_archives.ARCHIVES.items():
        assert len(archive.sha256) == 64 and int(archive.sha256, 16) >= 0
        assert archive.url == f"https://files.grouplens.org/datasets/movielens/{name}.zip"
    assert ml_archives.ARCHIVES["ml-10m"].folder == "ml-10M100K"


@pytest.mark.parametrize("name", LARGE)
def test_load_large_movielens_from_unpacked_files(tmp_path, name, monkeypatch):
    monkeypatch.setattr(ml_files, "_fetch", fail_fetch)
    written = write_movielens(tmp_path, name)
    data = load_movielens(name, data_dir=tmp_path)
    expected = written.ratings
    assert data.n_ratings == len(expected) == 30
    assert data.n_users == expected["user"].nunique()
    assert data.n_items == expected["item"].nunique()
    low = 1.0 if name == "ml-1m" else 0.5
    assert data.scale == (low, 5.0)
    np.testing.assert_allclose(data.levels, np.arange(low, 5.01, 0.5 if low == 0.5 else 1.0))
    # MovieLens's own ids, sorted, as int64; ratings (half stars too) in file order
    assert data.users.classes.dtype == np.int64 and data.items.classes.dtype == np.int64
    assert data.users.classes.tolist() == sorted(expected["user"].unique())
    assert data.items.classes.tolist() == sorted(expected["item"].unique())
    pd.testing.assert_frame_equal(ratings_of(data), expected, check_dtype=False)
    if name != "ml-1m":
        assert (data.rating % 1 == 0.5).any()
    # the sort-based encoding gives what RatingsData.from_dataframe gives
    reference = RatingsData.from_dataframe(expected, "user", "item", "rating", scale=data.scale)
    np.testing.assert_array_equal(data.user_idx, reference.user_idx)
    np.testing.assert_array_equal(data.item_idx, reference.item_idx)
    np.testing.assert_array_equal(data.rating, reference.rating)
    assert data.users.equals(reference.users) and data.items.equals(reference.items)
    # data_dir may also be the unpacked folder itself
    inner = load_movielens(name, data_dir=written.root)
    np.testing.assert_array_equal(inner.rating, data.rating)


@pytest.mark.parametrize("name", LARGE)
def test_large_movielens_items(tmp_path, name):
    written = write_movielens(tmp_path, name)
    items = movielens_items(name, data_dir=tmp_path)
    assert list(items.columns) == ["item", "title", "genres"]
    assert items["item"].dtype == np.int64 and items["item"].is_unique
    assert items.index.tolist() == list(range(len(written.movies)))
    pd.testing.assert_frame_equal(items, written.movies, check_dtype=False)
    by_id = items.set_index("item")
    assert by_id.loc[73, "title"] == "Misérables, Les (1995)"  # latin-1 (1m), UTF-8 (others)
    assert by_id.loc[260, "title"] == "Star Wars: Episode IV - A New Hope (1977)"
    assert by_id.loc[4973, "genres"] == "(no genres listed)"
    rated = load_movielens(name, data_dir=tmp_path).items.classes
    assert np.isin(rated, items["item"].to_numpy()).all()


@pytest.mark.parametrize("name", ["ml-1m", "ml-20m"])
def test_large_movielens_read_from_a_verified_zip(tmp_path, monkeypatch, name):
    monkeypatch.setattr(ml_files, "_fetch", fail_fetch)
    written, payload = movielens_zip(name)
    (tmp_path / f"{name}.zip").write_bytes(payload)
    use_zip(monkeypatch, name, payload)
    data = load_movielens(name, data_dir=tmp_path)
    pd.testing.assert_frame_equal(ratings_of(data), written.ratings, check_dtype=False)
    pd.testing.assert_frame_equal(
        movielens_items(name, data_dir=tmp_path), written.movies, check_dtype=False
    )


@pytest.mark.parametrize(
    ("name", "match"), [("ml-25m", "bytes, expected"), ("ml-10m", "SHA-256 [0-9a-f]{64}, expected")]
)
def test_bad_zip_in_the_cache_raises_naming_it_and_is_kept(empty_env, monkeypatch, name, match):
    monkeypatch.setattr(ml_files, "_fetch", fail_fetch)
    empty_env.mkdir(parents=True)
    bad = empty_env / f"{name}.zip"
    bad.write_bytes(b"PK\x03\x04 half a download")
    for kwargs in ({}, {"download": False}):
        with pytest.raises(ValueError, match=match) as info:
            load_movielens(name, **kwargs)
        assert str(bad) in str(info.value) and "left as it is" in str(info.value)
    assert bad.read_bytes() == b"PK\x03\x04 half a download"
    assert leftovers(empty_env) == [f"{name}.zip"]


def test_bad_zip_in_data_dir_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(ml_files, "_fetch", fail_fetch)
    _, payload = movielens_zip("ml-1m")
    (tmp_path / "ml-1m.zip").write_bytes(payload)  # a real zip, but not GroupLens's
    with pytest.raises(ValueError, match=r"ml-1m\.zip is not GroupLens's"):
        load_movielens("ml-1m", data_dir=tmp_path)
    assert (tmp_path / "ml-1m.zip").read_bytes() == payload


def test_large_movielens_download_then_cached(empty_env, monkeypatch):
    written, payload = movielens_zip("ml-25m")
    use_zip(monkeypatch, "ml-25m", payload)
    calls: list[str] = []
    monkeypatch.setattr(ml_files, "_fetch", serve(payload, calls))
    data = load_movielens("ml-25m")
    pd.testing.assert_frame_equal(ratings_of(data), written.ratings, check_dtype=False)
    assert calls == ["https://files.grouplens.org/datasets/movielens/ml-25m.zip"]
    assert leftovers(empty_env) == ["ml-25m.zip"]
    assert (empty_env / "ml-25m.zip").read_bytes() == payload
    assert len(movielens_items("ml-25m")) == len(written.movies)  # from the cache
    assert load_movielens("ml-25m").n_ratings == 30
    assert len(calls) == 1


def test_large_movielens_corrupted_download_leaves_nothing(empty_env, monkeypatch):
    calls: list[str] = []
    monkeypatch.setattr(ml_files, "_fetch", serve(b"PK\x03\x04 not the archive", calls))
    with pytest.raises(ValueError, match="corrupted"):
        load_movielens("ml-10m")
    assert calls == ["https://files.grouplens.org/datasets/movielens/ml-10m.zip"]
    assert leftovers(empty_env) == []


def test_download_never_overwrites_a_file_already_there(tmp_path, monkeypatch):
    _, payload = movielens_zip("ml-1m")
    use_zip(monkeypatch, "ml-1m", payload)
    monkeypatch.setattr(ml_files, "_fetch", serve(payload, []))
    mine = tmp_path / "ml-1m.zip"
    mine.write_bytes(b"the user's own file")
    with pytest.raises(ValueError, match="left as it is"):
        download_movielens("ml-1m", tmp_path)
    assert mine.read_bytes() == b"the user's own file"
    assert leftovers(tmp_path) == ["ml-1m.zip"]
    mine.write_bytes(payload)  # an intact copy is kept and used
    assert download_movielens("ml-1m", tmp_path) == mine


def test_large_movielens_lookup_without_download(empty_env, monkeypatch, tmp_path):
    monkeypatch.setattr(ml_files, "_fetch", fail_fetch)
    with pytest.raises(FileNotFoundError, match="download=False"):
        load_movielens("ml-20m", download=False)
    with pytest.raises(FileNotFoundError, match=r"ml-20m/ratings\.csv"):
        load_movielens("ml-20m", data_dir=tmp_path / "nowhere")
    shared = tmp_path / "shared"
    write_movielens(shared, "ml-20m")
    monkeypatch.setenv("BAYESMF_DATA_DIR", str(shared))
    assert load_movielens("ml-20m").n_ratings == 30


@pytest.mark.parametrize("name", LARGE)
def test_large_movielens_have_no_canonical_split(tmp_path, name):
    write_movielens(tmp_path, name)
    with pytest.raises(ValueError, match=rf"split='u1': {name} has no canonical split"):
        load_movielens(name, split="u1", data_dir=tmp_path)


def test_unknown_name_lists_the_valid_names():
    with pytest.raises(ValueError, match="'ml-32m' is not valid") as info:
        load_movielens("ml-32m")
    for name in DATASETS:
        assert repr(name) in str(info.value)
    with pytest.raises(ValueError, match="'ml-32m'"):
        movielens_items("ml-32m")
    with pytest.raises(ValueError, match="'ml-100k'"):
        download_movielens("ml-100k")


@pytest.mark.parametrize(
    ("name", "filename", "content", "match"),
    [
        ("ml-1m", "ratings.dat", b"1::1193::5::978300760\n1::oops::3::1\n", "UserID::MovieID"),
        ("ml-10m", "ratings.dat", b"1::1193::5::978300760::7\n", "UserID::MovieID"),
        ("ml-20m", "ratings.csv", b"user,movie,rating,time\n1,1,4.0,1\n", "header userId"),
        ("ml-1m", "movies.dat", b"1::Toy Story (1995)::Animation\n2|Jumanji\n", "line 2"),
    ],
)
def test_malformed_files_are_named(tmp_path, name, filename, content, match):
    written = write_movielens(tmp_path, name)
    (written.root / filename).write_bytes(content)
    read = movielens_items if filename.startswith("movies") else load_movielens
    with pytest.raises(ValueError, match=match) as info:
        read(name, data_dir=tmp_path)
    assert str(written.root / filename) in str(info.value)


def test_large_movielens_ratings_are_validated(tmp_path):
    written = write_movielens(tmp_path, "ml-1m")
    with (written.root / "ratings.dat").open("ab") as handle:
        handle.write(b"3::1::0::978300760\n")  # 0 stars: off ml-1m's 1-5 scale
    with pytest.raises(ValueError, match="outside the scale"):
        load_movielens("ml-1m", data_dir=tmp_path)
