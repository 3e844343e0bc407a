r"""Recommend what a user will choose AND like: a choice fit joined to a rating fit.

A choice model (``PMF(likelihood="implicit")``) says which items the user is likely to
pick; a rating model (normal or ordinal) says how much they will like an item once they
have it. For user :math:`i` and item :math:`j`, under posterior draw :math:`s` of the
choice fit and :math:`t` of the rating fit,

.. math::

    J_{ij} = \underbrace{\mathrm{clip}(\eta^{\text{choice}(s)}_{ij}, 0, 1)}_{P(\text{chosen})}
    \times \underbrace{P(r_{ij} \ge \tau \mid \theta^{\text{rating}(t)})}_{P(\text{likes it} \mid \text{chosen})},

the probability that the user chooses the item and rates it at least :math:`\tau`. The
rating part is the rating fit's predictive per draw (normal: :math:`\Phi((m - \tau)/\sigma)`
with :math:`m` the draw's mean rating; ordinal: the mass of the levels :math:`\ge \tau`;
1 when :math:`\tau` is the bottom of the scale). The two posteriors are independent, so
draws are paired: draw :math:`m` of the joint uses choice draw ``pairs[0][m]`` and rating
draw ``pairs[1][m]`` (`pair_draws`: the identity when both fits have as many draws, else
the fit with fewer draws is resampled with replacement, seeded, up to the other's count).

Ranking rules (``rank_by``): ``"mean"`` the posterior mean of :math:`J`; ``"lower"`` its
``(1 - prob) / 2`` quantile (cautious); ``"thompson"`` :math:`J` under one paired draw,
picked at random per user (ties, e.g. items whose P(chosen) is 0 in that draw, broken at
random). `recommend_joint` gives `bayesmf.recommend.recommend`'s tidy frame with the three
quantities' means and intervals; `joint_scores` the score of every (user, item), an array
for `bayesmf.topn.evaluate_scores`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy.special import ndtr

from bayesmf._seed import SeedLike, generator
from bayesmf._validate import (
    validate_bool,
    validate_choice,
    validate_in_scale,
    validate_positive_int,
    validate_prob,
)
from bayesmf.latent import latent_scores_per_draw
from bayesmf.link import ordinal_probs
from bayesmf.predictive.summary import mean_of
from bayesmf.predictive.view import ModelView, model_view
from bayesmf.ranking import top_k_indices

if TYPE_CHECKING:
    from bayesmf.results import FitResult

__all__ = ["JOINT_RANK_BY", "joint_scores", "pair_draws", "recommend_joint"]

JOINT_RANK_BY = ("mean", "lower", "thompson")


def pair_draws(n_choice: int, n_rating: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Return the paired draw indices ``(choice, rating)``, each of length ``max(n_choice, n_rating)``.

    Equal counts: both ``arange``, ``rng`` untouched. Otherwise the fit with more draws keeps
    them in order and the other's are drawn uniformly with replacement from ``rng``.
    """
    if n_choice == n_rating:
        return np.arange(n_choice), np.arange(n_rating)
    n = max(n_choice, n_rating)
    resampled = rng.integers(min(n_choice, n_rating), size=n)
    if n_choice < n_rating:
        return resampled, np.arange(n)
    return np.arange(n), resampled


