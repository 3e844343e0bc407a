r"""Replay bandit on held-out ratings: what exploration buys, round by round.

The offline replay of Li et al. (WSDM 2011), as Kawale et al. (NeurIPS 2015) use it for
Bayesian matrix factorization. Protocol of `replay`:

* **Fit.** A `~bayesmf.FitResult` of any method, fitted on the full training set: the item
  side (factors, biases, :math:`\mu`), the noise sd and the prior sds are learned from
  everyone and stay at the fit's draws (one draw for MAP/ALS/SGD; many for Gibbs, NUTS,
  ADVI). Needs ``likelihood="normal"``, ``link="identity"`` (the closed-form fold-in).
* **Pool.** For each test user, the candidate pool is the user's held-out items, so every
  recommendation gets feedback. Test ratings of items the user also rated in training are
  dropped and counted (``n_test_in_train``). Users with no relevant item in their pool
  (no held-out rating >= ``threshold``) are skipped and counted (``n_users_skipped``):
  every policy, the oracle included, would score zero hits and zero regret on them.
* **Start.** The user's factors and bias get the conditional posterior given the item side,
  per draw, exactly as `bayesmf.fold_in` folds in a new user, from the user's training
  ratings (`bayesmf.replay_policies`); with ``train_ratings_kept=n`` from only their first
  ``n`` training ratings (by ``timestamp`` if given, else a seeded random subset): a
  cold start, where exploration should matter most.
* **Rounds** ``t = 1..rounds``. Each policy shows ONE item of the pool not yet shown to the
  user, observes its held-out rating, counts a hit when the rating is >= ``threshold``,
  and folds the observation into the user's posterior (one conjugate rank-one step per
  draw). Policies run independently, each on its own copy of every user's posterior.
* **Policies.** ``greedy-map`` (MAP fits): the plug-in mean rating. ``greedy-mean``
  (posterior fits): the posterior mean of the mean rating :math:`U_i \cdot V_j + \mu + b_i
  + c_j`. ``lower``: the ``quantile`` (default 5 %) of that mean rating across the draws,
  each draw with one fresh draw of the user's factors from its conditional (an empirical
  quantile over the draws, not mean - z sd). ``thompson``: one posterior draw per user
  per round (a draw of the item side, and the user's factors drawn from their conditional
  given it), the item with the largest mean rating under it. ``random``: uniform over the
  remaining pool (the floor). ``oracle``: the largest remaining held-out rating (the
  ceiling). Exact ties are broken at random. Scores are not clipped to the scale.
* **Short pools.** A user whose pool holds fewer items than ``rounds`` stops when the pool
  runs out: cumulative hits stay as they are, the hit rate is over the rounds the user
  had (:math:`\min(t, \text{pool})`), and regret is unaffected since the oracle runs out
  too (after the last item every policy has shown the whole pool, so its regret is 0).
* **Regret.** The oracle's cumulative hits minus the policy's, :math:`\min(t, R) -
  \text{hits}(t)` with :math:`R` the user's relevant pool items (the oracle shows them
  first); >= 0 for every user and round.

Randomness: every (policy, user) pair has its own stream, derived from ``random_seed``,
the policy's name and the user's index, so a policy's picks do not depend on which other
policies run (``random`` and ``oracle`` pick alike for a MAP and a posterior fit given the
same seed), and the cold-start subsets are shared by all policies.

The policies and the user posterior live in `bayesmf.replay_policies`; the output frames,
`paired_difference` and `plot_regret` in `bayesmf.replay_frames` (re-exported here).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from bayesmf._seed import SeedLike, base_seed
from bayesmf._validate import validate_bool, validate_in_scale, validate_positive_int, validate_prob
from bayesmf.data import RatingsData, UnknownIdError
from bayesmf.predictive.view import model_view
from bayesmf.replay_frames import Replay, frames, paired_difference, plot_regret
from bayesmf.replay_policies import (
    FREE_POLICIES,
    MAP_POLICIES,
    POLICIES,
    POSTERIOR_POLICIES,
    ItemSide,
    UserPosterior,
    item_side,
    play,
)
from bayesmf.split import _timestamps

if TYPE_CHECKING:
    from bayesmf.results import FitResult

__all__ = ["POLICIES", "Replay", "paired_difference", "plot_regret", "replay"]

_SUBSET_STREAM = 0  # spawn key of the cold-start subsets; policies use 1 + their position


def check_policies(policies: Any, result: FitResult) -> list[str]:
    """Return the policies to run (default: those that apply to ``result``) in `POLICIES` order; bad names raise."""
    if policies is None:
        chosen = [*(MAP_POLICIES if result.is_map else POSTERIOR_POLICIES), *FREE_POLICIES]
        return chosen
    names = [policies] if isinstance(policies, str) else list(policies)
    if not names:
        raise ValueError("policies is empty; name at least one of " + ", ".join(POLICIES))
    for name in names:
        if name not in POLICIES:
            raise ValueError(f"policy {name!r} is not known; choose from {', '.join(POLICIES)}")
        if result.is_map and name in POSTERIOR_POLICIES:
            raise ValueError(f"policy {name!r} needs posterior draws; this {result.method!r} fit has one "
                             "(use 'greedy-map', or fit by Gibbs, NUTS or ADVI)")
        if not result.is_map and name in MAP_POLICIES:
            raise ValueError(f"policy {name!r} is for a MAP fit; this {result.method!r} fit has draws "
                             "(use 'greedy-mean', 'lower' or 'thompson')")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"policy {repeated[0]!r} is named twice")
    return sorted(names, key=POLICIES.index)


def _test_rows(train: RatingsData, test: Any, cols: tuple[str, str, str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Test ratings as the fit's (user, item) indices; ids the fit does not know raise."""
    if isinstance(test, pd.DataFrame):
        test = RatingsData.from_dataframe(test, *cols, scale=train.scale, duplicates="raise",
                                          users=train.users, items=train.items)
    elif not isinstance(test, RatingsData):
        raise TypeError(f"test must be a RatingsData or a DataFrame of (user, item, rating), got {type(test).__name__}")
    if test.users.equals(train.users) and test.items.equals(train.items):
        return np.asarray(test.user_idx), np.asarray(test.item_idx), np.asarray(test.rating)
    user_raw, item_raw = test.users.to_raw(test.user_idx), test.items.to_raw(test.item_idx)
    uidx = train.users.to_index(user_raw, unknown="flag")
    iidx = train.items.to_index(item_raw, unknown="flag")
    if (uidx < 0).any() or (iidx < 0).any():
        users = list(dict.fromkeys(user_raw[uidx < 0].tolist()))
        items = list(dict.fromkeys(item_raw[iidx < 0].tolist()))
        raise UnknownIdError(f"test ratings have ids the fit does not know: users {users[:5]!r}, items "
                             f"{items[:5]!r}; replay only users and items of the fit")
    return uidx, iidx, np.asarray(test.rating)


