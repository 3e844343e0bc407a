"""The on-disk layout of a fitted result: netCDF or zarr, with JSON metadata, no pickle.

A saved result is the posterior ``DataTree`` of `bayesmf.posterior` written as is, with the
root attributes holding, as JSON text, everything needed to rebuild the `FitResult`:

==========================  =================================================================
attribute                   content
==========================  =================================================================
``bayesmf_format``          integer version of this layout on disk (`FORMAT_VERSION`)
``bayesmf_version``         the package version that wrote the file
``bayesmf_spec``            ``PMF.to_json()``
``bayesmf_users``           ``IdEncoder.to_json()`` of the users (raw ids keep int/str type)
``bayesmf_items``           the same for the items
``bayesmf_scale``           ``[low, high]``
``bayesmf_method``          the inference route
``bayesmf_info``            ``FitResult.info``, JSON-safe part (numpy arrays kept exactly)
``bayesmf_cold_features``   feature rows of ids without training ratings, by side
                            (``Features.to_dict()``; the encoders' rows are in
                            ``constant_data``, `bayesmf.posterior.features_of`)
==========================  =================================================================

The training data come back whole, with their features and implicit pairs
(`bayesmf.storage_train`).

Saving writes to a temporary path beside the target and moves it into place, so a failed
save leaves nothing behind, and an existing path is only replaced with ``overwrite=True``.

This module knows nothing of `bayesmf.results.FitResult`: `save` takes anything with its
five attributes, and `read` returns them (`StoredResult`); `FitResult.save` and
`bayesmf.io.load` build on it.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any, Literal, NamedTuple, Protocol

import numpy as np
import xarray as xr

from bayesmf._json_attrs import flatten_attrs, from_json_safe, json_safe, unflatten_attrs
from bayesmf._validate import validate_choice
from bayesmf.data import IdEncoder, RatingsData
from bayesmf.posterior import FACTOR_VARS, coords_for, dims_of, param_names
from bayesmf.spec import PMF
from bayesmf.storage_train import cold_features, feature_coords, stored_train

__all__ = [
    "FORMATS",
    "FORMAT_VERSION",
    "BayesmfFileError",
    "Storable",
    "StoredResult",
    "disk_attrs",
    "read",
    "save",
    "to_disk_tree",
]

log = logging.getLogger("bayesmf")

#: version of the on-disk layout; bump when a change makes old readers wrong
FORMAT_VERSION = 1
FORMATS = ("netcdf", "zarr")
_SUFFIXES = {".nc": "netcdf", ".nc4": "netcdf", ".netcdf": "netcdf", ".zarr": "zarr"}
_PREFIX = "bayesmf_"
#: key of a lazily read group's ``encoding`` naming the store it reads from
_SOURCE = "bayesmf_source"


class BayesmfFileError(ValueError):
    """A file is not a bayesmf result, or one this version cannot read."""


class Storable(Protocol):
    """What `save` writes: the attributes of a `bayesmf.results.FitResult`."""

    @property
    def spec(self) -> PMF: ...  # noqa: D102
    @property
    def idata(self) -> xr.DataTree: ...  # noqa: D102
    @property
    def method(self) -> str: ...  # noqa: D102
    @property
    def train(self) -> RatingsData: ...  # noqa: D102
    @property
    def info(self) -> dict[str, Any]: ...  # noqa: D102


class StoredResult(NamedTuple):
    """What `read` returns: the fields of a `bayesmf.results.FitResult`."""

    spec: PMF
    idata: xr.DataTree
    method: str
    train: RatingsData
    info: dict[str, Any]


def save(
    result: Storable,
    path: str | os.PathLike[str],
    format: Literal["netcdf", "zarr"] | None = None,
    *,
    overwrite: bool = False,
) -> Path:
    """Write a fitted result to netCDF or zarr.

    Parameters
    ----------
    result : FitResult
        The result to save (left unchanged).
    path : str or path-like
        Target file (netCDF) or directory (zarr).
    format : {"netcdf", "zarr"}, optional
        Default: from the suffix of ``path`` (``.nc`` -> netCDF via h5netcdf, ``.zarr`` ->
        zarr).
    overwrite : bool
        Replace an existing file or zarr store at ``path``. Without it an existing path is an
        error. A directory that is not a zarr store is never replaced.

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    ValueError
        Unknown format or suffix; ``path`` exists and ``overwrite`` is False; ``path`` is a
        directory that is not a zarr store; ``path`` is the zarr store the result's draws
        are read from (a fit backed by a store, a lazy read): never overwritten.

    Notes
    -----
    A result read lazily from a zarr store (``fit_gibbs(store=...)``) is copied a stored
    block of draws at a time: its draws are never all in memory.
    """
    if not (
        isinstance(getattr(result, "spec", None), PMF)
        and isinstance(getattr(result, "train", None), RatingsData)
        and isinstance(getattr(result, "idata", None), xr.DataTree)
    ):
        raise TypeError(f"save() needs a FitResult, got {type(result).__name__}")
    path = Path(path)
    fmt = _format_of(path, format)
    if path.resolve() in _sources(result.idata):
        raise ValueError(
            f"{str(path)!r} is the store this result's draws are read from; save it to another path "
            "(it is never overwritten, not even with overwrite=True)"
        )
    if path.exists() or path.is_symlink():
        if not overwrite:
            raise ValueError(f"{str(path)!r} exists; pass overwrite=True to replace it")
        if path.is_dir() and not _is_zarr_store(path):
            raise ValueError(f"{str(path)!r} is a directory that is not a zarr store; not replacing it")
        if fmt == "netcdf" and path.is_dir():
            raise ValueError(f"{str(path)!r} is a directory; not replacing it with a netCDF file")
        if fmt == "zarr" and not path.is_dir():
            raise ValueError(f"{str(path)!r} is a file; not replacing it with a zarr store")
    if not path.parent.exists():
        raise ValueError(f"directory {str(path.parent)!r} does not exist")

    tree = to_disk_tree(result)
    # write beside the target (same file system, so the final rename is atomic for files)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        staged = tmp / path.name
        if fmt == "netcdf":
            tree.to_netcdf(staged, engine="h5netcdf")
        else:
            tree.to_zarr(staged, consolidated=False)
        _move_into_place(staged, path, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("saved %s result to %s (%s)", result.method, path, fmt)
    return path


def _format_of(path: Path, format: str | None) -> str:
    if format is not None:
        return str(validate_choice("format", format, FORMATS))
    suffix = path.suffix.lower()
    if suffix not in _SUFFIXES:
        raise ValueError(
            f"cannot tell the format of {str(path)!r} from its suffix {suffix!r}; use a "
            f"suffix in {sorted(_SUFFIXES)} or pass format='netcdf' or 'zarr'"
        )
    return _SUFFIXES[suffix]


def _sources(tree: xr.DataTree) -> set[Path]:
    """Return the stores whose draws ``tree`` reads lazily (recorded by `read`)."""
    return {Path(node.encoding[_SOURCE]) for node in tree.children.values() if _SOURCE in node.encoding}


def _is_zarr_store(path: Path) -> bool:
    return any((path / marker).exists() for marker in ("zarr.json", ".zgroup", ".zattrs"))


def _move_into_place(staged: Path, path: Path, tmp: Path) -> None:
    if staged.is_dir():
        # a directory cannot be swapped atomically: park the old store in the temp dir first
        # and put it back if the move fails, so the user never ends up with neither
        parked = None
        if path.exists():
            parked = tmp / (path.name + ".old")
            os.replace(path, parked)
        try:
            os.replace(staged, path)
        except BaseException:
            if parked is not None:
                os.replace(parked, path)
            raise
    else:
        os.replace(staged, path)


def _package_version() -> str:
    try:
        return metadata.version("bayesmf")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0+unknown"


def disk_attrs(result: Storable) -> dict[str, Any]:
    """Return the root attributes of a saved result: format, version, spec, encoders, scale, method, info."""
    train = result.train
    return {
        _PREFIX + "format": FORMAT_VERSION,
        _PREFIX + "version": _package_version(),
        _PREFIX + "spec": result.spec.to_json(),
        _PREFIX + "users": train.users.to_json(),
        _PREFIX + "items": train.items.to_json(),
        _PREFIX + "scale": json.dumps(list(train.scale)),
        _PREFIX + "method": str(result.method),
        _PREFIX + "info": json.dumps(json_safe(result.info, "info")),
        _PREFIX + "cold_features": json.dumps(cold_features(train)),
    }


def to_disk_tree(result: Storable) -> xr.DataTree:
    """Return the tree `save` writes: the result's groups with JSON-safe attributes, `disk_attrs` at the root."""
    attrs = disk_attrs(result)
    groups: dict[str, xr.Dataset] = {}
    for name, node in result.idata.children.items():
        ds = node.to_dataset()
        safe = json_safe(dict(ds.attrs), f"{name}.attrs")
        groups[name] = flatten_attrs(ds.drop_attrs(deep=False).assign_attrs(safe))
    tree = xr.DataTree.from_dict(groups)
    tree.attrs = attrs
    return tree