@dataclass(frozen=True, eq=False)
class _Joint:
    """Both fits read once: views, id alignment (rating indices -> choice indices), pairing."""

    choice: ModelView
    rating: ModelView
    user_map: np.ndarray  # rating user index -> choice user index
    item_map: np.ndarray  # rating item index -> choice item index
    threshold: float
    pairs: tuple[np.ndarray, np.ndarray]

    def parts(self, u: int, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """P(chosen) ``(S_choice, J)`` and P(r >= t) ``(S_rating, J)`` of rating-index user ``u``."""
        eta = _eta(self.choice, int(self.user_map[u]), self.item_map[items])
        return np.clip(eta, 0.0, 1.0), _p_at_least(self.rating, _eta(self.rating, u, items), self.threshold)

    def joint(self, chosen: np.ndarray, likes: np.ndarray) -> np.ndarray:
        """Paired products ``(M, J)``."""
        return chosen[self.pairs[0]] * likes[self.pairs[1]]


def _eta(view: ModelView, u: int, items: np.ndarray) -> np.ndarray:
    a, bias = view.arrays, view.has_bias
    return latent_scores_per_draw(
        a.U, a.V, np.full(len(items), u), items,
        mu=a.mu if bias else None, user_bias=a.user_bias if bias else None, item_bias=a.item_bias if bias else None,
    )


def _p_at_least(view: ModelView, eta: np.ndarray, threshold: float) -> np.ndarray:
    """P(r >= threshold) per (draw, item) of a rating fit, from latent scores ``(S, J)``."""
    if threshold <= view.low:
        return np.ones_like(eta)
    s = np.arange(view.n_samples)
    if view.ordinal:
        assert view.cutpoints is not None and view.levels is not None
        probs = ordinal_probs(eta.T, view.cutpoints[s], view.spec.link)  # (J, S, L)
        return probs[..., view.levels >= threshold - 1e-9].sum(axis=-1).T  # type: ignore[no-any-return]
    assert view.noise is not None
    mean = mean_of(view, eta.T, s).T
    return ndtr((mean - view.threshold_cut(threshold, "predictive")) / view.noise[:, None])  # type: ignore[no-any-return]


def _align(choice: FitResult, rating: FitResult, side: str) -> np.ndarray:
    """Choice-fit index of each rating-fit id of ``side`` ("users" or "items"); error unless the ids match."""
    mine, other = getattr(rating.train, side), getattr(choice.train, side)
    if mine.equals(other):
        return np.arange(len(mine))
    only_r = [v for v in mine.classes.tolist() if v not in other]
    only_c = [v for v in other.classes.tolist() if v not in mine]
    if only_r or only_c:
        raise ValueError(
            f"the choice and rating fits must know the same {side}: {only_r[:5]!r} only in the rating "
            f"fit, {only_c[:5]!r} only in the choice fit; fit both on one set of ids (e.g. "
            "as_implicit(ratings), or interactions_from_dataframe(..., users=ratings.users, items=ratings.items))"
        )
    return other.to_index(mine.classes)


def _prepare(choice: Any, rating: Any, threshold: Any, rng: np.random.Generator) -> _Joint:
    from bayesmf.results import FitResult

    for name, fit in (("choice", choice), ("rating", rating)):
        if not isinstance(fit, FitResult):
            raise TypeError(f"{name} must be a FitResult, got {type(fit).__name__}")
    if choice.spec.likelihood != "implicit":
        raise ValueError(f"choice must be an implicit-feedback fit, got likelihood={choice.spec.likelihood!r}")
    if rating.spec.likelihood == "implicit":
        raise ValueError("rating must be a rating fit (likelihood 'normal' or 'ordinal'), got an implicit one")
    view_c, view_r = model_view(choice), model_view(rating)
    thr = validate_in_scale("threshold", threshold, (view_r.low, view_r.high))
    return _Joint(
        view_c, view_r, _align(choice, rating, "users"), _align(choice, rating, "items"), thr,
        pair_draws(view_c.n_samples, view_r.n_samples, rng),
    )


def _score(joint: np.ndarray, rank_by: str, tail: float, rng: np.random.Generator) -> np.ndarray:
    """Score per item of the paired draws ``(M, J)``; each item's depends on its column only."""
    if rank_by == "mean":
        # summed along a contiguous row per item: the same bits whichever other items are scored
        return np.ascontiguousarray(joint.T).mean(axis=1)  # type: ignore[no-any-return]
    if rank_by == "lower":
        return np.quantile(joint, tail, axis=0)
    return joint[int(rng.integers(joint.shape[0]))]  # type: ignore[no-any-return]


def _summary(name: str, draws: np.ndarray, tail: float) -> dict[str, np.ndarray]:
    lower, upper = np.quantile(draws, [tail, 1.0 - tail], axis=0)
    return {name: draws.mean(axis=0), f"{name}_lower": lower, f"{name}_upper": upper}


def recommend_joint(
    choice: FitResult,
    rating: FitResult,
    user: Any,
    n: int = 10,
    prob: float = 0.9,
    rank_by: str = "mean",
    threshold: float = 4.0,
    exclude_rated: bool = True,
    items: Iterable[Any] | None = None,
    random_seed: SeedLike = None,
) -> pd.DataFrame:
    r"""Top-``n`` items by P(chosen) x P(rating >= threshold | chosen), with intervals.

    Parameters
    ----------
    choice : FitResult
        An implicit-feedback fit (``PMF(likelihood="implicit")``).
    rating : FitResult
        A rating fit (normal or ordinal likelihood) on the same users and items (the same
        encoders, or the same raw ids in any order).
    user : raw id or list of raw ids
        The user(s); each must be known to both fits.
    n : int
        Items per user (fewer if fewer candidates).
    prob : float
        Probability of the intervals (equal-tailed), in (0, 1); ``"lower"`` ranks by the
        lower end of the joint's.
    rank_by : {"mean", "lower", "thompson"}
        Ranking rule (module docstring).
    threshold : float
        Rating :math:`\tau` of :math:`P(r \ge \tau)`, on the rating fit's scale (default 4.0:
        "likes it" on 1-5 stars); on ratings typed in steps, of the rating as typed
        (`bayesmf.predict.predict`).
    exclude_rated : bool
        Leave out the items the user chose (choice fit's data) or rated (rating fit's data).
    items : iterable of raw ids, optional
        Candidate items (default: every item).
    random_seed : int or numpy.random.Generator, optional
        Seeds the pairing of draws and the Thompson draws; the same int gives the same frame.

    Returns
    -------
    pandas.DataFrame
        ``n`` rows per user: ``user``, ``rank``, ``item``, ``mean``, ``lower``, ``upper``
        (the joint probability), ``p_chosen``, ``p_chosen_lower``, ``p_chosen_upper``
        (P(chosen), over the choice fit's draws), ``p_at_least``, ``p_at_least_lower``,
        ``p_at_least_upper`` (P(r >= threshold), over the rating fit's draws), ``score``.

    Raises
    ------
    TypeError
        A fit that is not a `FitResult`.
    ValueError
        Fits of the wrong kinds, fits on different ids (named), a threshold off the rating
        scale, a bad ``n``/``prob``/``rank_by``, or a user with no candidate left.
    bayesmf.data.UnknownIdError
        A user or candidate item the fits do not know (named).
    """
    n = validate_positive_int("n", n)
    tail = (1.0 - validate_prob(prob)) / 2.0
    validate_choice("rank_by", rank_by, JOINT_RANK_BY)
    rng = generator(random_seed)
    joint = _prepare(choice, rating, threshold, rng)
    train_r, train_c = rating.train, choice.train
    cand_all = np.arange(train_r.n_items) if items is None else np.unique(train_r.items.to_index(list(items)))
    users = [user] if np.isscalar(user) or isinstance(user, str) else list(user)
    frames = []
    for raw in users:
        u = int(train_r.users.to_index([raw])[0])
        cand = cand_all
        if exclude_rated:
            chosen_c = train_c.item_idx[train_c.user_idx == joint.user_map[u]]  # choice-fit indices
            seen = np.union1d(train_r.item_idx[train_r.user_idx == u], np.argsort(joint.item_map)[chosen_c])
            cand = cand[~np.isin(cand, seen)]
        if len(cand) == 0:
            raise ValueError(f"no candidate items left for user {raw!r} (all chosen or rated?)")
        chosen, likes = joint.parts(u, cand)
        paired = joint.joint(chosen, likes)
        score = _score(paired, rank_by, tail, rng)
        top = top_k_indices(score, n, rng if rank_by == "thompson" else None)
        columns: dict[str, Any] = {"user": [raw] * len(top), "rank": np.arange(1, len(top) + 1)}
        columns["item"] = train_r.items.to_raw(cand[top])
        columns |= _summary("mean", paired[:, top], tail)
        columns["lower"], columns["upper"] = columns.pop("mean_lower"), columns.pop("mean_upper")
        columns |= _summary("p_chosen", chosen[:, top], tail) | _summary("p_at_least", likes[:, top], tail)
        columns["score"] = score[top]
        frames.append(pd.DataFrame(columns))
    out = pd.concat(frames, ignore_index=True)
    out.attrs.update(prob=prob, threshold=joint.threshold, rank_by=rank_by, method=(choice.method, rating.method))
    return out


def _mean_choice_score(view: ModelView) -> np.ndarray:
    r"""Posterior mean of the choice score :math:`\eta_{ij}` less the user's offsets, ``(n_users, n_items)``.

    :math:`\bar c_j + \frac1S \sum_s U^{(s)}_i \cdot V^{(s)}_j` (unclipped; :math:`\mu + b_i`
    left out, as it does not reorder a user's items): one matrix product per draw.
    """
    a = view.arrays
    total = np.zeros((a.U.shape[1], a.V.shape[1]))
    for s in range(view.n_samples):
        total += np.asarray(a.U[s], dtype=np.float64) @ np.asarray(a.V[s], dtype=np.float64).T
    total /= view.n_samples
    if view.has_bias and a.item_bias is not None:
        total += a.item_bias.mean(axis=0, dtype=np.float64)[None, :]
    return total


def _candidates(
    choice: FitResult, rating: FitResult, joint: _Joint, exclude_rated: bool, top_m: int | None
) -> list[np.ndarray]:
    """Rating-fit item indices to score per rating-fit user (sorted), after the exclusions and the screen."""
    n_users, n_items = rating.train.n_users, rating.train.n_items
    allowed = np.ones((n_users, n_items), dtype=bool)
    if exclude_rated:
        allowed[rating.train.user_idx, rating.train.item_idx] = False
        to_rating_user, to_rating_item = np.argsort(joint.user_map), np.argsort(joint.item_map)
        allowed[to_rating_user[choice.train.user_idx], to_rating_item[choice.train.item_idx]] = False
    if top_m is None:
        return [np.flatnonzero(row) for row in allowed]
    screen = _mean_choice_score(joint.choice)[np.ix_(joint.user_map, joint.item_map)]  # rating indices
    out = []
    for u in range(n_users):
        cand = np.flatnonzero(allowed[u])
        out.append(np.sort(cand[top_k_indices(screen[u, cand], top_m)]))
    return out


def joint_scores(
    choice: FitResult,
    rating: FitResult,
    threshold: float = 4.0,
    rank_by: str = "mean",
    prob: float = 0.9,
    random_seed: SeedLike = None,
    *,
    exclude_rated: bool = False,
    top_m: int | None = None,
) -> np.ndarray:
    r"""Joint score of (user, item) pairs, indexed by the RATING fit's encoders.

    Pass it with ``rating.train`` to `bayesmf.topn.evaluate_scores` (``scores=``,
    ``train=rating.train``). By default every pair is scored, chosen or rated ones too
    (the evaluation decides the candidates). The cost is that of the scored pairs, each
    under every paired draw: ``exclude_rated`` and ``top_m`` score fewer. A scored pair's
    score does not depend on which other pairs are scored (the same bits); a pair not
    scored holds ``-inf`` (ranked last).

    Parameters
    ----------
    choice, rating, threshold, rank_by, prob, random_seed
        As in `recommend_joint` (one Thompson draw per user, users in index order, the
        same draw whichever pairs are scored).
    exclude_rated : bool
        Leave out the pairs the user chose (choice fit's data) or rated (rating fit's
        data), as `recommend_joint` does.
    top_m : int, optional
        Score only each user's ``top_m`` items (of those left) by the choice fit's
        posterior mean score :math:`E[\eta_{ij}]` (unclipped; one matrix product per
        draw; ties in index order). None: all of them.

    Returns
    -------
    numpy.ndarray
        float64 ``(rating.train.n_users, rating.train.n_items)``; ``-inf`` where not scored.

    Raises
    ------
    TypeError, ValueError
        As `recommend_joint`; also a ``top_m`` below 1.
    """
    tail = (1.0 - validate_prob(prob)) / 2.0
    validate_choice("rank_by", rank_by, JOINT_RANK_BY)
    exclude_rated = validate_bool("exclude_rated", exclude_rated)
    if top_m is not None:
        top_m = validate_positive_int("top_m", top_m)
    rng = generator(random_seed)
    joint = _prepare(choice, rating, threshold, rng)
    out = np.full((rating.train.n_users, rating.train.n_items), -np.inf)
    for u, cand in enumerate(_candidates(choice, rating, joint, exclude_rated, top_m)):
        if rank_by == "thompson" and len(cand) == 0:
            rng.integers(len(joint.pairs[0]))  # the user's draw is taken all the same: later users keep theirs
            continue
        out[u, cand] = _score(joint.joint(*joint.parts(u, cand)), rank_by, tail, rng)
    return out
