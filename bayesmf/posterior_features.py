"""The side information's part of the posterior layout (`bayesmf.posterior` re-exports it).

What a fit with features or implicit sets stores beside its draws, in ``constant_data``:
each side's encoded features ``{side}_features`` (dims ``side``, ``{side}_feature``) and
their encoding (attribute ``{side}_feature_encoding``), and the training data's extra
implicit pairs (``RatingsData.implicit_pairs``, the *transductive* protocol)
``implicit_user_idx``, ``implicit_item_idx`` (dim ``implicit_pair``); and how they are read
back (`features_of`, `implicit_pairs_of`, `feature_weights`). `bayesmf.posterior` owns the
layout as a whole (its table lists these variables) and re-exports the readers it needs;
`bayesmf.storage_train` reads the implicit pairs back here.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from bayesmf.features import FeatureEncoder, Features
from bayesmf.ids import IdEncoder

if TYPE_CHECKING:
    from bayesmf.data import RatingsData

__all__ = ["feature_sides", "feature_weights", "features_of", "implicit_pairs_of", "side_constants"]

_SIDES = ("user", "item")


def feature_sides(train: RatingsData | None) -> tuple[str, ...]:
    """Return the sides of ``train`` with features (none for None)."""
    if train is None:
        return ()
    return tuple(side for side in _SIDES if getattr(train, f"{side}_features", None) is not None)


def side_constants(
    train: RatingsData, coords: dict[str, np.ndarray]
) -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, str]]:
    """Return the ``constant_data`` variables, coordinates and attributes of ``train``'s side information.

    ``coords``: the layout's coordinates, with each featured side's ``{side}_feature``. What
    is stored depends on ``train`` alone (its features and implicit pairs, whatever the
    model fits), so a loaded fit's training data are the data it was fitted on.
    """
    sides = feature_sides(train)
    constant: dict[str, Any] = {
        f"{side}_features": ((side, f"{side}_feature"), np.asarray(train.feature_matrix(side))) for side in sides
    }
    extra = train.implicit_pairs
    if extra is not None:
        constant |= {f"implicit_{s}_idx": ("implicit_pair", np.asarray(a)) for s, a in zip(_SIDES, extra, strict=True)}
    attrs = {f"{s}_feature_encoding": json.dumps(getattr(train, f"{s}_features").encoder.to_dict()) for s in sides}
    return constant, {k: coords[k] for side in sides for k in (side, f"{side}_feature")}, attrs


def features_of(tree: xr.DataTree, users: IdEncoder, items: IdEncoder) -> dict[str, Features | None]:
    """Return the features stored in ``tree``'s ``constant_data`` (by side; None without).

    ``users``/``items``: the training data's encoders (the rows are in their index order).
    What a loader needs to rebuild the training data: ``train.with_features(**{f"{side}_features": ...})``.
    """
    constant = tree["constant_data"].to_dataset()
    return {
        side: Features(
            side, FeatureEncoder.from_dict(json.loads(str(constant.attrs[f"{side}_feature_encoding"]))),
            IdEncoder(side, encoder.classes), constant[f"{side}_features"].values,
        ) if f"{side}_feature_encoding" in constant.attrs else None
        for side, encoder in zip(_SIDES, (users, items), strict=True)
    }


def implicit_pairs_of(tree: xr.DataTree) -> tuple[np.ndarray, np.ndarray] | None:
    """Return the extra implicit pairs stored in ``tree``'s ``constant_data`` (user and item indices), or None.

    What a loader passes as ``RatingsData(..., implicit_pairs=...)`` (validated there).
    """
    constant = tree["constant_data"].to_dataset()
    if "implicit_user_idx" not in constant:
        return None
    return constant["implicit_user_idx"].values, constant["implicit_item_idx"].values


def feature_weights(tree: xr.DataTree, side: str) -> np.ndarray | None:
    """Return the draws of ``side``'s feature weights, (sample, feature, factor); None without features."""
    post = tree["posterior"]
    name = f"feature_weight_{side}"
    if name not in post:
        return None
    values = np.asarray(post[name].values, dtype=np.float64)
    return values.reshape((-1, *values.shape[2:]))
