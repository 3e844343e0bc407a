"""Stream the kept draws to a zarr store on disk, so the sampler's memory does not grow with them.

The store is a result in the layout `bayesmf.storage.save` writes (`bayesmf.load` reads it),
created before sampling from a template posterior whose draws are not yet written
(`create_store`). `ZarrSink` buffers a block of draws per chain and writes each full block
into the store: the store's chunks are one chain by one block of draws, so each write
fills whole chunks and the memory is a block per chain, whatever the number of draws.
After sampling, `ZarrSink.keep` cuts the store to the draws every kept chain completed
(Ctrl-C, a failed write) and `finish_store` writes the final ``info``;
`bayesmf.storage.read` with ``lazy=True`` opens it on dask arrays.
"""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
import zarr

from bayesmf.inference.gibbs.sink import compact_draws
from bayesmf.storage import Storable, disk_attrs, read, to_disk_tree

__all__ = ["ZarrSink", "check_store_path", "create_store", "finish_store", "placeholders", "store_sinks", "write_group"]

#: bytes of one chain's buffer of draws (at least one draw)
_BLOCK_BYTES = 32 * 2**20
#: most draws in one chain's buffer
_MAX_BLOCK = 100


def check_store_path(store: Any, overwrite: bool) -> Path:
    """Check that ``store`` names a place a new zarr store can be written; return it as a Path.

    Raises
    ------
    TypeError
        ``store`` is not a path, or ``overwrite`` not a bool.
    ValueError
        ``store`` exists and ``overwrite`` is False, or it is something other than a zarr
        store (never replaced); its directory does not exist.
    PermissionError
        Its directory is not writable.
    """
    if not isinstance(overwrite, bool):
        raise TypeError(f"overwrite must be True or False, got {overwrite!r}")
    if not isinstance(store, (str, os.PathLike)):
        raise TypeError(f"store must be None or a path to a zarr store, got {store!r}")
    path = Path(store)
    if path.exists() or path.is_symlink():
        if not overwrite:
            raise ValueError(f"the store {str(path)!r} exists; pass overwrite=True to replace it")
        if not path.is_dir() or not any((path / m).exists() for m in ("zarr.json", ".zgroup", ".zattrs")):
            raise ValueError(f"{str(path)!r} exists and is not a zarr store; not replacing it")
    parent = path.absolute().parent
    if not parent.is_dir():
        raise ValueError(f"the store's directory {str(parent)!r} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise PermissionError(f"cannot write the store {str(path)!r}: its directory {str(parent)!r} is not writable")
    return path


def placeholders(
    shapes: Mapping[str, tuple[tuple[int, ...], np.dtype]], stats: Sequence[str], chains: int
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """One zero draw per chain of each variable and statistic.

    What `bayesmf.posterior.make_posterior` builds the template of a store from; `create_store`
    stretches its draws to their number without holding them.
    """
    variables = {k: np.zeros((chains, 1, *shape), dtype) for k, (shape, dtype) in shapes.items()}
    return variables, {k: np.zeros((chains, 1)) for k in stats}


def _stretch(ds: xr.Dataset, n: int) -> xr.Dataset:
    """``ds`` with ``n`` draws of lazy zeros (dask) in place of its drawn variables."""
    import dask.array as da

    drawn = {
        k: (v.dims, da.zeros((v.shape[0], n, *v.shape[2:]), dtype=v.dtype, chunks=(1, n, *v.shape[2:])))
        for k, v in ds.data_vars.items()
        if v.dims[:2] == ("chain", "draw")
    }
    return ds.drop_vars(list(drawn)).assign_coords(draw=np.arange(n)).assign(drawn)


def _drawn(ds: xr.Dataset) -> list[str]:
    return [str(k) for k, v in ds.data_vars.items() if v.dims[:2] == ("chain", "draw")]


def _block(per_draw: int, n: int) -> int:
    """Draws per chain buffered before a write: `_BLOCK_BYTES` of them, at most `_MAX_BLOCK` or ``n``."""
    return max(1, min(_MAX_BLOCK, n, _BLOCK_BYTES // max(per_draw, 1)))


def _encoding(ds: xr.Dataset, block: int) -> dict[str, dict[str, Any]]:
    """Chunks of one chain by ``block`` draws: each block the sink writes fills whole chunks."""
    return {k: {"chunks": (1, block, *ds[k].shape[2:]), "_FillValue": np.nan} for k in _drawn(ds)}


def create_store(path: Path, template: Storable, draws: Mapping[str, int], overwrite: bool) -> zarr.Group:
    """Write ``template`` (a result on `placeholders`) to ``path`` without its draws.

    ``draws[group]``: the number of draws per chain of each group named there; their drawn
    variables are chunked for `ZarrSink` and read as NaN until written. Replaces an
    existing store only with ``overwrite`` (`check_store_path` has checked it).

    Raises
    ------
    OSError
        The store cannot be written (the message names it).
    """
    tree = to_disk_tree(template)
    encoding: dict[str, Any] = {}
    groups = {}
    for name, node in tree.children.items():
        ds = node.to_dataset()
        if name in draws:
            ds = _stretch(ds, draws[name])  # dask zeros: never computed, the sink writes the draws
            per_draw = sum(ds[k].dtype.itemsize * math.prod(ds[k].shape[2:]) for k in _drawn(ds))
            encoding["/" + name] = _encoding(ds, _block(per_draw, draws[name]))
        groups[name] = ds
    lazy = xr.DataTree.from_dict(groups)
    lazy.attrs = tree.attrs
    if overwrite and path.is_dir():
        shutil.rmtree(path)
    try:
        lazy.to_zarr(path, mode="w-", consolidated=False, compute=False, encoding=encoding)
    except OSError as exc:
        raise OSError(f"cannot write the store {str(path)!r}: {exc}") from exc
    return zarr.open_group(path, mode="r+")


def store_sinks(
    path: Path, template: Storable, chains: int, draws: int, n_warm: int, overwrite: bool
) -> tuple[zarr.Group, ZarrSink, ZarrSink | None]:
    """Create the store of ``template`` (`create_store`) and the sinks of its draws and warm-up draws."""
    sizes = {"posterior": draws, "sample_stats": draws, "warmup_posterior": n_warm, "warmup_sample_stats": n_warm}
    root = create_store(path, template, sizes, overwrite)
    sink = ZarrSink(root, "posterior", "sample_stats", chains, draws)
    warm = ZarrSink(root, "warmup_posterior", "warmup_sample_stats", chains, n_warm) if n_warm else None
    return root, sink, warm


def finish_store(
    path: Path, root: zarr.Group, result: Storable, error: BaseException | None, kept: str
) -> xr.DataTree:
    """Write the final ``info`` of ``result`` into its store and open the posterior lazily.

    ``error``: what stopped sampling, raised after the store is finished (an ``OSError``
    as one that names the store and says what it holds: ``kept``, "The first n draws of ...").
    """
    try:
        root.attrs.update(disk_attrs(result))
    except OSError as exc:
        error = error or exc
    if error is not None and not isinstance(error, OSError):
        raise error
    if error is not None:
        raise OSError(
            f"writing draws to the store {str(path)!r} failed ({error}); sampling stopped. {kept} "
            f"are in the store: bayesmf.load({str(path)!r}) reads them"
        ) from error
    return read(path, lazy=True).idata


def write_group(path: Path, name: str, ds: xr.Dataset, error: BaseException | None) -> BaseException | None:
    """Add group ``name`` (small, in memory) to the store at ``path``; return ``error``, or the failed write's."""
    try:
        ds.to_zarr(path, group=name, mode="w-", consolidated=False)
    except OSError as exc:
        return error or exc
    return error


class ZarrSink:
    """Kept draws of groups ``posterior`` and ``stats`` of the store ``root``, written a block at a time.

    ``chains`` and ``n_keep`` are the sizes the store was created with (`create_store`).
    Each chain's thread fills its own buffer, so chains never write the same chunk.
    """

    def __init__(self, root: zarr.Group, posterior: str, stats: str, chains: int, n_keep: int) -> None:
        self.root, self.groups = root, (posterior, stats)
        self.arrays: dict[str, Any] = {}
        self._dims: list[tuple[Any, tuple[str, ...]]] = []  # every array of the groups, with its dims
        per_draw = 0  # bytes of a draw of the posterior group: sets the block, as in create_store
        for group in self.groups:
            for name, array in root[group].arrays():  # type: ignore[union-attr]
                names = getattr(array.metadata, "dimension_names", None) or array.attrs.get("_ARRAY_DIMENSIONS")
                dims = tuple(str(d) for d in names or ())  # type: ignore[union-attr]
                self._dims.append((array, dims))
                if dims[:2] == ("chain", "draw"):
                    self.arrays[name] = array
                    per_draw += math.prod(array.shape[2:]) * array.dtype.itemsize if group == posterior else 0
        if any(a.shape[:2] != (chains, n_keep) for a in self.arrays.values()):
            raise ValueError(f"the store's groups {self.groups} are not {chains} chains x {n_keep} draws")
        self.block = _block(per_draw, n_keep)
        self._buffers: list[dict[str, np.ndarray] | None] = [None] * chains
        self._buffered = [0] * chains  # draws in the buffer
        self.stored = [0] * chains  # draws written to the store (every variable)

    def _buffer(self, chain: int) -> dict[str, np.ndarray]:
        buffer = self._buffers[chain]
        if buffer is None:
            buffer = {k: np.empty((self.block, *a.shape[2:]), dtype=a.dtype) for k, a in self.arrays.items()}
            self._buffers[chain] = buffer
        return buffer

    def record(self, chain: int, draw: int, values: Mapping[str, Any], stats: Mapping[str, float]) -> None:
        """Buffer draw ``draw`` of ``chain``; write the buffer when it holds a block."""
        if draw != self.stored[chain] + self._buffered[chain]:
            raise ValueError(f"chain {chain}: draw {draw} recorded out of order")
        buffer, i = self._buffer(chain), self._buffered[chain]
        for name, value in (*values.items(), *stats.items()):
            buffer[name][i] = value
        self._buffered[chain] = i + 1
        if i + 1 == self.block:
            self._write(chain)

    def _write(self, chain: int) -> None:
        n, start, buffer = self._buffered[chain], self.stored[chain], self._buffers[chain]
        if n == 0 or buffer is None:
            return
        for name, array in self.arrays.items():
            array[chain, start : start + n] = buffer[name][:n]
        self.stored[chain] = start + n
        self._buffered[chain] = 0

    def grow(self, n_keep: int) -> None:
        """Make the store hold ``n_keep`` draws per chain (between stages; new draws read NaN)."""
        for array, dims in self._dims:
            if "draw" not in dims or array.shape[dims.index("draw")] >= n_keep:
                continue
            old = array.shape[dims.index("draw")]
            array.resize(tuple(n_keep if d == "draw" else s for d, s in zip(dims, array.shape, strict=True)))
            if dims == ("draw",):  # the coordinate
                array[old:] = np.arange(old, n_keep)

    def compact(self, factor: int) -> None:
        """Keep every ``factor``-th written draw of each chain, moved down to 0, 1, ... (between stages).

        The draws above the new end stay in the store until overwritten or cut by `keep`.
        """
        self.flush()
        for array in self.arrays.values():
            for chain, n in enumerate(self.stored):
                compact_draws(array, chain, n, factor, self.block)
        self.stored = [math.ceil(n / factor) for n in self.stored]

    def flush(self) -> None:
        """Write every chain's buffered draws and free the buffers."""
        for chain in range(len(self._buffers)):
            self._write(chain)
            self._buffers[chain] = None

    def keep(self, chains: Sequence[int], n: int) -> None:
        """Cut the store to ``chains`` (moved down to 0, 1, ...) and their first ``n`` draws."""
        for new, old in enumerate(chains):
            if new != old:
                for array in self.arrays.values():
                    for start in range(0, n, self.block):
                        stop = min(n, start + self.block)
                        array[new, start:stop] = array[old, start:stop]
        sizes = {"chain": len(chains), "draw": n}
        for array, dims in self._dims:
            shape = tuple(sizes.get(d, s) for d, s in zip(dims, array.shape, strict=True))
            if shape != array.shape:
                array.resize(shape)
        self.stored = [min(self.stored[c], n) for c in chains]
