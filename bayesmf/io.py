"""Save and load fitted results: netCDF or zarr, with JSON metadata, no pickle.

`save` writes a `FitResult` (also ``result.save(path)``); `load` reads it back. The
layout on disk, its version and its checks live in `bayesmf.storage`, which knows nothing
of `FitResult`: data flows one way, ``io -> results -> storage``.
"""

from __future__ import annotations

import os

from bayesmf.results import FitResult
from bayesmf.storage import FORMAT_VERSION, FORMATS, BayesmfFileError, read, save

__all__ = ["FORMATS", "FORMAT_VERSION", "BayesmfFileError", "load", "save"]


def load(path: str | os.PathLike[str]) -> FitResult:
    """Read a result written by `save`.

    Parameters
    ----------
    path : str or path-like
        A netCDF file or a zarr store written by `bayesmf.io.save`.

    Returns
    -------
    FitResult
        Spec, posterior (same draws, coords and dtypes as saved), training data (with the
        original encoders) and ``info``.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    BayesmfFileError
        If the file was not written by bayesmf, was written in a newer format version, or its
        posterior does not match the stored spec (variables or dims).
    """
    return FitResult(**read(path)._asdict())
