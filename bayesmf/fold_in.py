r"""Folding new users (`fold_in`) or items (`fold_in_items`) into a fitted model without refitting.

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
random draw. A new item is the mirror image: :math:`(V_j, c_j)` given the users' factors
and biases, with the item side's prior. A new row without ratings (cold start) is drawn
from its prior given each draw, under any likelihood (ratings need the normal one).

Side information (a model fitted to data with features on the new rows' side,
`bayesmf.inference.gibbs.priors.FeatureFactors`): the new row's prior mean is the draw's
:math:`m^{(s)} + W^{(s)\top} x` for its encoded features :math:`x` (encoded as the
training features were, `bayesmf.features.Features.encode`), so a user or item with no
ratings (cold start) is predicted from its features, with the spread the draws of
:math:`m, W` and the factor sd leave.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from bayesmf._seed import SeedLike, generator
from bayesmf.data import IdEncoder, RatingsData
from bayesmf.features import Features
from bayesmf.posterior import SCALAR_GROUP, feature_weights, make_posterior, param_names
from bayesmf.predictive.pairs import py_value
from bayesmf.predictive.view import ModelView, model_view

if TYPE_CHECKING:
    from bayesmf.results import FitResult

__all__ = ["fold_in", "fold_in_items"]

_OTHER = {"user": "item", "item": "user"}
#: groups a folded-in result keeps as they are: fold-in moves no draw of the fit's variables, so the
#: per-draw statistics and the scalars at every kept draw (``log_likelihood_sum`` included: the
#: fit's own training ratings) still describe its chains. The warm-up groups are dropped: their
#: factors lack the new rows.
_KEPT_GROUPS = ("sample_stats", SCALAR_GROUP)
#: posterior variables of each side's rows: (factors, biases)
_NAMES = {"user": ("U", "user_bias"), "item": ("V", "item_bias")}


def _columns_as_frame(ratings: Any) -> Any:
    """Return a dict of columns (list-like values) as ``pd.DataFrame(dict)``; anything else as it is."""
    if not isinstance(ratings, Mapping) or not ratings or not all(pd.api.types.is_list_like(v) for v in ratings.values()):
        return ratings
    try:
        return pd.DataFrame(dict(ratings))
    except ValueError as err:  # columns of different lengths
        raise ValueError(f"ratings given as a dict of columns {list(ratings)}: {err}") from None


def _fold_in_frame(ratings: Any, new_id: Any, side: str, cols: dict[str, str], rating_col: str) -> pd.DataFrame:
    other = _OTHER[side]
    if isinstance(ratings, Mapping):
        if new_id is None:
            raise ValueError(f"ratings given as a dict {other} -> rating need {side}=<the new {side}'s id>")
        return pd.DataFrame(
            {
                cols[side]: [new_id] * len(ratings),
                cols[other]: list(ratings.keys()),
                rating_col: [float(v) for v in ratings.values()],
            }
        )
    if isinstance(ratings, pd.DataFrame):
        missing = [c for c in (cols["user"], cols["item"], rating_col) if c not in ratings.columns]
        if missing:
            raise ValueError(
                f"column(s) {missing} not in the ratings frame (its columns: {list(ratings.columns)}); "
                "name them with user_col=/item_col=/rating_col="
            )
        if new_id is not None:
            raise ValueError(
                f"{side}={new_id!r} names the {side} of ratings given as a dict {other} -> rating; "
                f"a frame (or a dict of columns) names its {side}s in its {cols[side]!r} column"
            )
        return ratings
    raise TypeError(
        f"ratings must be a DataFrame of (user, item, rating), a dict of those columns or a dict {other} -> rating, "
        f"got {type(ratings).__name__}"
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
    """Add new users to a fitted model without refitting (with ratings: normal likelihood, identity link).

    Parameters
    ----------
    result : FitResult
        The fitted model; its users, items and draws are kept as they are.
    ratings : pandas.DataFrame or dict
        The new users' ratings: a frame with columns ``user_col``, ``item_col``,
        ``rating_col`` (raw ids; users not in the model, items in it), or a dict of such
        columns (``{"user": [...], "item": [...], "rating": [...]}``, read as
        ``pd.DataFrame(ratings)``), or a dict ``{item: rating}`` for ONE user named by
        ``user`` (an empty dict folds in a user with no ratings, who gets the prior: cold
        start, flagged ``new_user`` by `predict`).
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
        each draw, see the module docstring), whose ``train`` holds the new ratings (and
        features) too (so ``recommend(..., exclude_rated=True)`` leaves them out), and whose
        ``info["folded_in"]`` lists the new ids. The groups ``sample_stats`` and
        ``scalar_posterior`` (Gibbs) are kept as they are (fold-in moves none of the fit's
        draws; ``log_likelihood_sum`` stays that of the fit's own training ratings); the
        warm-up groups (``keep_warmup=True``) are dropped, their factors lacking the new rows.

    Raises
    ------
    ValueError
        Ratings for a model other than ``likelihood="normal"``, ``link="identity"`` (users
        without ratings, an empty dict, are folded in from the prior under any likelihood);
        a user already
        in the model; an item the model does not know; a rating off the scale or a
        duplicate (user, item) pair; a new user without features in a model with user
        features, or features given to a model without them (messages name the value).
    """
    cols = {"user": user_col, "item": item_col}
    return _fold_in(result, ratings, "user", user, random_seed, cols, rating_col, features)


def fold_in_items(
    result: FitResult,
    ratings: Any,
    item: Any = None,
    random_seed: SeedLike = None,
    *,
    features: pd.DataFrame | None = None,
    user_col: str = "user",
    item_col: str = "item",
    rating_col: str = "rating",
) -> FitResult:
    r"""Add new items to a fitted model without refitting: `fold_in` with the sides swapped.

    Parameters
    ----------
    result : FitResult
        The fitted model (left unchanged).
    ratings : pandas.DataFrame or dict
        A frame of (user, item, rating) whose items are new and users known, a dict of
        those columns (read as ``pd.DataFrame(ratings)``), or a dict ``{user: rating}`` for
        ONE item named by ``item`` (an empty dict: an item without ratings, cold start, under
        any likelihood).
    item : raw id, optional
        The new item's id when ``ratings`` is a dict.
    random_seed : int or numpy.random.Generator, optional
        Seeds the draws of the new items' factors.
    features : pandas.DataFrame, optional
        The new items' features (index: their ids) for a model fitted with item features,
        encoded as the training ones were; their prior mean becomes :math:`m + W^\top z`.
    user_col, item_col, rating_col : str
        Column names of a frame ``ratings``.

    Returns
    -------
    FitResult
        The new items appended along the ``item`` dim; ``info["folded_in_items"]`` lists
        them. Raises as `fold_in` does, for items.
    """
    cols = {"user": user_col, "item": item_col}
    return _fold_in(result, ratings, "item", item, random_seed, cols, rating_col, features)


def _fold_in(
    result: FitResult,
    ratings: Any,
    side: str,
    new_id: Any,
    random_seed: SeedLike,
    cols: dict[str, str],
    rating_col: str,
    features: pd.DataFrame | None,
) -> FitResult:
    spec = result.spec
    if spec.implicit_sets != "none":
        # a new row's prior mean would need its own set N(i) and the other side's sets would
        # need the new row: not built yet
        raise ValueError(
            f"fold_in is not available for a model with implicit_sets={spec.implicit_sets!r} (Bayesian SVD++); "
            f"refit with the new {side}s"
        )
    other = _OTHER[side]
    train = result.train
    encoders = {"user": train.users, "item": train.items}
    ratings = _columns_as_frame(ratings)
    frame = _fold_in_frame(ratings, new_id, side, cols, rating_col)
    if len(frame) and (spec.likelihood != "normal" or spec.link != "identity"):
        raise ValueError(
            f"fold_in of ratings supports likelihood='normal' with link='identity' (closed-form conditional "
            f"posterior); this model has likelihood={spec.likelihood!r}, link={spec.link!r}. Refit with the "
            f"new {side}s instead (new {side}s without ratings, an empty dict, can be folded in: cold start)"
        )
    if isinstance(ratings, Mapping):
        new_ids = [py_value(new_id)]
    else:
        new_ids = list(dict.fromkeys(py_value(v) for v in frame[cols[side]].tolist()))
        if not new_ids:
            raise ValueError(f"the ratings frame is empty; pass a dict {{}} with {side}= to fold in a {side} without ratings")
    known = [u for u in new_ids if u in encoders[side]]
    if known:
        raise ValueError(
            f"{side}(s) {known[:5]!r} are already in the model; fold_in adds new {side}s only "
            "(predict/recommend use the fitted ones)"
        )
    if len(frame):
        unknown = [v for v in dict.fromkeys(py_value(x) for x in frame[cols[other]].tolist()) if v not in encoders[other]]
        if unknown:
            raise ValueError(
                f"{other}(s) {unknown[:5]!r} are not in the model; fold_in can only use "
                f"ratings of {other}s the model knows"
            )
        added = RatingsData.from_dataframe(
            frame, user=cols["user"], item=cols["item"], rating=rating_col, scale=train.scale,
            duplicates="raise", users=train.users, items=train.items,
        )
        encoders[side] = getattr(added, f"{side}s").extend(new_ids)
        added = added.with_encoders(encoders["user"], encoders["item"])
    else:
        encoders[side] = encoders[side].extend(new_ids)
        empty = np.empty(0, np.int64)
        added = RatingsData(empty, empty, np.empty(0), train.scale, encoders["user"], encoders["item"])
    new_index = np.arange(len(getattr(train, f"{side}s")), len(encoders[side]))  # the new rows, in encoder order
    ordered = [py_value(v) for v in encoders[side].classes[new_index].tolist()]
    side_features, x_new = _new_features(getattr(train, f"{side}_features"), features, ordered, side)
    both_features = {"user": train.user_features, "item": train.item_features, side: side_features}
    # `extend` keeps every old index, so the old ratings need no re-encoding
    new_train = RatingsData(
        np.concatenate([train.user_idx, added.user_idx]),
        np.concatenate([train.item_idx, added.item_idx]),
        np.concatenate([train.rating, added.rating]),
        train.scale,
        encoders["user"],
        encoders["item"],
        both_features["user"],
        both_features["item"],
    )

    view = model_view(result)
    W = feature_weights(result.idata, side)  # (S, F, K) or None
    S, K = view.n_samples, view.n_factors
    rng = generator(random_seed)
    own_idx, other_idx = getattr(added, f"{side}_idx"), getattr(added, f"{other}_idx")
    base_mean = view.prior_mean_u if side == "user" else view.prior_mean_v
    F_new = np.empty((S, len(new_index), K))
    b_new = np.zeros((S, len(new_index)))
    for col, idx in enumerate(new_index.tolist()):
        sel = own_idx == idx
        prior_mean = base_mean if W is None or x_new is None else base_mean + x_new[col] @ W
        x = _conditional_draws(
            view, other_idx[sel], added.rating[sel], rng, mode=result.is_map, prior_mean=prior_mean, side=side
        )
        F_new[:, col] = x[:, :K]
        if spec.biases:
            b_new[:, col] = x[:, K]

    post = result.idata["posterior"].to_dataset()
    chains, n_draws = post.sizes["chain"], post.sizes["draw"]
    factors, biases = _NAMES[side]
    draws: dict[str, np.ndarray] = {}
    for name in param_names(spec, train):
        values = np.asarray(post[name].values)
        if name == factors:
            values = np.concatenate([values, F_new.reshape(chains, n_draws, -1, K).astype(values.dtype)], axis=2)
        elif name == biases:
            values = np.concatenate([values, b_new.reshape(chains, n_draws, -1)], axis=2)
        draws[name] = values
    tree = make_posterior(spec, new_train, draws, attrs=dict(post.attrs))
    for group in _KEPT_GROUPS:
        if group in result.idata.children:
            tree[group] = result.idata[group]
    info = dict(result.info)
    key = "folded_in" if side == "user" else "folded_in_items"
    info[key] = [*info.get(key, []), *ordered]
    return type(result)(spec=spec, idata=tree, method=result.method, train=new_train, info=info)


def _new_features(
    known: Features | None, given: pd.DataFrame | None, new_ids: list[Any], side: str
) -> tuple[Features | None, np.ndarray | None]:
    """Return the training features with the new rows added, and those rows (None without features)."""
    if known is None:
        if given is not None:
            raise ValueError(f"features= given, but the model was fitted without {side} features")
        return None, None
    if given is None:
        return known, known.rows_for(new_ids)  # rows attached with the training data, or an error naming the ids
    encoded = known.encode(given)
    rows = encoded.rows_for(new_ids)
    fresh = [u for u in new_ids if u not in known.ids]
    if fresh:
        ids = IdEncoder.fit(side, fresh)
        known = known.append(Features(side, known.encoder, ids, encoded.rows_for(ids)))
    return known, rows


def _conditional_draws(
    view: ModelView,
    item_idx: np.ndarray,
    rating: np.ndarray,
    rng: np.random.Generator,
    mode: bool,
    prior_mean: np.ndarray | None = None,
    side: str = "user",
) -> np.ndarray:
    """One draw (or the mode) of a new user's (factors, bias) per posterior draw: (S, K [+1]).

    ``side="item"``: a new item's, ``item_idx`` then holding the indices of the users who
    rated it. ``prior_mean``: (S, K) prior mean of the factors (default: the population's).
    """
    a = view.arrays
    S, K = view.n_samples, view.n_factors
    biases = view.has_bias
    D = K + 1 if biases else K
    user = side == "user"
    prior_var = np.empty((S, D))
    prior_var[:, :K] = (view.prior_u if user else view.prior_v) ** 2
    if biases:
        prior_var[:, K] = (view.prior_ub if user else view.prior_ib) ** 2
    if prior_mean is None:
        prior_mean = view.prior_mean_u if user else view.prior_mean_v
    if not len(item_idx):  # no ratings (any likelihood): the prior
        mean = np.zeros((S, D))
        mean[:, :K] = prior_mean
        return mean if mode else mean + rng.standard_normal((S, D)) * np.sqrt(prior_var)
    if view.noise is None:
        raise ValueError("fold-in of ratings needs the normal likelihood's noise sd")
    noise_var = view.noise**2  # identity link: rating units
    X = np.empty((S, len(item_idx), D))
    X[:, :, :K] = (a.V if user else a.U)[:, item_idx, :]
    resid = np.broadcast_to(rating, (S, len(item_idx))).copy()
    if biases:
        X[:, :, K] = 1.0
        other_bias = a.item_bias if user else a.user_bias
        assert other_bias is not None
        resid -= view.mu[:, None] + other_bias[:, item_idx]
    precision = np.einsum("snd,sne->sde", X, X) / noise_var[:, None, None]
    precision[:, np.arange(D), np.arange(D)] += 1.0 / prior_var
    rhs = np.einsum("snd,sn->sd", X, resid) / noise_var[:, None]
    rhs[:, :K] += prior_mean / prior_var[:, :K]  # a per-side (or feature) prior mean (else 0)
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

