r"""Ranking items under uncertainty, and folding new users into a fitted model.

`recommend` scores every candidate item for a user from the posterior draws and returns
the top ``n`` with their intervals. The ranking rule is a choice about risk:

=============  ===========================================================================
``rank_by``    score of item :math:`j` for user :math:`i`
=============  ===========================================================================
``"mean"``     posterior(-predictive) mean rating
``"lower"``    lower end of the ``prob`` interval: cautious, prefers items the model is
               sure about (with ``kind="expected"`` a credible bound on the mean rating)
``"prob"``     :math:`P(r_{ij} \ge \text{threshold})`
``"thompson"`` the mean rating under ONE posterior draw :math:`s` picked at random
               (seeded): Thompson sampling, which explores uncertain items in proportion
               to their chance of being best
=============  ===========================================================================

`fold_in` adds users who were not in the training data without refitting. For the normal
likelihood with the identity link, given posterior draw :math:`s` (item factors
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
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from bayesmf._validate import validate_choice, validate_positive_int, validate_prob
from bayesmf.data import RatingsData
from bayesmf.posterior import make_posterior, param_names
from bayesmf.predict import (
    INTERVALS,
    KINDS,
    UNKNOWN,
    _base_seed,
    _check_bool,
    _check_chunk_size,
    _check_threshold,
    _chunk_width,
    _chunks,
    _draw_scales,
    _latent,
    _mean_of,
    _Model,
    _model,
    _Pairs,
    _resolve_pairs,
    _summarize,
)

if TYPE_CHECKING:
    from bayesmf.results import FitResult

__all__ = ["RANK_BY", "fold_in", "recommend"]

RANK_BY = ("mean", "lower", "prob", "thompson")


# ---------------------------------------------------------------------------------------
# recommend
# ---------------------------------------------------------------------------------------
def _as_user_list(user: Any) -> list[Any]:
    if isinstance(user, (str, bytes)) or np.isscalar(user):
        return [user]
    if isinstance(user, (pd.Series, pd.Index, np.ndarray, list, tuple)):
        users = list(user.tolist() if hasattr(user, "tolist") else user)
        if not users:
            raise ValueError("user is an empty list; pass at least one user id")
        return users
    raise TypeError(f"user must be a raw user id or a list of them, got {type(user).__name__}")


def _candidates(result: FitResult, user: Any, items: Any, exclude_rated: bool) -> pd.DataFrame:
    train = result.train
    if items is None:
        item_raw = train.items.classes
    else:
        item_raw = np.asarray(list(items.tolist() if hasattr(items, "tolist") else items), dtype=object)
        if len(item_raw) == 0:
            raise ValueError("items is empty; pass candidate item ids or None for all items")
        item_raw = np.asarray(list(dict.fromkeys(item_raw.tolist())), dtype=object)
    if exclude_rated and user in train.users:
        uidx = int(train.users.to_index([user])[0])
        rated = train.item_idx[train.user_idx == uidx]
        iidx = train.items.to_index(item_raw, unknown="flag")
        keep = ~np.isin(iidx, rated)
        item_raw = item_raw[keep]
    return pd.DataFrame({"user": np.full(len(item_raw), user, dtype=object), "item": item_raw})


def recommend(
    result: FitResult,
    user: Any,
    n: int = 10,
    prob: float = 0.9,
    rank_by: str = "mean",
    threshold: float | None = 4.0,
    exclude_rated: bool = True,
    items: Iterable[Any] | None = None,
    random_seed: int | np.random.Generator | None = None,
    *,
    kind: str = "predictive",
    interval: str = "eti",
    clip: bool = True,
    unknown: str = "prior",
    chunk_size: int | None = None,
) -> pd.DataFrame:
    r"""Top-``n`` items for one or several users, with intervals.

    Parameters
    ----------
    result : FitResult
        The fitted model.
    user : raw id or list of raw ids
        The user(s). An id the model does not know gets the prior predictive (popular,
        well-liked items first) with ``unknown="prior"``, a `KeyError` with ``"raise"``.
    n : int
        Items per user (fewer if fewer candidates).
    prob : float
        Interval probability, in (0, 1).
    rank_by : {"mean", "lower", "prob", "thompson"}
        Ranking rule (module docstring). ``"prob"`` needs a ``threshold``.
    threshold : float or None
        Rating for ``p_at_least`` = :math:`P(r \ge \text{threshold})`; must lie on the rating
        scale (default 4.0: on a 1-5 star scale, "likes it"); None drops the column.
    exclude_rated : bool
        Leave out items the user rated in ``result.train``.
    items : iterable of raw ids, optional
        Candidate items (default: every item the model knows).
    random_seed : int or numpy.random.Generator, optional
        Seeds the Thompson draw, prior draws of unknown users and predictive HDIs.
    kind : {"predictive", "expected"}
        What the intervals and scores describe: the rating the user would give, or the
        mean rating (epistemic only); see `bayesmf.predict.predict`.
    interval : {"eti", "hdi"}
        Interval type.
    clip : bool
        Censor predictive draws to the rating scale.
    unknown : {"prior", "raise"}
        Policy for ids the model does not know.
    chunk_size : int, optional
        Items per chunk when scoring.

    Returns
    -------
    pandas.DataFrame
        Long format, ``n`` rows per user: ``user``, ``rank`` (1 = best), ``item``, ``mean``,
        ``sd``, ``median``, ``lower``, ``upper``, ``p_at_least`` (with a threshold),
        ``score`` (the ranking score), ``new_user``, ``new_item``.

    Notes
    -----
    Every candidate is scored with only what the rule needs (the mean, one quantile, one
    tail probability or one draw); the full summaries are then computed for the top ``n``
    only. Both stages use the same per-pair seeds, so a ``"lower"`` score equals the
    reported ``lower``.
    """
    n = validate_positive_int("n", n)
    prob = validate_prob(prob)
    validate_choice("rank_by", rank_by, RANK_BY)
    validate_choice("kind", kind, KINDS)
    validate_choice("interval", interval, INTERVALS)
    validate_choice("unknown", unknown, UNKNOWN)
    exclude_rated = _check_bool("exclude_rated", exclude_rated)
    clip = _check_bool("clip", clip)
    chunk_size = _check_chunk_size(chunk_size)
    model = _model(result)
    thr = _check_threshold(threshold, model.low, model.high)
    if rank_by == "prob" and math.isnan(thr):
        raise ValueError("rank_by='prob' needs a threshold (e.g. threshold=4.0)")
    users = _as_user_list(user)
    rng = np.random.default_rng(random_seed) if not isinstance(random_seed, np.random.Generator) else random_seed
    base = _base_seed(rng)
    tail = (1.0 - prob) / 2.0
    hdi_prob = prob if interval == "hdi" else math.nan
    frames = []
    for raw_user in users:
        cand = _candidates(result, raw_user, items, exclude_rated)
        pairs = _resolve_pairs(result, cand, unknown=unknown, rating_col=None)
        if len(pairs) == 0:
            continue
        def summary(
            qs: np.ndarray, thr_: float, hdi_: float, pairs: _Pairs = pairs, clip_: bool = clip
        ) -> Any:
            return _summarize(
                model, pairs, kind=kind, qs=qs, threshold=thr_, clip=clip_, hdi_prob=hdi_,
                chunk_size=chunk_size, base=base,
            )

        none = np.empty(0)
        if rank_by == "mean" and kind == "predictive" and clip and not model.ordinal:
            score = _censored_mean_scores(summary, pairs, n, model.low, model.high)
        elif rank_by == "mean":
            score = summary(none, math.nan, math.nan).mean
        elif rank_by == "prob":
            score = summary(none, thr, math.nan).p_at_least
        elif rank_by == "lower" and interval == "hdi":
            score = summary(none, math.nan, hdi_prob).hdi[:, 0]
        elif rank_by == "lower":
            score = summary(np.array([tail]), math.nan, math.nan).quantiles[:, 0]
        else:
            score = _thompson_scores(model, pairs, int(rng.integers(model.n_samples)), clip, chunk_size, base)
        # stable: ties keep the encoder's item order
        top = np.argsort(-score, kind="stable")[:n]
        top_pairs = _subset_pairs(pairs, top)
        full = summary(np.array([0.5, tail, 1.0 - tail]), thr, hdi_prob, top_pairs)
        lower, upper = (full.hdi[:, 0], full.hdi[:, 1]) if full.hdi is not None else (full.quantiles[:, 1], full.quantiles[:, 2])
        columns: dict[str, Any] = {
            "user": top_pairs.user,
            "rank": np.arange(1, len(top) + 1),
            "item": top_pairs.item,
            "mean": full.mean,
            "sd": full.sd,
            "median": full.quantiles[:, 0],
            "lower": lower,
            "upper": upper,
        }
        if full.p_at_least is not None:
            columns["p_at_least"] = full.p_at_least
        columns["score"] = score[top]
        columns["new_user"] = top_pairs.new_user
        columns["new_item"] = top_pairs.new_item
        frames.append(pd.DataFrame(columns))
    if not frames:
        raise ValueError(f"no candidate items left for user(s) {users[:5]!r} (all rated?)")
    out = pd.concat(frames, ignore_index=True)
    out.attrs.update(prob=prob, kind=kind, interval=interval, threshold=threshold, rank_by=rank_by, method=result.method)
    return out


def _censored_mean_scores(summary: Any, pairs: _Pairs, n: int, low: float, high: float) -> np.ndarray:
    r"""Censored predictive means of the pairs that can make the top ``n``; ``-inf`` elsewhere.

    The censored mean :math:`E[\mathrm{clip}(Y)] = E[Y] + E[(l - Y)^+] - E[(Y - h)^+]` costs
    two normal CDFs per draw; the uncensored mean :math:`u` and sd :math:`s` of the mixture
    cost none. For ANY distribution with that mean and sd,
    :math:`E[(Y - k)^+] \le \tfrac12(\sqrt{s^2 + (u - k)^2} + u - k)` (Scarf's bound), so each
    censored mean lies in a cheap interval around :math:`u`. Only the pairs whose upper
    bound reaches the ``n``-th largest lower bound can be in the top ``n``; the exact
    censored mean is computed for those alone, and the ranking is exact.
    """
    raw = summary(np.empty(0), math.nan, math.nan, pairs, False)
    u, s = raw.mean, raw.sd
    above = 0.5 * (np.sqrt(s**2 + (u - high) ** 2) + (u - high))
    below = 0.5 * (np.sqrt(s**2 + (low - u) ** 2) + (low - u))
    lower_bound, upper_bound = u - above, u + below
    kth = np.sort(lower_bound)[::-1][min(n, len(u)) - 1]
    keep = np.flatnonzero(upper_bound >= kth)
    score = np.full(len(u), -np.inf)
    score[keep] = summary(np.empty(0), math.nan, math.nan, _subset_pairs(pairs, keep)).mean
    return score


def _subset_pairs(pairs: _Pairs, rows: np.ndarray) -> _Pairs:
    return _Pairs(
        user=pairs.user[rows],
        item=pairs.item[rows],
        uidx=pairs.uidx[rows],
        iidx=pairs.iidx[rows],
        rating=None if pairs.rating is None else pairs.rating[rows],
        new_user=pairs.new_user[rows],
        new_item=pairs.new_item[rows],
        user_code=pairs.user_code[rows],
        item_code=pairs.item_code[rows],
    )


def _thompson_scores(
    model: _Model, pairs: _Pairs, draw: int, clip: bool, chunk_size: int | None, base: int
) -> np.ndarray:
    """Mean rating of every pair under posterior draw ``draw`` (prior draws for unknown ids)."""
    S = model.n_samples
    out = np.empty(len(pairs))
    unknown = pairs.unknown
    for rows_all, n_comp, unk in (
        (np.flatnonzero(~unknown), S, False),
        (np.flatnonzero(unknown), S * max(1, math.ceil(1000 / S)), True),
    ):
        s_of_c = np.arange(n_comp) % S
        for rows in _chunks(rows_all, n_comp, _chunk_width(model, unk), chunk_size):
            eta = _latent(model, pairs, rows, n_comp, base)
            values = _mean_of(model, eta[:, draw : draw + 1], s_of_c[draw : draw + 1])[:, 0]
            out[rows] = np.clip(values, model.low, model.high) if clip else values
    return out


# ---------------------------------------------------------------------------------------
# fold_in
# ---------------------------------------------------------------------------------------
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
    random_seed: int | np.random.Generator | None = None,
    *,
    user_col: str = "user",
    item_col: str = "item",
    rating_col: str = "rating",
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
        duplicate (user, item) pair (messages name the value).
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
        new_ids = [_py(user)]
    else:
        new_ids = list(dict.fromkeys(_py(v) for v in frame[user_col].tolist()))
        if not new_ids:
            raise ValueError("the ratings frame is empty; pass a dict {} with user= to fold in a user without ratings")
    known = [u for u in new_ids if u in train.users]
    if known:
        raise ValueError(
            f"user(s) {known[:5]!r} are already in the model; fold_in adds new users only "
            "(predict/recommend use the fitted ones)"
        )
    if len(frame):
        unknown_items = [v for v in dict.fromkeys(_py(x) for x in frame[item_col].tolist()) if v not in train.items]
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
    # `extend` keeps every old index, so the old ratings need no re-encoding
    new_train = RatingsData(
        np.concatenate([train.user_idx, added.user_idx]),
        np.concatenate([train.item_idx, added.item_idx]),
        np.concatenate([train.rating, added.rating]),
        train.scale,
        users,
        train.items,
    )

    model = _model(result)
    S, K = model.n_samples, model.n_factors
    scales = _draw_scales(result)
    rng = np.random.default_rng(random_seed) if not isinstance(random_seed, np.random.Generator) else random_seed
    new_index = np.arange(train.n_users, len(users))
    U_new = np.empty((S, len(new_index), K))
    b_new = np.zeros((S, len(new_index)))
    for col, uidx in enumerate(new_index.tolist()):
        sel = added.user_idx == uidx
        x = _conditional_draws(
            model, scales, added.item_idx[sel], added.rating[sel], rng, mode=result.is_map
        )
        U_new[:, col] = x[:, :K]
        if spec.biases:
            b_new[:, col] = x[:, K]

    post = result.idata["posterior"].to_dataset()
    chains, n_draws = post.sizes["chain"], post.sizes["draw"]
    draws: dict[str, np.ndarray] = {}
    for name in param_names(spec):
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


def _conditional_draws(
    model: _Model,
    scales: dict[str, np.ndarray],
    item_idx: np.ndarray,
    rating: np.ndarray,
    rng: np.random.Generator,
    mode: bool,
) -> np.ndarray:
    """One draw (or the mode) of a new user's (factors, bias) per posterior draw: (S, K [+1])."""
    a = model.arrays
    S, K = model.n_samples, model.n_factors
    biases = model.has_bias
    D = K + 1 if biases else K
    prior_var = np.empty((S, D))
    prior_var[:, :K] = scales["u"] ** 2
    if biases:
        prior_var[:, K] = scales["ub"] ** 2
    assert model.noise is not None
    noise_var = model.noise**2  # identity link: rating units
    X = np.empty((S, len(item_idx), D))
    X[:, :, :K] = a.V[:, item_idx, :]
    resid = np.broadcast_to(rating, (S, len(item_idx))).copy()
    if biases:
        X[:, :, K] = 1.0
        assert a.item_bias is not None
        resid -= model.mu[:, None] + a.item_bias[:, item_idx]
    precision = np.einsum("snd,sne->sde", X, X) / noise_var[:, None, None]
    precision[:, np.arange(D), np.arange(D)] += 1.0 / prior_var
    rhs = np.einsum("snd,sn->sd", X, resid) / noise_var[:, None]
    rhs[:, :K] += scales["mu_u"] / prior_var[:, :K]  # a per-side prior mean (else 0)
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


def _py(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value

