r"""Folding new users into a fitted model without refitting: `fold_in`.

For the normal likelihood with the identity link, given posterior draw :math:`s` (item factors
:math:`V^{(s)}`, item biases :math:`c^{(s)}`, :math:`\mu^{(s)}`, :math:`\sigma^{(s)}` and the
prior sds), the new user's unknowns :math:`x = (U_i, b_i)` have the Gaussian conditional
posterior

.. math::

    \Lambda^{(s)} = D^{(s)-1} + X^{(s)T} X^{(s)} / \sigma^{(s)2}, \qquad
    x \mid \cdot \sim \mathcal N\big(\Lambda^{(s)-1} X^{(s)T} (r - \mu^{(s)} - c^{(s)}_J)
    / \sigma^{(s)2},\; \Lambda^{(s)-1}\big)

with rows :math:`(V^{(s)}_j, 1)` of :math:`X^{(s)}` for the rated items :math:`J` and
:math:`D^{(s)} = \mathrm{diag}(\sigma_U^{(s)2} 1_K, \sigma_b^{(s)2})` (the draw's
``sigma_factor``/``sigma_user_bias``, or the fixed ``sigma_u``/``sigma_bias``); with
``factor_prior="per_side"`` the prior of the factors is centred on the draw's
``factor_mean_user`` (with sd ``sigma_factor_user``), which adds
:math:`D^{(s)-1} m^{(s)}` to the right-hand side. One draw of
:math:`x` per posterior draw gives draws from the joint posterior of the new user's
factors and everything else, under the approximation that the new user's ratings do not
move the other parameters (exact as the number of training ratings grows). A MAP result
gets the conditional mode :math:`\Lambda^{-1} X^T (r - \mu - c) / \sigma^2` instead of a
random draw.

Side information (a model fitted to data with user features,
`bayesmf.inference.gibbs.priors.FeatureFactors`): the new user's prior mean is the draw's
:math:`m^{(s)} + W^{(s)\top} x` for the user's encoded features :math:`x` (encoded as the
training features were, `bayesmf.features.Features.encode`), so a user with no ratings
(cold start) is predicted from the features, with the spread the draws of :math:`m, W` and
the factor sd leave.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from bayesmf._seed import SeedLike, generator
from bayesmf.data import IdEncoder, RatingsData
from bayesmf.features import Features
from bayesmf.posterior import feature_weights, make_posterior, param_names
from bayesmf.predictive.pairs import py_value
from bayesmf.predictive.view import ModelView, model_view

if TYPE_CHECKING:
    from bayesmf.results import FitResult

__all__ = ["fold_in"]


def _fold_in_frame(
    ratings: Any, user: Any, user_col: str, item_col: str, rating_col: str
) -> pd.DataFrame:
    if isinstance(ratings, Mapping):
        if user is None:
            raise ValueError("ratings given as a dict item -> rating need user=<the new user's id>")
        return pd.DataFrame(
            {
                user_col: [user] * len(ratings),
                item_col: list(ratings.keys()),
                rating_col: [float(v) for v in ratings.values()],
            }
        )
    if isinstance(ratings, pd.DataFrame):
        missing = [c for c in (user_col, item_col, rating_col) if c not in ratings.columns]
        if missing:
            raise ValueError(
                f"column(s) {missing} not in the ratings frame (its columns: {list(ratings.columns)}); "
                "name them with user_col=/item_col=/rating_col="
            )
        if user is not None:
            raise ValueError("user= is only for ratings given as a dict; the frame names its users")
        return ratings
    raise TypeError(
        f"ratings must be a DataFrame of (user, item, rating) or a dict item -> rating, got {type(ratings).__name__}"
    )


def fold_in(
    result: FitResult,
    ratings: Any,
    user: Any = None,
    random_seed: SeedLike = None,
    *,
    user_col: str = "user",
    item_col: str = "item",
    rating_col: str = "rating",
    features: pd.DataFrame | None = None,
) -> FitResult:
    """Add new users to a fitted model without refitting (normal likelihood, identity link).

    Parameters
    ----------
    result : FitResult
        The fitted model; its users, items and draws are kept as they are.
    ratings : pandas.DataFrame or dict
        The new users' ratings: a frame with columns ``user_col``, ``item_col``,
        ``rating_col`` (raw ids; users not in the model, items in it), or a dict
        ``{item: rating}`` for ONE user named by ``user`` (an empty dict folds in a user with
        no ratings, who gets the prior: cold start, flagged ``new_user`` by `predict`).
    user : raw id, optional
        The new user's id when ``ratings`` is a dict.
    random_seed : int or numpy.random.Generator, optional
        Seeds the draws of the new users' factors.
    user_col, item_col, rating_col : str
        Column names of a frame ``ratings``.
    features : pandas.DataFrame, optional
        For a model fitted with user features: the new users' features, keyed by raw id
        (its index), in the columns the model was fitted with; encoded as the training
        features were (an unseen category raises). Not needed for users whose features
        were already attached to the training data (`bayesmf.RatingsData.with_features`
        keeps rows of users without ratings). Refused for a model without user features.

    Returns
    -------
    FitResult
        A new result (same spec and method) whose posterior has the new users appended
        along the ``user`` dim (their factors drawn from the conditional posterior given
        each draw, see the module docstring), whose ``train`` holds the new ratings too (so
        ``recommend(..., exclude_rated=True)`` leaves them out), and whose
        ``info["folded_in"]`` lists the new ids.

    Raises
    ------
    ValueError
        For a model other than ``likelihood="normal"``, ``link="identity"``; a user already
        in the model; an item the model does not know; a rating off the scale or a
        duplicate (user, item) pair; a new user without features in a model with user
        features, or features given to a model without them (messages name the value).
    """
    spec = result.spec
    if spec.likelihood != "normal" or spec.link != "identity":
        raise ValueError(
            f"fold_in supports likelihood='normal' with link='identity' (closed-form conditional "
            f"posterior); this model has likelihood={spec.likelihood!r}, link={spec.link!r}. "
            "Refit with the new users instead"
        )
    train = result.train
    frame = _fold_in_frame(ratings, user, user_col, item_col, rating_col)
    if isinstance(ratings, Mapping):
        new_ids = [py_value(user)]
    else:
        new_ids = list(dict.fromkeys(py_value(v) for v in frame[user_col].tolist()))
        if not new_ids:
            raise ValueError("the ratings frame is empty; pass a dict {} with user= to fold in a user without ratings")
    known = [u for u in new_ids if u in train.users]
    if known:
        raise ValueError(
            f"user(s) {known[:5]!r} are already in the model; fold_in adds new users only "
            "(predict/recommend use the fitted ones)"
        )
    if len(frame):
        unknown_items = [v for v in dict.fromkeys(py_value(x) for x in frame[item_col].tolist()) if v not in train.items]
        if unknown_items:
            raise ValueError(
                f"item(s) {unknown_items[:5]!r} are not in the model; fold_in can only use "
                "ratings of items the model knows"
            )
        added = RatingsData.from_dataframe(
            frame, user=user_col, item=item_col, rating=rating_col, scale=train.scale,
            duplicates="raise", users=train.users, items=train.items,
        )
        users = added.users.extend(new_ids)
        added = added.with_encoders(users, train.items)
    else:
        users = train.users.extend(new_ids)
        added = RatingsData(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0), train.scale, users, train.items)
    new_features, x_new = _new_user_features(train.user_features, features, new_ids)
    # `extend` keeps every old index, so the old ratings need no re-encoding
    new_train = RatingsData(
        np.concatenate([train.user_idx, added.user_idx]),
        np.concatenate([train.item_idx, added.item_idx]),
        np.concatenate([train.rating, added.rating]),
        train.scale,
        users,
        train.items,
        new_features,
        train.item_features,
    )

    view = model_view(result)
    W = feature_weights(result.idata, "user")  # (S, F, K) or None
    S, K = view.n_samples, view.n_factors
    rng = generator(random_seed)
    new_index = np.arange(train.n_users, len(users))
    U_new = np.empty((S, len(new_index), K))
    b_new = np.zeros((S, len(new_index)))
    for col, uidx in enumerate(new_index.tolist()):
        sel = added.user_idx == uidx
        prior_mean = view.prior_mean_u if W is None or x_new is None else view.prior_mean_u + x_new[col] @ W
        x = _conditional_draws(
            view, added.item_idx[sel], added.rating[sel], rng, mode=result.is_map, prior_mean=prior_mean
        )
        U_new[:, col] = x[:, :K]
        if spec.biases:
            b_new[:, col] = x[:, K]

    post = result.idata["posterior"].to_dataset()
    chains, n_draws = post.sizes["chain"], post.sizes["draw"]
    draws: dict[str, np.ndarray] = {}
    for name in param_names(spec, train):
        values = np.asarray(post[name].values)
        if name == "U":
            values = np.concatenate([values, U_new.reshape(chains, n_draws, -1, K).astype(values.dtype)], axis=2)
        elif name == "user_bias":
            values = np.concatenate([values, b_new.reshape(chains, n_draws, -1)], axis=2)
        draws[name] = values
    tree = make_posterior(spec, new_train, draws, attrs=dict(post.attrs))
    if "sample_stats" in result.idata.children:
        tree["sample_stats"] = result.idata["sample_stats"]
    info = dict(result.info)
    info["folded_in"] = [*info.get("folded_in", []), *users.classes[new_index].tolist()]
    return type(result)(spec=spec, idata=tree, method=result.method, train=new_train, info=info)


def _new_user_features(
    known: Features | None, given: pd.DataFrame | None, new_ids: list[Any]
) -> tuple[Features | None, np.ndarray | None]:
    """Return the training features with the new users' rows added, and those rows (None without features)."""
    if known is None:
        if given is not None:
            raise ValueError("features= given, but the model was fitted without user features")
        return None, None
    if given is None:
        return known, known.rows_for(new_ids)  # rows attached with the training data, or an error naming the ids
    encoded = known.encode(given)
    rows = encoded.rows_for(new_ids)
    fresh = [u for u in new_ids if u not in known.ids]
    if fresh:
        ids = IdEncoder.fit("user", fresh)
        known = known.append(Features("user", known.encoder, ids, encoded.rows_for(ids)))
    return known, rows


