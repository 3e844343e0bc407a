"""The one module that knows the layout of a bayesmf posterior (an ArviZ ``DataTree``).

Every inference route writes its draws through `make_posterior`, and everything downstream
(prediction, diagnostics, save/load) reads them through `posterior_arrays`. MAP estimates
are stored as one chain of one draw.

Layout
------
group ``posterior`` (dims ``chain``, ``draw`` first):

==================  ======================  ============================================
variable            dims                    meaning
==================  ======================  ============================================
``U``               user, factor            user factors (float32)
``V``               item, factor            item factors (float32)
``mu``              -                       global mean (``biases=True``; not ordinal)
``user_bias``       user                    user offsets (``biases=True``)
``item_bias``       item                    item offsets (``biases=True``)
``sigma``           -                       noise sd (``likelihood`` "normal" or "implicit")
``sigma_factor``    - or factor             factor prior sd (hierarchical, shared by U and V)
``factor_mean_user`` factor                 mean of the user factors (``factor_prior="per_side"``)
``factor_mean_item`` factor                 mean of the item factors (``factor_prior="per_side"``)
``sigma_factor_user`` - or factor           prior sd of the user factors (``"per_side"``)
``sigma_factor_item`` - or factor           prior sd of the item factors (``"per_side"``)
``sigma_user_bias`` -                       user-bias prior sd (hierarchical, biases)
``sigma_item_bias`` -                       item-bias prior sd (hierarchical, biases)
``cutpoints``       cutpoint                ordinal cutpoints (``likelihood="ordinal"``)
``feature_*_user``  user_feature, factor    feature weights and precision (``-``); items alike
``implicit_*_user`` item, factor            implicit weights y_j (float32) and precision
                                            (``-``); ``implicit_*_item``: user, factor
==================  ======================  ============================================

With ``implicit_sets``, ``posterior`` has the attributes ``implicit_sets`` and
``implicit_protocol`` ("strict" or "transductive", `bayesmf.implicit_sets.protocol_of`).

group ``observed_data``: ``rating`` (dim ``obs``); group ``constant_data``: ``user_idx``,
``item_idx`` (dim ``obs``) -- the training ratings, so a result is self-contained (and the
side information: `bayesmf.posterior_features`).
Coordinates ``user`` and ``item`` hold the raw ids.

group ``scalar_posterior`` (Gibbs fits): the variables without a user or item dim
(`scalar_names`) and ``log_likelihood_sum``, at every draw the sampler kept. The Gibbs
sampler keeps at most ``factor_draws`` draws per chain in ``posterior`` (the factors dominate
its size), evenly spaced: draw ``d`` of ``posterior`` is draw ``d * draw_spacing`` of this
group (its attribute ``draw_spacing``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from bayesmf.implicit_sets import protocol_of
from bayesmf.posterior_features import (
    feature_sides,
    feature_weights,
    features_of,
    implicit_pairs_of,
    side_constants,
)

if TYPE_CHECKING:
    from bayesmf.data import RatingsData
    from bayesmf.ids import IdEncoder
    from bayesmf.spec import PMF

__all__ = [
    "DIMS",
    "FACTOR_VARS",
    "SCALAR_GROUP",
    "PosteriorArrays",
    "coords_for",
    "feature_weights",
    "features_of",
    "implicit_pairs_of",
    "make_posterior",
    "param_names",
    "posterior_arrays",
    "prior_moments",
    "scalar_names",
    "scalar_posterior",
    "shapes_for",
    "variable_shapes",
]

#: dims of each posterior variable after (chain, draw)
DIMS: dict[str, tuple[str, ...]] = {
    "U": ("user", "factor"),
    "V": ("item", "factor"),
    "mu": (),
    "user_bias": ("user",),
    "item_bias": ("item",),
    "sigma": (),
    "sigma_factor": (),  # ("factor",) with per_factor_scales
    "factor_mean_user": ("factor",),
    "factor_mean_item": ("factor",),
    "sigma_factor_user": (),  # ("factor",) with per_factor_scales
    "sigma_factor_item": (),
    "sigma_user_bias": (),
    "sigma_item_bias": (),
    "cutpoints": ("cutpoint",),
    "feature_weight_user": ("user_feature", "factor"),
    "feature_weight_item": ("item_feature", "factor"),
    "feature_precision_user": (),
    "feature_precision_item": (),
    "implicit_weight_user": ("item", "factor"),
    "implicit_weight_item": ("user", "factor"),
    "implicit_precision_user": (),
    "implicit_precision_item": (),
}
_SIDES = ("user", "item")
_FACTOR_SDS = ("sigma_factor", "sigma_factor_user", "sigma_factor_item")
#: dims of the variables that `posterior_arrays` leaves on disk when asked to read lazily
_ROW_DIMS = {"user", "item"}
#: stored as float32 to keep posteriors of large models small
FACTOR_VARS = ("U", "V")
_FLOAT32 = (*FACTOR_VARS, "implicit_weight_user", "implicit_weight_item")
#: group of the scalar variables at every kept draw (Gibbs)
SCALAR_GROUP = "scalar_posterior"


def _feature_names(sides: tuple[str, ...], prefix: str = "feature") -> list[str]:
    return [f"{prefix}_{kind}_{side}" for side in sides for kind in ("weight", "precision")]


def param_names(spec: PMF, train: RatingsData | None = None) -> list[str]:
    """Return the posterior variables a spec produces (fitted to ``train``, with its features), in layout order."""
    names = ["U", "V"]
    if spec.biases:
        # the ordinal cutpoints absorb the global mean, so an ordinal model has no mu
        names += ["user_bias", "item_bias"] if spec.likelihood == "ordinal" else ["mu", "user_bias", "item_bias"]
    if spec.likelihood in ("normal", "implicit"):  # Gaussian noise
        names.append("sigma")
    elif spec.likelihood == "ordinal":
        names.append("cutpoints")  # bernoulli: the probit's noise sd is 1, nothing to store
    if spec.priors == "hierarchical":
        if spec.factor_prior == "per_side":
            names += ["factor_mean_user", "factor_mean_item", "sigma_factor_user", "sigma_factor_item"]
        else:
            names.append("sigma_factor")
        if spec.biases:
            names += ["sigma_user_bias", "sigma_item_bias"]
    return names + _feature_names(spec.implicit_sides, "implicit") + _feature_names(feature_sides(train))


def scalar_names(spec: PMF) -> list[str]:
    """Return the posterior variables of ``spec`` with no user or item dim, in layout order."""
    return [name for name in param_names(spec) if not {"user", "item"} & set(dims_of(spec, name))]


def scalar_posterior(
    spec: PMF, train: RatingsData, draws: Mapping[str, np.ndarray], stats: Mapping[str, np.ndarray], spacing: int
) -> xr.Dataset:
    """Build the ``scalar_posterior`` group: `scalar_names` and ``stats``, each (chain, draw, ...)."""
    levels = train.levels
    coords = coords_for(spec, train.users, train.items, None if levels is None else len(levels))
    data_vars = {name: (("chain", "draw", *dims_of(spec, name)), np.asarray(draws[name])) for name in scalar_names(spec)}
    data_vars |= {name: (("chain", "draw"), np.asarray(value)) for name, value in stats.items()}
    chains, n = np.shape(next(iter(data_vars.values()))[1])[:2]
    used = {dim for dims, _ in data_vars.values() for dim in dims}
    coords = {"chain": np.arange(chains), "draw": np.arange(n)} | {k: v for k, v in coords.items() if k in used}
    return xr.Dataset(data_vars, coords=coords, attrs={"draw_spacing": int(spacing)})


def dims_of(spec: PMF, name: str) -> tuple[str, ...]:
    """Dims (after chain, draw) of variable ``name`` under ``spec``."""
    if name in _FACTOR_SDS and spec.per_factor_scales:
        return ("factor",)
    return DIMS[name]


def variable_shapes(
    spec: PMF,
    n_users: int,
    n_items: int,
    n_levels: int | None = None,
    *,
    n_features: Mapping[str, int] | None = None,
) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Shape (after chain, draw) and dtype of each posterior variable of ``spec``, in layout order.

    For a sampler that fills the draws itself: ``U`` and ``V`` are float32, the rest float64.
    ``n_levels`` (the number of rating levels) sizes the cutpoints of an ordinal model;
    ``n_features`` (side -> number of encoded features, for the sides with features) the weights.
    """
    sizes = {"user": n_users, "item": n_items, "factor": spec.n_factors}
    counts = dict(n_features or {})
    sides = tuple(side for side in _SIDES if side in counts)
    sizes |= {f"{side}_feature": int(counts[side]) for side in sides}
    if spec.likelihood == "ordinal":
        if n_levels is None:
            raise ValueError("an ordinal model needs the number of rating levels")
        sizes["cutpoint"] = n_levels - 1
    return {
        name: (
            tuple(sizes[dim] for dim in dims_of(spec, name)),
            np.dtype(np.float32 if name in _FLOAT32 else np.float64),
        )
        for name in param_names(spec) + _feature_names(sides)
    }


