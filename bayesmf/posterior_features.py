"""The side information's part of the posterior layout (`bayesmf.posterior` re-exports it).

What a fit with features or implicit sets stores beside its draws, in ``constant_data``:
each side's encoded features ``{side}_features`` (dims ``side``, ``{side}_feature``) and
their encoding (attribute ``{side}_feature_encoding``), and a transductive fit's extra
implicit pairs ``implicit_user_idx``, ``implicit_item_idx`` (dim ``implicit_pair``); and how
they are read back (`features_of`, `feature_weights`). `bayesmf.posterior` owns the layout
as a whole (its table lists these variables) and is the only module that imports this one.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from bayesmf.features import FeatureEncoder, Features
from bayesmf.ids import IdEncoder
from bayesmf.implicit_sets import implicit_pairs

if TYPE_CHECKING:
    from bayesmf.data import RatingsData
    from bayesmf.spec import PMF

__all__ = ["feature_sides", "feature_weights", "features_of", "side_constants"]

_SIDES = ("user", "item")


def feature_sides(train: RatingsData | None) -> tuple[str, ...]:
    """Return the sides of ``train`` with features (none for None)."""
    if train is None:
        return ()
    return tuple(side for side in _SIDES if getattr(train, f"{side}_features", None) is not None)


def side_constants(
    spec: PMF, train: RatingsData, coords: dict[str, np.ndarray]
) -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, str]]:
    """Return the ``constant_data`` variables, coordinates and attributes of ``train``'s side information.

    ``coords``: the layout's coordinates, with each featured side's ``{side}_feature``.
    """
    sides = feature_sides(train)
    constant: dict[str, Any] = {
        f"{side}_features": ((side, f"{side}_feature"), np.asarray(train.feature_matrix(side))) for side in sides
    }
    extra = implicit_pairs(train) if spec.implicit_sides else None
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


def feature_weights(tree: xr.DataTree, side: str) -> np.ndarray | None:
    """Return the draws of ``side``'s feature weights, (sample, feature, factor); None without features."""
    post = tree["posterior"]
    name = f"feature_weight_{side}"
    if name not in post:
        return None
    values = np.asarray(post[name].values, dtype=np.float64)
    return values.reshape((-1, *values.shape[2:]))
