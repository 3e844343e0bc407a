"""Where ratings come from: simulated from the PMF model, bundled, or downloaded.

- `simulate` draws ratings from the PMF generative model itself, with the truth kept
  so that fits can be checked against it.
- `load_movielens` loads MovieLens: ``"ml-latest-small"`` ships with the package;
  ``"ml-100k"`` (whose license forbids redistribution) is found on disk or downloaded
  once into a cache and checked against SHA-256 sums.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import math
import os
import shutil
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import IO, Any, Literal, overload

import numpy as np
import pandas as pd

from bayesmf._validate import (
    validate_choice,
    validate_positive,
    validate_positive_int,
    validate_scale,
)
from bayesmf.data import IdEncoder, RatingsData
from bayesmf.split import Split

__all__ = ["Simulation", "load_movielens", "movielens_items", "simulate"]

log = logging.getLogger("bayesmf")

_LINKS = ("identity", "logistic")


# ---------------------------------------------------------------------------------------
# Simulation
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Simulation:
    """Ratings simulated from the PMF model, with the truth that generated them.

    Attributes
    ----------
    data : RatingsData
        The observed ratings (raw ids are the integers ``0..n-1``, so index == raw id).
    truth : dict of numpy.ndarray
        ``U`` (n_users, n_factors), ``V`` (n_items, n_factors), ``mu`` (scalar, on the
        latent scale), ``user_bias`` (n_users,), ``item_bias`` (n_items,) and ``sigma``
        (the noise sd; on the [0, 1] scale when ``link="logistic"``). Arrays are read-only.
    n_factors : int
        Number of latent factors.
    link : {"identity", "logistic"}
        How the latent score maps to the mean rating.
    """

    data: RatingsData
    truth: dict[str, np.ndarray]
    n_factors: int
    link: str = "identity"

    def latent(self, user_idx: Any, item_idx: Any) -> np.ndarray:
        r"""Return the latent score :math:`\eta_{ij} = \mu + b_i + c_j + U_i \cdot V_j`."""
        user_idx = np.asarray(user_idx, dtype=np.int64)
        item_idx = np.asarray(item_idx, dtype=np.int64)
        truth = self.truth
        dot = np.einsum("...k,...k->...", truth["U"][user_idx], truth["V"][item_idx])
        return (
            float(truth["mu"]) + truth["user_bias"][user_idx] + truth["item_bias"][item_idx] + dot
        )

    def true_mean(self, user_idx: Any, item_idx: Any) -> np.ndarray:
        r"""Return the noiseless mean rating, on the rating scale, for index pairs.

        Parameters
        ----------
        user_idx, item_idx : array_like of int
            User and item indices (broadcast against each other).

        Returns
        -------
        numpy.ndarray
            :math:`\eta_{ij}` for ``link="identity"``; for ``link="logistic"``,
            :math:`\text{low} + (\text{high} - \text{low})\,\mathrm{logistic}(\eta_{ij})`
            with ``(low, high)`` the scale the latent model was drawn on.
        """
        eta = self.latent(user_idx, item_idx)
        if self.link == "logistic":
            low, high = self.truth["link_scale"].tolist()
            return low + (high - low) * _sigmoid(eta)
        return eta


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def simulate(
    n_users: int = 200,
    n_items: int = 150,
    n_factors: int = 3,
    density: float = 0.1,
    noise: float = 0.5,
    seed: int = 0,
    *,
    biases: bool = True,
    mu: float = 3.5,
    factor_sd: float | None = None,
    bias_sd: float = 0.3,
    popularity_skew: float = 0.0,
    link: Literal["identity", "logistic"] = "identity",
    scale: tuple[float, float] | None = None,
) -> Simulation:
    r"""Draw ratings from the PMF generative model.

    .. math::

        U_i, V_j \sim \mathcal N(0, s^2 I_K), \quad b_i, c_j \sim \mathcal N(0, s_b^2),
        \quad \eta_{ij} = \mu + b_i + c_j + U_i \cdot V_j

    and, for the observed pairs, :math:`r_{ij} = \eta_{ij} + \varepsilon_{ij}` with
    :math:`\varepsilon_{ij} \sim \mathcal N(0, \text{noise}^2)` (``link="identity"``),
    or :math:`r_{ij} = \text{low} + (\text{high}-\text{low})(\mathrm{logistic}(\eta_{ij})
    + \varepsilon_{ij})` (``link="logistic"``: noise on the [0, 1] scale as in
    Salakhutdinov & Mnih's PMF). Ratings are continuous, not rounded.

    Parameters
    ----------
    n_users, n_items, n_factors : int
        Sizes.
    density : float
        Fraction of the ``n_users * n_items`` cells observed, in (0, 1]. At least
        ``max(n_users, n_items)`` pairs are drawn so every user and every item has a rating.
    noise : float
        Noise sd (rating units for the identity link, [0, 1] units for logistic).
    seed : int
        Seed of `numpy.random.default_rng`; the result is a function of the arguments.
    biases : bool
        Include :math:`\mu + b_i + c_j`; when False, :math:`\mu = 0` and no offsets.
    mu : float
        Global mean rating, in rating units. For ``link="logistic"`` the latent
        :math:`\mu` is its logit on the [0, 1] scale, so a typical rating is still ``mu``.
    factor_sd : float, optional
        Sd :math:`s` of each factor entry. Default :math:`\sqrt{0.75/\sqrt{K}}`, which
        makes :math:`U_i \cdot V_j` have sd 0.75 whatever :math:`K`.
    bias_sd : float
        Sd of the user and item offsets.
    popularity_skew : float
        0: items are chosen uniformly. > 0: item :math:`j` (in a random order) is chosen
        with weight :math:`\propto (\text{rank}+1)^{-\text{skew}}` (Zipf-like), as in
        real ratings where a few items get most of them.
    link : {"identity", "logistic"}
        Mean function.
    scale : tuple of float, optional
        The declared rating scale of the data. None: ``(floor(min), ceil(max))`` of the
        draws for identity, ``(1, 5)`` for logistic. A given scale must contain every
        identity-link draw; logistic draws are clipped to it.

    Returns
    -------
    Simulation

    Raises
    ------
    ValueError
        On a non-positive size, density outside (0, 1], a negative noise or sd, or a
        given scale that does not contain the identity-link draws.

    Examples
    --------
    >>> sim = simulate(n_users=50, n_items=40, n_factors=2, density=0.2, seed=1)
    >>> sim.data.n_users, sim.data.n_items
    (50, 40)
    """
    n_users = validate_positive_int("n_users", n_users)
    n_items = validate_positive_int("n_items", n_items)
    n_factors = validate_positive_int("n_factors", n_factors)
    density = _validate_density(density)
    noise = _validate_nonnegative("noise", noise)
    bias_sd = _validate_nonnegative("bias_sd", bias_sd)
    popularity_skew = _validate_nonnegative("popularity_skew", popularity_skew)
    entry_sd = float(
        math.sqrt(0.75 / math.sqrt(n_factors))
        if factor_sd is None
        else validate_positive("factor_sd", factor_sd)  # type: ignore[arg-type]
    )
    validate_choice("link", link, _LINKS)
    if (
        isinstance(mu, bool)
        or not isinstance(mu, (int, float, np.integer, np.floating))
        or not math.isfinite(float(mu))
    ):
        raise TypeError(f"mu must be a finite number, got {mu!r}")
    declared = validate_scale(scale) if scale is not None else None

    rng = np.random.default_rng(seed)
    U = rng.normal(0.0, entry_sd, size=(n_users, n_factors))
    V = rng.normal(0.0, entry_sd, size=(n_items, n_factors))
    if biases:
        user_bias = rng.normal(0.0, bias_sd, size=n_users)
        item_bias = rng.normal(0.0, bias_sd, size=n_items)
    else:
        user_bias, item_bias = np.zeros(n_users), np.zeros(n_items)
    user_idx, item_idx = _sample_pairs(rng, n_users, n_items, density, popularity_skew)
    eps = rng.normal(0.0, noise, size=len(user_idx)) if noise > 0 else np.zeros(len(user_idx))

    dot = np.einsum("nk,nk->n", U[user_idx], V[item_idx])
    truth: dict[str, np.ndarray] = {}
    if link == "identity":
        latent_mu = float(mu) if biases else 0.0
        rating = latent_mu + user_bias[user_idx] + item_bias[item_idx] + dot + eps
        if declared is None:
            data_scale = (float(np.floor(rating.min())), float(np.ceil(rating.max())))
            if data_scale[0] == data_scale[1]:  # every draw the same integer
                data_scale = (data_scale[0], data_scale[0] + 1.0)
        else:
            data_scale = declared
            outside = (rating < declared[0]) | (rating > declared[1])
            if outside.any():
                raise ValueError(
                    f"scale={scale!r} does not contain the simulated ratings (they span "
                    f"{rating.min():.3f} to {rating.max():.3f}); widen it or pass scale=None"
                )
    else:
        data_scale = declared if declared is not None else (1.0, 5.0)
        low, high = data_scale
        if biases:
            unit_mu = (float(mu) - low) / (high - low)
            if not 0.0 < unit_mu < 1.0:
                raise ValueError(
                    f"mu={mu!r} must lie strictly inside the scale {data_scale!r} for link='logistic'"
                )
            latent_mu = math.log(unit_mu / (1.0 - unit_mu))
        else:
            latent_mu = 0.0
        eta = latent_mu + user_bias[user_idx] + item_bias[item_idx] + dot
        rating = low + (high - low) * np.clip(_sigmoid(eta) + eps, 0.0, 1.0)
        truth["link_scale"] = np.array([low, high])

    truth.update(
        U=U,
        V=V,
        mu=np.asarray(latent_mu),
        user_bias=user_bias,
        item_bias=item_bias,
        sigma=np.asarray(float(noise)),
    )
    for array in truth.values():
        array.setflags(write=False)
    data = RatingsData(
        user_idx=user_idx,
        item_idx=item_idx,
        rating=rating,
        scale=data_scale,
        users=IdEncoder("user", np.arange(n_users, dtype=np.int64)),
        items=IdEncoder("item", np.arange(n_items, dtype=np.int64)),
    )
    return Simulation(data=data, truth=truth, n_factors=n_factors, link=link)


def _validate_density(density: Any) -> float:
    if isinstance(density, bool) or not isinstance(density, (int, float, np.integer, np.floating)):
        raise TypeError(f"density must be a number in (0, 1], got {density!r}")
    if not 0.0 < float(density) <= 1.0:
        raise ValueError(f"density must be in (0, 1], got {density!r}")
    return float(density)


def _validate_nonnegative(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number >= 0, got {value!r}")
    if not math.isfinite(float(value)) or float(value) < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def _sample_pairs(
    rng: np.random.Generator, n_users: int, n_items: int, density: float, skew: float
) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (user, item) pairs covering every user and item, sorted by user then item.

    A covering set of ``max(n_users, n_items)`` pairs comes first (each user and each item
    appears in it); the rest are drawn without replacement with item weights
    ``(rank + 1) ** -skew`` over a random item order, uniform over users.
    """
    n_cells = n_users * n_items
    n_cover = max(n_users, n_items)
    n_obs = min(n_cells, max(n_cover, round(density * n_cells)))

    # covering set: tile a permutation of the smaller side against one of the larger side
    users = np.resize(rng.permutation(n_users), n_cover)
    items = np.resize(rng.permutation(n_items), n_cover)
    chosen = np.unique(users * n_items + items)

    item_weight = np.empty(n_items)
    item_weight[rng.permutation(n_items)] = (np.arange(n_items) + 1.0) ** (-skew)
    item_weight /= item_weight.sum()

    n_more = n_obs - len(chosen)
    if n_more > 0:
        if n_cells <= 4_000_000:
            # exact weighted sampling without replacement by Gumbel top-k over free cells
            keys = np.log(np.tile(item_weight, n_users)) + rng.gumbel(size=n_cells)
            keys[chosen] = -np.inf
            extra = np.argpartition(-keys, n_more - 1)[:n_more]
        else:
            # large grids: draw in batches with replacement and drop repeats
            taken = set(chosen.tolist())
            extra_list: list[int] = []
            while len(extra_list) < n_more:
                batch = 2 * (n_more - len(extra_list)) + 16
                cells = rng.integers(0, n_users, batch) * n_items + rng.choice(
                    n_items, size=batch, p=item_weight
                )
                for cell in cells.tolist():
                    if cell not in taken:
                        taken.add(cell)
                        extra_list.append(cell)
                        if len(extra_list) == n_more:
                            break
            extra = np.asarray(extra_list, dtype=np.int64)
        chosen = np.sort(np.concatenate([chosen, extra]))
    return chosen // n_items, chosen % n_items


# ---------------------------------------------------------------------------------------
# MovieLens
# ---------------------------------------------------------------------------------------
DATASETS = ("ml-latest-small", "ml-100k")
ML100K_SPLITS = ("u1", "u2", "u3", "u4", "u5", "ua", "ub")
ML100K_URL = "https://files.grouplens.org/datasets/movielens/ml-100k.zip"
# SHA-256 of GroupLens's ml-100k.zip (4,924,029 bytes; its published MD5 is
# 0e33842e24a9c977be4e0107933c0723), as recorded by several independent projects.
ML100K_ZIP_SHA256 = "50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229"
# SHA-256 of the extracted files (computed on a verified copy).
ML100K_SHA256 = {
    "README": "4883b8cf340ed0059971b33f56ad3adc88a40792108ebca3d24aafc4c82e8b52",
    "u.data": "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490",
    "u.genre": "9757e0d3e6b298159a80dd48eaf938114690e911e39af97a76949ef1663610bb",
    "u.info": "5b0a40b2e47a729ee6203063f6dcf8790c2e63f5a18663e6ee318a72c5f3c27b",
    "u.item": "553841ebc7de3a0fd0d6b62a204ea30c1e651aacfb2814c7a6584ac52f2c5701",
    "u.occupation": "cd5fbec9afe345d993a62fc7817df1a4a9079c4feb267b3118763b8fd942137d",
    "u.user": "f120e114da2e8cf314fd28f99417c94ae9ddf1cb6db8ce0e4b5995d40e90e62c",
    "u1.base": "ce253ec86c448b44fb3ba9a30d12dcfc2e9210cbde71efada3730c22e9ac212a",
    "u1.test": "18c6014a4b2c7324f250a63f8904a7b16b2b19f911129e346141507b0cbac950",
    "u2.base": "6c06f0b5df4b256da1a994f3ac66edc8da4d3f09bc9282df6b14d893366d703e",
    "u2.test": "4de658d1e04ed9104629509a2e2528fce833ac8e048280183f1df167632038c3",
    "u3.base": "afdc155c291c6edc41c0407e39d7462eb98d341e064f0b0a12175b80b3c4af5d",
    "u3.test": "0f548b51c78327de4c156461d3e430b7e5579fe2b5681586a59416e48fd35f6d",
    "u4.base": "219f0f4d40dfe9c5141d425f53fa91ee23ed275f14e280bbf1b50117afb064ca",
    "u4.test": "7c02ad0a1e7ab1083c8b9d4b627203a051dd7b5eab46d99fa44de33470de8db9",
    "u5.base": "a9574e59ce961eec2121627760b6e9b0974ce1637b3fe69ac32cb14a4bfab485",
    "u5.test": "351cc52e0d15b6c721466276fc24671d40936899e3d01fadeaf312915b8c5634",
    "ua.base": "67b5bcdb380c29f85d56a012ecd88612ae020f30a6730d117a334ee8203b91f2",
    "ua.test": "d0497e202417720f57a184ec8c66be2d1afa4ff41bb53787c57b28d6bf79bc42",
    "ub.base": "237254d253b6ad7de84f919d041055428646254f34ed8f562703c899430cd881",
    "ub.test": "d54a72d05730d5892062734b2bec73e976f9b713d18c828a18b968d6cce442da",
}
# SHA-256 of the bundled ml-latest-small files (checked by the tests, not at load time).
ML_LATEST_SMALL_SHA256 = {
    "README.txt": "63d22ac138e80fae37021797ed8e1b9424b5239dc576a137422adf783ae3f404",
    "movies.csv": "5a5f32dd9bb3797b8e728a1b98958789d2b13f294a69fdfbc5727f8a9611aa07",
    "ratings.csv": "aa289ca83157595d0df6aea1be6a4ded676ddc4385472e8313a8ed9805352646",
}
_ML100K_COLUMNS = ["user", "item", "rating", "timestamp"]


@overload
def load_movielens(
    name: str = ...,
    split: None = None,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    download: bool = True,
) -> RatingsData: ...


@overload
def load_movielens(
    name: str, split: str, data_dir: str | os.PathLike[str] | None = None, *, download: bool = True
) -> Split: ...


def load_movielens(
    name: str = "ml-latest-small",
    split: str | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    download: bool = True,
) -> RatingsData | Split:
    """Load a MovieLens ratings set.

    Parameters
    ----------
    name : {"ml-latest-small", "ml-100k"}
        ``"ml-latest-small"``: 100,836 ratings of 9,724 movies by 610 users on a 0.5-5
        scale in half stars, bundled with the package. ``"ml-100k"``: 100,000 ratings of
        1,682 movies by 943 users on a 1-5 scale; not redistributable, so found on disk or
        downloaded (see Notes).
    split : {None, "u1", ..., "u5", "ua", "ub"}
        ml-100k only: return the canonical ``(train, test)`` pair ``u?.base`` / ``u?.test``
        (u1-u5: the five 80/20 folds; ua/ub: 10 ratings per user held out).
    data_dir : path, optional
        Directory holding ``ml-100k/u.data`` or ``u.data``. When given, it must hold the
        files (no fallback).
    download : bool
        Allow downloading ml-100k when it is not found.

    Returns
    -------
    RatingsData or Split
        The whole set, or ``(train, test)`` sharing one pair of encoders built over both
        files, so an index means the same user/item in each; ``test.unseen(train)`` flags
        the test ratings whose user or item has no training rating. Raw ids are the
        integer ``userId``/``movieId`` (ml-latest-small) or user/item ids (ml-100k).

    Raises
    ------
    ValueError
        Unknown ``name`` or ``split``; a file whose SHA-256 does not match.
    FileNotFoundError
        ml-100k not found and ``download=False`` (or not in the given ``data_dir``).
    OSError
        The download failed (nothing is left behind).

    Notes
    -----
    ml-100k is looked up in ``data_dir``; else ``$BAYESMF_DATA_DIR``; else the cache
    directory ``$XDG_CACHE_HOME/bayesmf`` (default ``~/.cache/bayesmf``); else
    ``ml-100k.zip`` is downloaded from GroupLens into the cache, its SHA-256 checked, and
    its files extracted and checked against SHA-256 sums held in this module before they
    are moved into place. Every ml-100k file read is checked against its sum.

    The MovieLens licenses allow research use only, not commercial use without permission
    from GroupLens; cite F. M. Harper and J. A. Konstan (2015), "The MovieLens Datasets:
    History and Context", ACM TiiS 5(4).

    Examples
    --------
    >>> data = load_movielens("ml-latest-small")
    >>> data.n_ratings, data.n_users, data.n_items
    (100836, 610, 9724)
    """
    validate_choice("name", name, DATASETS)
    if name == "ml-latest-small":
        if split is not None:
            raise ValueError(
                f"split={split!r}: ml-latest-small has no canonical split; use "
                "bayesmf.train_test_split(load_movielens('ml-latest-small'))"
            )
        with _bundled("ratings.csv") as handle:
            df = pd.read_csv(
                handle,
                usecols=["userId", "movieId", "rating"],
                dtype={"userId": np.int64, "movieId": np.int64, "rating": np.float64},
            )
        return _encode(df, "userId", "movieId", (0.5, 5.0))

    if split is not None:
        validate_choice("split", split, ML100K_SPLITS)
    root = _ml100k_dir(data_dir, download)
    if split is None:
        return _encode(_read_ml100k(root, "u.data"), "user", "item", (1.0, 5.0))
    base = _read_ml100k(root, f"{split}.base")
    test = _read_ml100k(root, f"{split}.test")
    users = IdEncoder.fit(
        "user", np.concatenate([base["user"].to_numpy(), test["user"].to_numpy()])
    )
    items = IdEncoder.fit(
        "item", np.concatenate([base["item"].to_numpy(), test["item"].to_numpy()])
    )
    return Split(
        _encode(base, "user", "item", (1.0, 5.0), users, items),
        _encode(test, "user", "item", (1.0, 5.0), users, items),
    )


def movielens_items(
    name: str = "ml-latest-small",
    data_dir: str | os.PathLike[str] | None = None,
    *,
    download: bool = True,
) -> pd.DataFrame:
    """Return the titles and genres of the MovieLens items, to show next to recommendations.

    Parameters
    ----------
    name : {"ml-latest-small", "ml-100k"}
        The data set (as in `load_movielens`).
    data_dir : path, optional
        Where ml-100k is (as in `load_movielens`).
    download : bool
        Allow downloading ml-100k when it is not found.

    Returns
    -------
    pandas.DataFrame
        Columns ``item`` (the raw item id used by `load_movielens`), ``title`` and
        ``genres`` (``"|"``-separated names, ``"(no genres listed)"`` when none), one row
        per movie, indexed from 0.

    Examples
    --------
    >>> movielens_items("ml-latest-small").loc[0, "title"]
    'Toy Story (1995)'
    """
    validate_choice("name", name, DATASETS)
    if name == "ml-latest-small":
        with _bundled("movies.csv") as handle:
            movies = pd.read_csv(handle, dtype={"movieId": np.int64})
        return movies.rename(columns={"movieId": "item"})[["item", "title", "genres"]]

    root = _ml100k_dir(data_dir, download)
    genre_names = [
        line.rsplit("|", 1)[0]
        for line in _verified(root, "u.genre").decode("latin-1").splitlines()
        if line.strip()
    ]
    columns = ["item", "title", "release_date", "video_release_date", "url", *genre_names]
    raw = pd.read_csv(
        _as_stream(_verified(root, "u.item")),
        sep="|",
        header=None,
        names=columns,
        encoding="latin-1",
        dtype={"item": np.int64},
    )
    flags = raw[genre_names].to_numpy(dtype=bool)
    names = np.asarray(genre_names, dtype=object)
    genres = ["|".join(names[row]) if row.any() else "(no genres listed)" for row in flags]
    return pd.DataFrame({"item": raw["item"], "title": raw["title"], "genres": genres})


# -- helpers ----------------------------------------------------------------------------
def _encode(
    df: pd.DataFrame,
    user: str,
    item: str,
    scale: tuple[float, float],
    users: IdEncoder | None = None,
    items: IdEncoder | None = None,
) -> RatingsData:
    return RatingsData.from_dataframe(
        df, user, item, "rating", scale=scale, users=users, items=items
    )


@contextlib.contextmanager
def _bundled(filename: str) -> Any:
    """Open a bundled ml-latest-small file (works from a wheel or a source tree)."""
    resource = resources.files("bayesmf") / "data" / "ml-latest-small" / filename
    with resource.open("rb") as handle:
        yield handle


def _as_stream(payload: bytes) -> IO[bytes]:
    return io.BytesIO(payload)


def _read_ml100k(root: Path, filename: str) -> pd.DataFrame:
    return pd.read_csv(
        _as_stream(_verified(root, filename)),
        sep="\t",
        header=None,
        names=_ML100K_COLUMNS,
        dtype=np.int64,
    )


def _verified(root: Path, filename: str) -> bytes:
    """Read an ml-100k file, after checking them against the embedded SHA-256."""
    path = root / filename
    payload = path.read_bytes()
    digest = hashlib.sha256(payload).hexdigest()
    if digest != ML100K_SHA256[filename]:
        raise ValueError(
            f"{path} does not match the published ml-100k file (SHA-256 {digest}, expected "
            f"{ML100K_SHA256[filename]}); the copy is damaged or modified: delete it so it "
            "can be downloaded again, or point data_dir at an intact copy"
        )
    return payload


def cache_dir() -> Path:
    """Return the directory where downloaded data sets are kept.

    ``$XDG_CACHE_HOME/bayesmf`` when ``XDG_CACHE_HOME`` is set, else ``~/.cache/bayesmf``.
    """
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "bayesmf"


def _layout(directory: Path) -> Path | None:
    """Find the folder holding ``u.data`` under ``directory`` (``ml-100k/`` or itself), or None."""
    for candidate in (directory / "ml-100k", directory):
        if (candidate / "u.data").is_file():
            return candidate
    return None


def _ml100k_dir(data_dir: str | os.PathLike[str] | None, download: bool) -> Path:
    """Find ml-100k (data_dir, $BAYESMF_DATA_DIR, cache) or download it into the cache."""
    if data_dir is not None:
        found = _layout(Path(data_dir))
        if found is None:
            raise FileNotFoundError(
                f"ml-100k not found in data_dir={os.fspath(data_dir)!r}: expected "
                f"{Path(data_dir) / 'ml-100k' / 'u.data'} or {Path(data_dir) / 'u.data'}"
            )
        return found
    env = os.environ.get("BAYESMF_DATA_DIR")
    if env:
        found = _layout(Path(env))
        if found is not None:
            return found
        log.info("BAYESMF_DATA_DIR=%s holds no ml-100k; trying the cache", env)
    cache = cache_dir()
    found = _layout(cache)
    if found is not None:
        return found
    if not download:
        raise FileNotFoundError(
            f"ml-100k not found (looked in $BAYESMF_DATA_DIR and {cache}) and download=False; "
            f"download {ML100K_URL} and pass data_dir=, or allow the download"
        )
    return download_ml100k(cache)


def _fetch(url: str, out: IO[bytes]) -> None:
    """Copy the body of ``url`` into the open binary file ``out`` (tests replace this)."""
    with urllib.request.urlopen(url, timeout=60) as response:
        shutil.copyfileobj(response, out)


def download_ml100k(directory: str | os.PathLike[str] | None = None) -> Path:
    """Download ml-100k from GroupLens, verify it, and unpack it into ``directory/ml-100k``.

    The zip goes to a temporary file beside the target and its SHA-256 is checked; the
    files are extracted into a temporary folder and each is checked against its SHA-256;
    only then is the folder moved into place (one atomic rename). On any failure the
    temporary files are removed and nothing is left in ``directory``.

    Parameters
    ----------
    directory : path, optional
        Where to put ``ml-100k/``; default `cache_dir`.

    Returns
    -------
    pathlib.Path
        The ``ml-100k`` folder.

    Raises
    ------
    OSError
        The download failed.
    ValueError
        The zip or a file in it does not match its SHA-256.
    """
    directory = Path(directory) if directory is not None else cache_dir()
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / "ml-100k"
    log.info("downloading %s into %s", ML100K_URL, directory)
    work = Path(tempfile.mkdtemp(prefix=".ml-100k-", dir=directory))
    try:
        archive = work / "ml-100k.zip"
        try:
            with archive.open("wb") as out:
                _fetch(ML100K_URL, out)
        except OSError as exc:
            raise OSError(
                f"could not download {ML100K_URL} ({exc}); download it by hand, unzip it and "
                "pass data_dir= (or set BAYESMF_DATA_DIR)"
            ) from exc
        digest = _sha256_file(archive)
        if digest != ML100K_ZIP_SHA256:
            raise ValueError(
                f"the downloaded {ML100K_URL} is corrupted or changed (SHA-256 {digest}, "
                f"expected {ML100K_ZIP_SHA256}); nothing was kept, try again"
            )
        unpacked = work / "ml-100k"
        unpacked.mkdir()
        try:
            with zipfile.ZipFile(archive) as zf:
                for filename, expected in ML100K_SHA256.items():
                    # read known members only: no path from the archive is trusted
                    payload = zf.read(f"ml-100k/{filename}")
                    digest = hashlib.sha256(payload).hexdigest()
                    if digest != expected:
                        raise ValueError(
                            f"ml-100k/{filename} in the download does not match its SHA-256 "
                            f"({digest}, expected {expected}); nothing was kept"
                        )
                    (unpacked / filename).write_bytes(payload)
        except (zipfile.BadZipFile, KeyError) as exc:
            raise ValueError(
                f"the downloaded {ML100K_URL} is not the ml-100k archive ({exc})"
            ) from exc
        try:
            os.replace(unpacked, target)
        except OSError:
            # another process finished first; keep its copy if it is whole
            if _layout(directory) is None:
                raise
        return target
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