def check_start(kept: Any, timestamp: Any, n_rows: int, name: str) -> tuple[int | None, np.ndarray | None]:
    """Return ``kept`` (>= 0 or None; named ``name``) and ``timestamp`` (one per training row, needs ``kept``), checked."""
    if kept is not None:
        kept = validate_positive_int(name, kept, minimum=0)
    if timestamp is not None:
        if kept is None:
            raise ValueError(f"timestamp= orders the training rows kept; it needs {name}=")
        timestamp = _timestamps(timestamp, n_rows)
    return kept, timestamp


def kept_rows(rows: np.ndarray, n: int | None, time: np.ndarray | None, rng: np.random.Generator) -> np.ndarray:
    """Return the training rows a user starts from: all, or the first ``n`` by time or at random."""
    if n is None or len(rows) <= n:
        return rows
    if time is None:
        return np.sort(rng.choice(rows, size=n, replace=False))
    return rows[np.argsort(time[rows], kind="stable")[:n]]


class OwnRows:
    """The training rows each user starts from: all, or ``kept`` of them (by ``timestamp``, else seeded)."""

    def __init__(self, train: RatingsData, seed: int, kept: int | None, timestamp: np.ndarray | None) -> None:
        self._by_user = np.argsort(train.user_idx, kind="stable")
        self._starts = np.concatenate([[0], np.cumsum(train.user_counts())])
        self._seed, self._kept, self._timestamp = seed, kept, timestamp

    def __call__(self, u: int) -> np.ndarray:
        """Return user ``u``'s rows (the subset drawn from stream ``(_SUBSET_STREAM, u)``, shared by all policies)."""
        rng = np.random.default_rng(np.random.SeedSequence(self._seed, spawn_key=(_SUBSET_STREAM, u)))
        return kept_rows(self._by_user[self._starts[u] : self._starts[u + 1]], self._kept, self._timestamp, rng)


def over_users(n_users: int, desc: str, progressbar: bool) -> Iterable[int]:
    """Return ``range(n_users)``, under a tqdm bar labelled ``desc`` if ``progressbar``."""
    if not progressbar:
        return range(n_users)
    from tqdm.auto import tqdm

    return tqdm(range(n_users), desc=desc, unit="user")  # type: ignore[no-any-return]


def _observe_rating(post: UserPosterior, pos: int, side: ItemSide | None, pool_rating: np.ndarray) -> None:
    """Fold the held-out rating of pool position ``pos`` into ``post``."""
    if side is not None:
        post.observe(side.rows[:, pos], side.offset[:, pos], float(pool_rating[pos]))


