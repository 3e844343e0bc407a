"""JSON-safe attributes: what netCDF and zarr attributes can hold, and back.

Numpy arrays are tagged to come back exactly (dtype and shape), non-finite floats as text;
values JSON cannot represent are dropped (logged). Used by `bayesmf.storage`.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import xarray as xr

__all__ = ["flatten_attrs", "from_json_safe", "json_safe", "unflatten_attrs"]

log = logging.getLogger("bayesmf")

_TAG = "bayesmf_json_"
_NDARRAY = "__ndarray__"


def flatten_attrs(ds: xr.Dataset) -> xr.Dataset:
    """Store attributes netCDF cannot hold (anything but numbers and strings) as JSON text."""
    attrs: dict[str, Any] = {}
    for key, value in ds.attrs.items():
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            attrs[key] = value
        else:
            attrs[_TAG + key] = json.dumps(value)
    return ds.drop_attrs(deep=False).assign_attrs(attrs)


def json_safe(value: Any, where: str) -> Any:
    """Keep the JSON-representable part of ``value``; numpy arrays are tagged to come back exactly."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        number = float(value)
        return number if math.isfinite(number) else {"__float__": repr(number)}
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
        return {
            _NDARRAY: [json_safe(v, where) for v in value.ravel().tolist()],
            "dtype": value.dtype.str,
            "shape": list(value.shape),
        }
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            safe = json_safe(item, f"{where}[{key!r}]")
            if safe is not _DROP:
                out[str(key)] = safe
        return out
    if isinstance(value, (list, tuple)):
        items = [json_safe(v, where) for v in value]
        return [v for v in items if v is not _DROP]
    log.info("not saving %s: %s is not JSON-representable", where, type(value).__name__)
    return _DROP


class _Drop:
    pass


_DROP: Any = _Drop()


def from_json_safe(value: Any) -> Any:
    """Undo `json_safe`: tagged arrays and non-finite floats come back as they were."""
    if isinstance(value, dict):
        if _NDARRAY in value:
            flat = [from_json_safe(v) for v in value[_NDARRAY]]
            return np.asarray(flat, dtype=np.dtype(value["dtype"])).reshape(value["shape"])
        if set(value) == {"__float__"}:
            return float(value["__float__"])
        return {k: from_json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_json_safe(v) for v in value]
    return value


def unflatten_attrs(ds: xr.Dataset) -> xr.Dataset:
    """Undo `flatten_attrs`."""
    if not any(k.startswith(_TAG) for k in ds.attrs):
        return ds
    attrs = {
        (k[len(_TAG) :] if k.startswith(_TAG) else k): (from_json_safe(json.loads(v)) if k.startswith(_TAG) else v)
        for k, v in ds.attrs.items()
    }
    return ds.drop_attrs(deep=False).assign_attrs(attrs)