def shapes_for(spec: PMF, train: RatingsData) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """`variable_shapes` of ``spec`` fitted to ``train`` (its users, items, rating levels and features)."""
    levels = train.levels if spec.likelihood == "ordinal" else None
    counts = {side: getattr(train, f"{side}_features").n_features for side in feature_sides(train)}
    return variable_shapes(spec, train.n_users, train.n_items, None if levels is None else len(levels), n_features=counts)


def coords_for(
    spec: PMF, users: IdEncoder, items: IdEncoder, n_levels: int | None = None
) -> dict[str, np.ndarray]:
    """Coordinates of the layout: raw user/item ids, factor numbers, cutpoint numbers."""
    coords = {
        "user": _coord_values(users.classes),
        "item": _coord_values(items.classes),
        "factor": np.arange(spec.n_factors),
    }
    if spec.likelihood == "ordinal":
        if n_levels is None:
            raise ValueError("an ordinal model needs the number of rating levels")
        coords["cutpoint"] = np.arange(n_levels - 1)
    return coords


def _coord_values(classes: np.ndarray) -> np.ndarray:
    if classes.dtype == object:
        return np.asarray([str(c) for c in classes.tolist()], dtype=str)
    return np.asarray(classes)


def make_posterior(
    spec: PMF,
    train: RatingsData,
    draws: Mapping[str, np.ndarray],
    *,
    sample_stats: Mapping[str, np.ndarray] | None = None,
    attrs: Mapping[str, Any] | None = None,
) -> xr.DataTree:
    """Assemble a posterior ``DataTree`` in the bayesmf layout.

    Parameters
    ----------
    spec : PMF
        The model spec (decides which variables must be present).
    train : RatingsData
        The training ratings (stored in ``observed_data``/``constant_data``).
    draws : mapping of str to numpy.ndarray
        Arrays of shape ``(chain, draw, *dims)`` for every name in `param_names`; extra
        names are ignored.
    sample_stats : mapping, optional
        Arrays of shape ``(chain, draw)`` (e.g. ``diverging``, ``lp``).
    attrs : mapping, optional
        Attributes of the posterior group (method, timings...).
    """
    levels = train.levels
    coords = coords_for(spec, train.users, train.items, None if levels is None else len(levels))
    sides = feature_sides(train)
    coords |= {f"{side}_feature": np.asarray(getattr(train, f"{side}_features").names, dtype=str) for side in sides}
    names = param_names(spec, train)
    missing = [n for n in names if n not in draws]
    if missing:
        hint = " (the Gibbs sampler, NUTS and ADVI fit data with features, under the per-side prior)" if set(missing) & set(_feature_names(sides)) else ""
        raise ValueError(f"draws lack the variable(s) {missing} of the layout{hint}")
    chains, n_draws = np.shape(draws[names[0]])[:2]
    data_vars = {}
    for name in names:
        array = np.asarray(draws[name])
        array = array.astype(np.float32 if name in _FLOAT32 else np.float64, copy=False)
        dims = ("chain", "draw", *dims_of(spec, name))
        if array.shape[:2] != (chains, n_draws) or array.ndim != len(dims):
            raise ValueError(f"draws[{name!r}] has shape {array.shape}, expected dims {dims}")
        data_vars[name] = (dims, array)
    base = {"chain": np.arange(chains), "draw": np.arange(n_draws)}
    var_coords = {k: v for k, v in coords.items() if any(k in d[0] for d in data_vars.values())}
    sets = {"implicit_sets": spec.implicit_sets, "implicit_protocol": protocol_of(train)} if spec.implicit_sides else {}
    posterior = xr.Dataset(data_vars, coords=base | var_coords, attrs=dict(attrs or {}) | sets)
    groups: dict[str, xr.Dataset] = {"posterior": posterior}
    if sample_stats:
        groups["sample_stats"] = xr.Dataset(
            {k: (("chain", "draw"), np.asarray(v)) for k, v in sample_stats.items()}, coords=base
        )
    obs = {"obs": np.arange(train.n_ratings)}
    groups["observed_data"] = xr.Dataset({"rating": ("obs", np.asarray(train.rating))}, coords=obs)
    constant: dict[str, Any] = {"user_idx": ("obs", np.asarray(train.user_idx)), "item_idx": ("obs", np.asarray(train.item_idx))}
    side_vars, side_coords, encodings = side_constants(train, coords)
    groups["constant_data"] = xr.Dataset(constant | side_vars, coords=obs | side_coords, attrs=encodings)
    return xr.DataTree.from_dict(groups)