def _conditional_draws(
    view: ModelView,
    item_idx: np.ndarray,
    rating: np.ndarray,
    rng: np.random.Generator,
    mode: bool,
    prior_mean: np.ndarray | None = None,
) -> np.ndarray:
    """One draw (or the mode) of a new user's (factors, bias) per posterior draw: (S, K [+1]).

    ``prior_mean``: (S, K) prior mean of the factors (default: the population's, ``view.prior_mean_u``).
    """
    a = view.arrays
    S, K = view.n_samples, view.n_factors
    biases = view.has_bias
    D = K + 1 if biases else K
    prior_var = np.empty((S, D))
    prior_var[:, :K] = view.prior_u**2
    if biases:
        prior_var[:, K] = view.prior_ub**2
    assert view.noise is not None
    noise_var = view.noise**2  # identity link: rating units
    X = np.empty((S, len(item_idx), D))
    X[:, :, :K] = a.V[:, item_idx, :]
    resid = np.broadcast_to(rating, (S, len(item_idx))).copy()
    if biases:
        X[:, :, K] = 1.0
        assert a.item_bias is not None
        resid -= view.mu[:, None] + a.item_bias[:, item_idx]
    precision = np.einsum("snd,sne->sde", X, X) / noise_var[:, None, None]
    precision[:, np.arange(D), np.arange(D)] += 1.0 / prior_var
    rhs = np.einsum("snd,sn->sd", X, resid) / noise_var[:, None]
    mean_u = view.prior_mean_u if prior_mean is None else prior_mean
    rhs[:, :K] += mean_u / prior_var[:, :K]  # a per-side (or feature) prior mean (else 0)
    chol = np.linalg.cholesky(precision)
    # mean = precision^{-1} rhs via the Cholesky factor: L w = rhs, L^T mean = w
    w = np.linalg.solve(chol, rhs[..., None])
    cholT = np.swapaxes(chol, -1, -2)
    mean = np.linalg.solve(cholT, w)[..., 0]
    if mode:
        return mean
    # x = mean + L^{-T} z has covariance (L L^T)^{-1} = precision^{-1}
    z = rng.standard_normal((S, D, 1))
    return mean + np.linalg.solve(cholT, z)[..., 0]