def replay(
    result: FitResult,
    test: RatingsData | pd.DataFrame,
    rounds: int = 10,
    threshold: float = 4.0,
    policies: Sequence[str] | None = None,
    random_seed: SeedLike = None,
    *,
    train_ratings_kept: int | None = None,
    timestamp: Any = None,
    quantile: float = 0.05,
    user_col: str = "user",
    item_col: str = "item",
    rating_col: str = "rating",
    progressbar: bool = True,
) -> Replay:
    """Run the replay bandit of the module docstring on held-out ratings.

    Parameters
    ----------
    result : FitResult
        A fit on the training ratings (normal likelihood, identity link; any method).
    test : RatingsData or pandas.DataFrame
        Held-out ratings, sharing the fit's encoders (as `bayesmf.split` makes them), or a
        frame of raw (``user_col``, ``item_col``, ``rating_col``) rows.
    rounds : int
        Recommendations per user, >= 1.
    threshold : float
        A held-out rating at least this is a hit; must lie on the rating scale.
    policies : sequence of str, optional
        Among ``"greedy-map"`` (MAP fits), ``"greedy-mean"``, ``"lower"``, ``"thompson"``
        (posterior fits), ``"random"`` and ``"oracle"``. Default: those that apply to the fit.
    random_seed : int or numpy.random.Generator, optional
        Seeds every policy's draws and tie-breaks and the cold-start subsets.
    train_ratings_kept : int, optional
        Start each test user from only this many (>= 0) of their training ratings (cold
        start); None keeps them all. The fit itself stays the one on the full training set.
    timestamp : array_like, optional
        One time per rating of ``result.train``: with ``train_ratings_kept``, keep each
        user's earliest ratings (else a seeded random subset).
    quantile : float
        Level of the ``"lower"`` policy, in (0, 1).
    user_col, item_col, rating_col : str
        Column names of a frame ``test``.
    progressbar : bool
        Show a tqdm bar over the users.

    Returns
    -------
    Replay
        ``(summary, per_user, shown)``; see `Replay`.

    Raises
    ------
    TypeError, ValueError
        On ``rounds < 1``, a threshold off the scale, an unknown policy or one that does not
        fit the method, a bad option, a model other than normal/identity, or no test user
        with a relevant item (each message names the value).
    bayesmf.data.UnknownIdError
        On test users or items the fit does not know.
    """
    spec, train = result.spec, result.train
    if spec.likelihood != "normal" or spec.link != "identity":
        raise ValueError(f"the replay folds ratings in by the closed-form conditional of likelihood='normal', "
                         f"link='identity'; this model has likelihood={spec.likelihood!r}, link={spec.link!r}")
    rounds = validate_positive_int("rounds", rounds)
    threshold = validate_in_scale("threshold", threshold, train.scale)
    names = check_policies(policies, result)
    quantile = validate_prob(quantile, "quantile")
    progressbar = validate_bool("progressbar", progressbar)
    train_ratings_kept, timestamp = check_start(train_ratings_kept, timestamp, train.n_ratings, "train_ratings_kept")
    seed = base_seed(random_seed)
    uidx, iidx, rating = _test_rows(train, test, (user_col, item_col, rating_col))

    rated = set(zip(train.user_idx.tolist(), train.item_idx.tolist(), strict=True))
    fresh = np.fromiter(((u, i) not in rated for u, i in zip(uidx.tolist(), iidx.tolist(), strict=True)),
                        dtype=bool, count=len(uidx))
    counts = {"n_test_users": len(np.unique(uidx)), "n_test_in_train": int((~fresh).sum())}
    uidx, iidx, rating = uidx[fresh], iidx[fresh], rating[fresh]
    order = np.argsort(uidx, kind="stable")
    users, first = np.unique(uidx[order], return_index=True)
    bounds = np.append(first, len(order))
    pools = [order[bounds[p] : bounds[p + 1]] for p in range(len(users))]
    keep = [p for p, rows in enumerate(pools) if (rating[rows] >= threshold).any()]
    counts["n_users_skipped"] = len(users) - len(keep)
    if not keep:
        raise ValueError(f"no test user has a held-out rating >= threshold={threshold:g} on an item unrated in "
                         "training: nothing to replay; lower the threshold")
    users, pools = users[keep], [pools[p] for p in keep]

    view = model_view(result) if any(n not in FREE_POLICIES for n in names) else None
    own_rows = OwnRows(train, seed, train_ratings_kept, timestamp)
    n_users = len(users)
    shown = np.full((len(names), n_users, rounds), -1, dtype=np.int64)
    n_train = np.zeros(n_users, dtype=np.int64)
    for row in over_users(n_users, f"replay, {rounds} rounds", progressbar):
        u = int(users[row])
        pool_items, pool_rating = iidx[pools[row]], rating[pools[row]]
        own = own_rows(u)
        n_train[row] = len(own)
        start, side = None, None
        if view is not None:
            start = UserPosterior.from_ratings(view, train.item_idx[own], train.rating[own])
            side = item_side(view, pool_items)
        feedback = partial(_observe_rating, side=side, pool_rating=pool_rating)
        shown[:, row] = play(names, seed, u, start, side, pool_rating, rounds, quantile, feedback)
    attrs = {"rounds": rounds, "threshold": threshold, "policies": names, "quantile": quantile,
             "train_ratings_kept": train_ratings_kept, "method": result.method, **counts, "n_users": n_users}
    return frames(train, names, users, pools, iidx, rating, shown, n_train, threshold, attrs)
