r"""Replay bandit on held-out choices: exploration with an implicit-feedback (choice) fit.

The rating replay (`bayesmf.replay`) adapted to ``PMF(likelihood="implicit")``. Protocol of
`replay_choice`:

* **Fit.** A choice fit of any method on the training choices; its item side (factors,
  biases, :math:`\mu`), noise sd and prior sds stay at the fit's draws.
* **Pool.** For each test user: the held-out items (test pairs the user did not choose in
  training; those chosen in training are dropped and counted, ``n_test_in_train``) plus
  ``n_negatives`` items drawn uniformly without replacement (seeded per user) from the
  items the user neither chose in training nor holds out (all of them when fewer; such
  users are counted, ``n_users_short_of_negatives``).
* **Reward.** ``reward="chosen"``: a shown held-out item is a hit (the user chose it);
  ``"liked"``: a shown held-out item whose held-out rating is >= ``threshold``. Users
  with no relevant pool item are skipped and counted (``n_users_skipped``).
* **Start.** Per draw, the user's factors and bias :math:`x = (U_i, b_i)` get the implicit
  model's conditional given the item side: every item is a pair with preference
  :math:`y = 0` and weight :math:`w = 1`, except the user's training choices (``y = 1``,
  ``w = c``, their confidences, `bayesmf.confidence.confidence_weights`), so
  :math:`\Lambda = D^{-1} + \sum_j w_j x_j x_j^T / \sigma^2` over ALL items: the Gibbs
  sampler's row conditional. The sum over all items is formed once per replay; each
  user adds :math:`(c - 1) x_j x_j^T` for their choices. ``train_choices_kept=n``
  starts from the first ``n`` (by ``timestamp``, else a seeded subset); the others are
  then unobserved pairs (``y = 0``, ``w = 1``) and never drawn as negatives.
* **Rounds.** Each policy shows ONE pool item not yet shown and folds what the user did
  into its copy of the posterior: a held-out item becomes a choice, :math:`(y, w) = (1,
  c)` with :math:`c` the confidence of its value (``value="one"``: 1, ``"rating"``: its
  held-out rating); an item not chosen becomes :math:`(0, w_-)` with :math:`w_-` =
  ``negative_confidence`` (default 1: unchanged, as the model already treats every
  unchosen pair; the data cannot tell "shown and passed over" from "never seen", and a
  larger weight states how much more a refusal should count). Each is one exact
  rank-one change of the conditional, :math:`\Lambda \mathrel{+}= (w - w_0) x_j x_j^T /
  \sigma^2` with the right-hand side's :math:`w y - w_0 y_0` term
  (`bayesmf.replay_policies.UserPosterior.add_term`).
* **Policies** (`bayesmf.replay_policies.choose`) rank by the choice score :math:`\eta_{ij}
  = \mu + b_i + c_j + U_i \cdot V_j` (unclipped; P(chosen) = clip(:math:`\eta`, 0, 1)):
  ``greedy-map`` (MAP fits) and ``greedy-mean`` (posterior mean of :math:`\eta`),
  ``lower`` (its ``quantile`` across the draws, one fresh draw of :math:`x` each),
  ``thompson`` (one draw per round), ``random`` (the floor), ``oracle`` (relevant items
  first: the ceiling). Exact ties are broken at random.
* **Short pools, regret, randomness** as in `bayesmf.replay`; the negatives of a user are
  drawn from their own stream (spawn key ``(len(POLICIES) + 1, user)`` of the seed), so
  every policy and every fit sees the same pools for a seed.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from bayesmf._seed import SeedLike, base_seed
from bayesmf._validate import (
    validate_bool,
    validate_choice,
    validate_in_scale,
    validate_positive_int,
    validate_prob,
)
from bayesmf.confidence import confidence_weights
from bayesmf.data import RatingsData
from bayesmf.predictive.view import ModelView, model_view
from bayesmf.replay import OwnRows, check_policies, check_start, over_users
from bayesmf.replay_frames import Replay, frames
from bayesmf.replay_policies import (
    FREE_POLICIES,
    POLICIES,
    ItemSide,
    UserPosterior,
    design_sums,
    item_side,
    play,
)
from bayesmf.topn_protocol import encode_test, test_scale

if TYPE_CHECKING:
    from bayesmf.results import FitResult

__all__ = ["REWARDS", "choice_start", "fold_choice", "replay_choice"]

#: what counts as a hit
REWARDS = ("chosen", "liked")
_NEGATIVE_STREAM = len(POLICIES) + 1  # spawn key of each user's sampled negatives


def choice_start(
    view: ModelView, base: tuple[np.ndarray, np.ndarray], items: np.ndarray, confidence: np.ndarray
) -> UserPosterior:
    """One user's conditional posterior per draw given their choices ``items`` with confidences ``confidence``.

    ``base`` is `design_sums` over every item with weight 1 and preference 0 (the pairs
    not chosen), formed once per fit; each choice adds weight ``c - 1`` and ``c`` to the
    weighted preferences (module docstring).
    """
    gram, rhs = design_sums(view, items, confidence - 1.0, confidence)
    return UserPosterior.from_sums(view, base[0] + gram, base[1] + rhs)


def fold_choice(post: UserPosterior, side: ItemSide, pos: int, chosen: bool, weight: float) -> None:
    """Turn the unobserved pair of pool position ``pos`` into ``(y, w) = (chosen, weight)`` in ``post``."""
    if weight != 1.0 or chosen:
        post.add_term(side.rows[:, pos], side.offset[:, pos], weight - 1.0, weight * float(chosen))


def _fold(post: UserPosterior, pos: int, side: ItemSide | None, held: np.ndarray, weight: np.ndarray) -> None:
    if side is not None:
        fold_choice(post, side, pos, bool(held[pos]), float(weight[pos]))


def _pools(
    train: RatingsData, uidx: np.ndarray, iidx: np.ndarray, n_negatives: int, seed: int
) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray], int]:
    """Test users, each one's held-out test rows, sampled negative items, and how many were short of them."""
    order = np.argsort(uidx, kind="stable")
    users, first = np.unique(uidx[order], return_index=True)
    bounds = np.append(first, len(order))
    chosen = np.zeros(train.n_items, dtype=bool)
    held_rows, negatives, short = [], [], 0
    for p, u in enumerate(users.tolist()):
        rows = order[bounds[p] : bounds[p + 1]]
        chosen[:] = False
        chosen[train.item_idx[train.user_idx == u]] = True
        chosen[iidx[rows]] = True
        free = np.flatnonzero(~chosen)
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_NEGATIVE_STREAM, u)))
        short += len(free) < n_negatives
        negatives.append(np.sort(rng.choice(free, size=min(n_negatives, len(free)), replace=False)))
        held_rows.append(rows)
    return users, held_rows, negatives, short