@dataclass(frozen=True)
class PosteriorArrays:
    """Posterior draws as numpy arrays with chains and draws flattened into ``sample``.

    Absent parts (no biases, no noise sd for the ordinal likelihood) are ``None``. Read
    with ``lazy=True`` from a zarr store, ``U``, ``V`` and the offsets are dask arrays.
    """

    U: np.ndarray  # (sample, user, factor)
    V: np.ndarray  # (sample, item, factor)
    mu: np.ndarray | None  # (sample,)
    user_bias: np.ndarray | None  # (sample, user)
    item_bias: np.ndarray | None  # (sample, item)
    sigma: np.ndarray | None  # (sample,)
    cutpoints: np.ndarray | None  # (sample, cutpoint)

    @property
    def n_samples(self) -> int:
        """Number of draws (chains x draws)."""
        return int(self.U.shape[0])


def posterior_arrays(tree: xr.DataTree, *, lazy: bool = False) -> PosteriorArrays:
    """Read the draws of a bayesmf posterior into flat numpy arrays (no copy where possible).

    With ``lazy=True`` the variables with a user or item dim (``U``, ``V``, the offsets)
    that are dask arrays (a zarr store read lazily) stay dask arrays, ``(sample, ...)``
    chunked along the samples as stored; everything else is read.
    """
    post = tree["posterior"].to_dataset()
    n_samples = int(post.sizes["chain"] * post.sizes["draw"])

    def get(name: str) -> np.ndarray | None:
        if name not in post:
            return None
        data = post[name].data
        if lazy and _ROW_DIMS & set(post[name].dims) and not isinstance(data, np.ndarray) and data.shape[0]:
            import dask.array as da

            # (chain, draw, ...) -> (sample, ...): the chains one after the other, chunks kept
            return da.concatenate([data[c] for c in range(data.shape[0])], axis=0)  # type: ignore[no-any-return]
        values = post[name].values
        # explicit sample count: a posterior with zero users has an empty U, and -1 is ambiguous
        return values.reshape((n_samples, *values.shape[2:]))

    U, V = get("U"), get("V")
    if U is None or V is None:
        raise ValueError("not a bayesmf posterior: the posterior group lacks U or V")
    return PosteriorArrays(
        U=U,
        V=V,
        mu=get("mu"),
        user_bias=get("user_bias"),
        item_bias=get("item_bias"),
        sigma=get("sigma"),
        cutpoints=get("cutpoints"),
    )


