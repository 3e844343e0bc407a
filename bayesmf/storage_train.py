"""The training data of a saved result: what `bayesmf.storage` writes of them, and how it rebuilds them.

A saved result holds its training ratings in ``observed_data`` / ``constant_data`` (the
layout of `bayesmf.posterior`) and, beside them, what `bayesmf.data.RatingsData` carries
besides ratings:

- side information: the encoded features of the training ids in ``constant_data``
  (`bayesmf.posterior.features_of`), and the rows of ids without training ratings (kept for
  cold start) in the root attribute ``bayesmf_cold_features`` (`cold_features`);
- the extra implicit pairs of the *transductive* protocol (``RatingsData.implicit_pairs``) in
  ``constant_data`` (`bayesmf.posterior.implicit_pairs_of`).

`stored_train` puts them back together, so a loaded fit's ``train`` is the data it was
fitted on (its implicit sets, and so a refit on them, come back the same); `feature_coords`
gives back the feature coordinates as they were written (netCDF reads strings as objects).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import xarray as xr

from bayesmf.data import IdEncoder, RatingsData
from bayesmf.features import Features
from bayesmf.posterior import features_of, implicit_pairs_of

__all__ = ["cold_features", "feature_coords", "stored_train"]


def cold_features(train: RatingsData) -> dict[str, Any]:
    """Return the feature rows of ids without training ratings (cold start) by side, JSON-able.

    The rows of the encoders' ids are in ``constant_data`` (`bayesmf.posterior`).
    """
    out = {}
    for side, features, encoder in (("user", train.user_features, train.users), ("item", train.item_features, train.items)):
        extra = [] if features is None else [v for v in features.ids.classes.tolist() if v not in encoder]
        if features is not None and extra:
            ids = IdEncoder.fit(side, extra)
            out[side] = Features(side, features.encoder, ids, features.rows_for(ids)).to_dict()
    return out


def stored_train(
    tree: xr.DataTree, users: IdEncoder, items: IdEncoder, scale: tuple[float, float], cold: str
) -> RatingsData:
    """Return the training data of a saved result: ratings, features with their cold-start rows, implicit pairs.

    Parameters
    ----------
    tree : xarray.DataTree
        The saved result (groups ``observed_data`` and ``constant_data`` present).
    users, items : IdEncoder
        The stored encoders.
    scale : tuple of float
        The stored rating scale.
    cold : str
        The root attribute ``bayesmf_cold_features`` (JSON; ``"{}"`` without).

    Raises
    ------
    KeyError, ValueError, TypeError, AttributeError
        Parts missing or malformed (`bayesmf.storage.read` names the file).
    """
    constant = tree["constant_data"].to_dataset()
    stored = features_of(tree, users, items)
    for side, payload in json.loads(cold).items():
        stored[side] = stored[side].append(Features.from_dict(payload))  # type: ignore[union-attr]
    return RatingsData(
        constant["user_idx"].values,
        constant["item_idx"].values,
        tree["observed_data"].to_dataset()["rating"].values,
        scale,
        users,
        items,
        stored["user"],
        stored["item"],
        implicit_pairs_of(tree),
    )


def feature_coords(train: RatingsData, ds: xr.Dataset, coords: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Return coords of ``ds`` as make_posterior wrote them (netCDF reads strings as objects): feature names, rows.

    ``coords``: `bayesmf.posterior.coords_for` of the stored spec and encoders.
    """
    out: dict[str, np.ndarray] = {}
    for side in ("user", "item"):
        features = getattr(train, f"{side}_features")
        if features is not None and f"{side}_feature" in ds.coords:
            out[f"{side}_feature"] = np.asarray(features.names, dtype=str)
        if side in ds.coords and ds.sizes[side] == len(coords[side]):
            out[side] = coords[side]
    return out