def replay_choice(
    result: FitResult,
    test: RatingsData | pd.DataFrame,
    rounds: int = 10,
    reward: Literal["chosen", "liked"] = "chosen",
    threshold: float = 4.0,
    n_negatives: int = 100,
    policies: Sequence[str] | None = None,
    random_seed: SeedLike = None,
    *,
    value: Literal["one", "rating"] = "one",
    negative_confidence: float = 1.0,
    train_choices_kept: int | None = None,
    timestamp: Any = None,
    quantile: float = 0.05,
    progressbar: bool = True,
) -> Replay:
    """Run the choice replay bandit of the module docstring on held-out choices.

    Parameters
    ----------
    result : FitResult
        A fit of ``PMF(likelihood="implicit")`` on the training choices (any method).
    test : RatingsData or pandas.DataFrame
        Held-out pairs sharing the fit's ids: a `RatingsData` (e.g. the test part of
        `bayesmf.split` of the ratings the choices came from, or held-out interactions),
        or a frame of raw ids with columns ``user``, ``item``, ``rating``.
    rounds : int
        Items shown per user, >= 1.
    reward : {"chosen", "liked"}
        A hit is a held-out item shown, or one whose held-out rating is >= ``threshold``.
    threshold : float
        Rating of ``reward="liked"``, on the test ratings' scale (unused for ``"chosen"``).
    n_negatives : int
        Items the user did not choose added to each pool (>= 0).
    policies : sequence of str, optional
        As in `bayesmf.replay.replay`; default: those that apply to the fit.
    random_seed : int or numpy.random.Generator, optional
        Seeds the negatives, every policy's draws and tie-breaks and the cold-start subsets.
    value : {"one", "rating"}
        Value of a held-out choice, which sets its confidence (as `bayesmf.as_implicit`).
    negative_confidence : float
        Weight of a pair shown and not chosen, >= 1 (1: as unobserved).
    train_choices_kept : int, optional
        Start each user from only this many (>= 0) training choices (cold start).
    timestamp : array_like, optional
        One time per row of ``result.train``: keep each user's earliest choices.
    quantile : float
        Level of the ``"lower"`` policy, in (0, 1).
    progressbar : bool
        Show a tqdm bar over the users.

    Returns
    -------
    Replay
        As `bayesmf.replay.replay`'s, with ``shown`` holding ``chosen`` (a held-out item)
        and ``rating`` (its held-out rating or value; NaN for a negative) per item shown,
        and the protocol in ``attrs`` (``reward``, ``n_negatives``, ``value``,
        ``negative_confidence``, ``n_users_short_of_negatives``, ...).

    Raises
    ------
    TypeError, ValueError
        A fit that is not implicit feedback, a bad option (named), a threshold off the test
        scale, or no test user with a relevant pool item.
    bayesmf.data.UnknownIdError
        Test users or items the fit does not know.
    """
    spec, train = result.spec, result.train
    if spec.likelihood != "implicit":
        raise ValueError(f"replay_choice replays a choice fit (likelihood='implicit'); this one has "
                         f"likelihood={spec.likelihood!r} (use bayesmf.replay.replay for ratings)")
    rounds = validate_positive_int("rounds", rounds)
    validate_choice("reward", reward, REWARDS)
    validate_choice("value", value, ("one", "rating"))
    n_negatives = validate_positive_int("n_negatives", n_negatives, minimum=0)
    names = check_policies(policies, result)
    quantile = validate_prob(quantile, "quantile")
    progressbar = validate_bool("progressbar", progressbar)
    neg_w = negative_confidence
    if isinstance(neg_w, bool) or not isinstance(neg_w, (int, float, np.integer, np.floating)) or not neg_w >= 1.0:
        raise ValueError(f"negative_confidence must be a number >= 1 (1: a pair passed over counts as unobserved), "
                         f"got {negative_confidence!r}")
    kept, timestamp = check_start(train_choices_kept, timestamp, train.n_ratings, "train_choices_kept")
    seed = base_seed(random_seed)
    scale = test_scale(train, test)
    uidx, iidx, rating, _ = encode_test(train, test, "raise", scale)
    thr = validate_in_scale("threshold", threshold, scale) if reward == "liked" else None

    fresh = ~np.isin(uidx * train.n_items + iidx, train.user_idx.astype(np.int64) * train.n_items + train.item_idx)
    counts = {"n_test_users": len(np.unique(uidx)), "n_test_in_train": int((~fresh).sum())}
    uidx, iidx, rating = uidx[fresh], iidx[fresh], rating[fresh]
    test_users, held_rows, negatives, short = _pools(train, uidx, iidx, n_negatives, seed)
    counts["n_users_short_of_negatives"] = short
    # the pools, concatenated: held-out items then negatives, per user
    pool_items, pool_held, pool_rating, pools, users = [], [], [], [], []
    n = 0
    for u, rows, neg in zip(test_users.tolist(), held_rows, negatives, strict=True):
        relevant = rating[rows] >= thr if thr is not None else np.ones(len(rows), dtype=bool)
        if not relevant.any():
            continue
        size = len(rows) + len(neg)
        users.append(u)
        pools.append(np.arange(n, n + size))
        pool_items.append(np.concatenate([iidx[rows], neg]))
        pool_held.append(np.arange(size) < len(rows))
        pool_rating.append(np.concatenate([rating[rows], np.full(len(neg), np.nan)]))
        n += size
    counts["n_users_skipped"] = len(test_users) - len(users)
    if not users:
        what = "held-out pair" if thr is None else f"held-out rating >= threshold={thr:g}"
        raise ValueError(f"no test user has a {what} on an item not chosen in training: nothing to replay")
    items_all, held_all, rating_all = np.concatenate(pool_items), np.concatenate(pool_held), np.concatenate(pool_rating)
    relevance = (held_all & (rating_all >= thr if thr is not None else True)).astype(np.float64)
    value_all = np.where(held_all, 1.0 if value == "one" else np.nan_to_num(rating_all, nan=1.0), 1.0)
    weight_all = np.where(held_all, confidence_weights(spec, value_all), float(neg_w))

    view = model_view(result) if any(name not in FREE_POLICIES for name in names) else None
    base = None if view is None else design_sums(view, np.arange(train.n_items), np.ones(train.n_items),
                                                  np.zeros(train.n_items))
    own_rows = OwnRows(train, seed, kept, timestamp)
    n_users = len(users)
    shown = np.full((len(names), n_users, rounds), -1, dtype=np.int64)
    n_train = np.zeros(n_users, dtype=np.int64)
    for row in over_users(n_users, f"choice replay, {rounds} rounds", progressbar):
        u, pool = users[row], pools[row]
        own = own_rows(u)
        n_train[row] = len(own)
        start = side = None
        if view is not None and base is not None:
            start = choice_start(view, base, train.item_idx[own], confidence_weights(spec, train.rating[own]))
            side = item_side(view, items_all[pool])
        feedback = partial(_fold, side=side, held=held_all[pool], weight=weight_all[pool])
        shown[:, row] = play(names, seed, u, start, side, relevance[pool], rounds, quantile, feedback)
    attrs = {"rounds": rounds, "reward": reward, "threshold": thr, "n_negatives": n_negatives, "value": value,
             "negative_confidence": float(neg_w), "policies": names, "quantile": quantile,
             "train_choices_kept": kept, "method": result.method, **counts, "n_users": n_users}
    out = frames(train, names, np.asarray(users), pools, items_all, relevance, shown, n_train, 1.0, attrs)
    p_idx, u_idx, t_idx = np.nonzero(shown >= 0)  # the order of frames' shown rows
    at = np.array([pools[u][shown[p, u, k]] for p, u, k in zip(p_idx, u_idx, t_idx, strict=True)], dtype=np.int64)
    table = out.shown.drop(columns="rating")
    table.insert(4, "chosen", held_all[at])
    table.insert(5, "rating", rating_all[at])
    table.attrs.update(out.shown.attrs)
    return Replay(out.summary, out.per_user, table)
