r"""Ids a model with features does not know: predicted from the feature prior, or refused.

A model fitted with features on a side (`bayesmf.inference.gibbs.priors.FeatureFactors`)
draws a row of that side from :math:`\mathcal N(m + W^\top x, v)`. Predicting an id it does
not know from the population prior :math:`\mathcal N(m, v)` would ignore what the features
say, and its intervals would be too narrow (that prior is the spread of the rows around
:math:`m + W^\top x`, not around :math:`m`). So, with ``unknown="prior"``, an unknown id of a
side with features

- is predicted from its feature prior when the model has its features: rows of ids without
  training ratings that were attached with the training data
  (`bayesmf.data.RatingsData.with_features` keeps them), or that a fold-in added;
- is refused otherwise, with a ``ValueError`` naming the ids and the way to give their
  features: ``fit.fold_in({}, user=..., features=frame)`` or
  ``fit.fold_in_items({}, item=..., features=frame)`` (an empty dict: no ratings, any
  likelihood; with ratings too, for the normal likelihood).

An unknown id of a side without features keeps the population prior.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from bayesmf.data import RatingsData
    from bayesmf.predictive.view import ModelView

__all__ = ["feature_mean", "unknown_rows"]


def unknown_rows(train: RatingsData, side: str, ids: list[Any]) -> np.ndarray | None:
    """Return the encoded features ``(len(ids), F)`` of unknown ``ids`` of ``side`` (None: no features there).

    Raises ``ValueError`` naming the ids whose features the model does not have.
    """
    features = getattr(train, f"{side}_features")
    if features is None or not ids:
        return None
    index = features.ids.to_index(np.asarray(ids, dtype=object), unknown="flag")
    missing = [ids[i] for i in np.flatnonzero(index < 0).tolist()]
    if missing:
        fold = "fold_in({}, user=<id>, features=frame)" if side == "user" else "fold_in_items({}, item=<id>, features=frame)"
        raise ValueError(
            f"{side} id(s) {missing[:5]!r}{' and more' if len(missing) > 5 else ''} are not in the model, which "
            f"was fitted with {side} features: it predicts a new {side} from its features, and has none for "
            f"these. Give them with fit.{fold} (features: a frame keyed by id, in the columns the model was "
            f"fitted with), or pass unknown='raise'"
        )
    return np.asarray(features.values[index], dtype=np.float64)


def feature_mean(view: ModelView, side: int, x: np.ndarray, s_of_c: np.ndarray) -> np.ndarray:
    r"""Return the feature part :math:`x^\top W` of the prior mean, per component ``(C, K)`` (side 0 user, 1 item)."""
    weights = view.weights_u if side == 0 else view.weights_v
    if weights is None:
        raise ValueError("features of an unknown id, but the model has no feature weights on that side")
    return np.einsum("f,cfk->ck", x, weights[s_of_c])