def prior_moments(tree: xr.DataTree, spec: PMF) -> dict[str, np.ndarray]:
    """Per-draw prior means and sds of the user/item factors, and sds of the biases.

    What a user or item the model has not seen is drawn from (prior predictive), and what
    a folded-in user's ratings update. Fixed priors give the spec's constants; hierarchical
    priors read ``sigma_factor`` (or, with ``factor_prior="per_side"``, each side's
    ``factor_mean_*`` and ``sigma_factor_*``), ``sigma_user_bias`` and ``sigma_item_bias``.

    Returns
    -------
    dict
        ``"user_factor"``, ``"item_factor"`` (sds) and ``"user_factor_mean"``,
        ``"item_factor_mean"``: ``(sample, factor)``; ``"user_bias"``, ``"item_bias"``
        (sds): ``(sample,)`` (zeros without biases).
    """
    post = tree["posterior"]
    n_samples = int(post.sizes["chain"] * post.sizes["draw"])
    k = spec.n_factors
    zeros = np.zeros((n_samples, k))
    if spec.priors == "fixed":
        return {
            "user_factor": np.full((n_samples, k), float(spec.sigma_u)),
            "item_factor": np.full((n_samples, k), float(spec.sigma_v)),
            "user_factor_mean": zeros,
            "item_factor_mean": zeros.copy(),
            "user_bias": np.full(n_samples, float(spec.sigma_bias if spec.biases else 0.0)),
            "item_bias": np.full(n_samples, float(spec.sigma_bias if spec.biases else 0.0)),
        }

    def flat(name: str) -> np.ndarray:
        values = np.asarray(post[name].values, dtype=np.float64)
        return values.reshape((n_samples, *values.shape[2:]))

    def per_factor(name: str) -> np.ndarray:
        return np.broadcast_to(flat(name).reshape(n_samples, -1), (n_samples, k)).copy()

    if spec.factor_prior == "per_side":
        user, item = per_factor("sigma_factor_user"), per_factor("sigma_factor_item")
        user_mean, item_mean = per_factor("factor_mean_user"), per_factor("factor_mean_item")
    else:
        user = per_factor("sigma_factor")
        item, user_mean, item_mean = user.copy(), zeros, zeros.copy()
    if spec.biases:
        user_bias, item_bias = flat("sigma_user_bias"), flat("sigma_item_bias")
    else:
        user_bias = item_bias = np.zeros(n_samples)
    return {
        "user_factor": user,
        "item_factor": item,
        "user_factor_mean": user_mean,
        "item_factor_mean": item_mean,
        "user_bias": user_bias,
        "item_bias": item_bias,
    }
