"""Tests of bayesmf.datasets: simulation from the PMF model, MovieLens loaders.

The downloads are faked by patching `bayesmf._movielens_files`, where the download code lives.
"""

from __future__ import annotations

import hashlib
import io
import urllib.error
import zipfile
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from bayesmf import _movielens_files as ml_files
from bayesmf.datasets import (
    ML100K_SHA256,
    ML100K_URL,
    ML_LATEST_SMALL_SHA256,
    Simulation,
    cache_dir,
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
        ({"name": "ml-1m"}, ValueError, "'ml-1m'"),
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
    for name in ("load_movielens", "movielens_items", "cache_dir", "download_ml100k", "DATASETS"):
        assert getattr(datasets, name) is getattr(movielens, name)
    for name in ("ML100K_SHA256", "ML100K_URL", "ML100K_ZIP_SHA256", "ML_LATEST_SMALL_SHA256"):
        assert getattr(datasets, name) is getattr(ml_files, name)