def read(path: str | os.PathLike[str], *, lazy: bool = False) -> StoredResult:
    """Read the parts of a result written by `save` (`bayesmf.io.load` makes a `FitResult` of them).

    Parameters
    ----------
    path : str or path-like
        A netCDF file or a zarr store.
    lazy : bool
        Leave the draws of a zarr store on disk: the groups are dask arrays chunked as
        stored, read when used (the training ratings are read at once).

    Returns
    -------
    StoredResult
        The saved spec, posterior, training data and ``info``.

    Raises
    ------
    FileNotFoundError, BayesmfFileError
        As `bayesmf.io.load`.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file or zarr store: {str(path)!r}")
    lazy = lazy and path.is_dir()
    try:
        if path.is_dir():
            tree = xr.open_datatree(path, engine="zarr", consolidated=False, chunks={} if lazy else None)
        else:
            tree = xr.open_datatree(path, engine="h5netcdf")
    except (OSError, ValueError) as exc:
        raise BayesmfFileError(f"{str(path)!r} is not a netCDF file or zarr store bayesmf can read: {exc}") from exc
    if not lazy:
        with tree:
            tree = tree.load()
    attrs = dict(tree.attrs)
    version = attrs.get(_PREFIX + "format")
    if version is None:
        raise BayesmfFileError(f"{str(path)!r} was not written by bayesmf.save (no bayesmf_format attribute)")
    version = int(version)
    if version > FORMAT_VERSION:
        raise BayesmfFileError(
            f"{str(path)!r} uses bayesmf file format {version}, newer than this bayesmf "
            f"understands ({FORMAT_VERSION}); it was written by bayesmf "
            f"{attrs.get(_PREFIX + 'version', '?')}: upgrade bayesmf to read it"
        )
    try:
        spec = PMF.from_json(str(attrs[_PREFIX + "spec"]))
        users = IdEncoder.from_json(str(attrs[_PREFIX + "users"]))
        items = IdEncoder.from_json(str(attrs[_PREFIX + "items"]))
        low, high = json.loads(str(attrs[_PREFIX + "scale"]))
        method = str(attrs[_PREFIX + "method"])
        info = from_json_safe(json.loads(str(attrs[_PREFIX + "info"])))
    except (KeyError, ValueError, TypeError) as exc:
        raise BayesmfFileError(f"{str(path)!r} has unreadable bayesmf metadata: {exc}") from exc

    children = tree.children
    for group in ("posterior", "observed_data", "constant_data"):
        if group not in children:
            raise BayesmfFileError(f"{str(path)!r} lacks the {group!r} group of a bayesmf result")
    try:  # the ratings, their side information (with rows for cold start) and implicit pairs
        train = stored_train(tree, users, items, (float(low), float(high)), str(attrs.get(_PREFIX + "cold_features", "{}")))
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        raise BayesmfFileError(f"{str(path)!r} has unreadable training data or side information: {exc}") from exc
    groups: dict[str, xr.Dataset] = {}
    first = ("posterior", "sample_stats", "observed_data", "constant_data")  # as make_posterior
    for name, node in sorted(children.items(), key=lambda kv: (first.index(kv[0]) if kv[0] in first else 4, kv[0])):
        ds = unflatten_attrs(node.to_dataset())
        if name == "posterior":
            ds = _check_posterior(ds, spec, train, path)
        elif name == "constant_data":
            ds = ds.assign_coords(feature_coords(train, ds, coords_for(spec, users, items, _n_levels(train))))
        if lazy:
            ds.encoding[_SOURCE] = str(path.resolve())
        groups[name] = ds
    idata = xr.DataTree.from_dict(groups)
    return StoredResult(spec=spec, idata=idata, method=method, train=train, info=info)


def _check_posterior(ds: xr.Dataset, spec: PMF, train: RatingsData, path: Path) -> xr.Dataset:
    """Refuse a posterior that does not have the layout of ``spec``; restore coord dtypes."""
    expected = param_names(spec, train)
    present = [str(v) for v in ds.data_vars]
    if sorted(present) != sorted(expected):
        raise BayesmfFileError(
            f"the posterior in {str(path)!r} has variables {sorted(present)}, but its spec "
            f"({spec}) has {sorted(expected)}: the file does not match this bayesmf's layout"
        )
    ds = ds[expected]  # layout order (a zarr store lists its arrays in any order)
    for name in expected:
        dims = ("chain", "draw", *dims_of(spec, name))
        if tuple(ds[name].dims) != dims:
            raise BayesmfFileError(
                f"posterior variable {name!r} in {str(path)!r} has dims {tuple(ds[name].dims)}, "
                f"expected {dims} under the stored spec"
            )
        if name in FACTOR_VARS and ds[name].dtype != np.float32:
            ds[name] = ds[name].astype(np.float32)
    coords = coords_for(spec, train.users, train.items, _n_levels(train))
    for dim in ("user", "item"):
        if dim in ds.coords:
            if ds.sizes[dim] != len(coords[dim]):
                raise BayesmfFileError(
                    f"the posterior in {str(path)!r} has {ds.sizes[dim]} {dim}s but the stored "
                    f"encoder has {len(coords[dim])}"
                )
            # netCDF returns strings as object arrays: give back what make_posterior wrote
            ds = ds.assign_coords({dim: coords[dim]})
    return ds.assign_coords(feature_coords(train, ds, coords))


def _n_levels(train: RatingsData) -> int | None:
    levels = train.levels
    return None if levels is None else len(levels)

