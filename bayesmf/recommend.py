r"""Ranking items under uncertainty: the top ``n`` items per user, with intervals.

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
               (seeded), not clipped to the scale: Thompson sampling, which picks each
               item as the best with its posterior probability of being best
=============  ===========================================================================

Implicit feedback: the same rules on P(chosen) = :math:`\mathrm{clip}(\eta, 0, 1)`
(``kind="expected"``; `bayesmf.predict`); ``"lower"``/``"thompson"`` use the unclipped
:math:`\eta` (same order, no ties at 0); ``"prob"``: :math:`P(\mathrm{P(chosen)} \ge t)`.

Binary feedback (``PMF(likelihood="bernoulli")``, ``kind="expected"`` by default): the
rules act on P(like) = :math:`P(y = 1) = \Phi(\eta)`, so ``"mean"`` ranks by P(like)
itself (the posterior mean of :math:`\Phi(\eta)`, which is also the predictive
:math:`P(y = 1)`) and ``"prob"`` by :math:`P(\mathrm{P(like)} \ge t)`, the posterior
probability that the user more likely likes the item than not at the default
:math:`t = 0.5`. With ``kind="predictive"`` the response is 0 or 1: ``"prob"``'s
:math:`P(y \ge t)` is :math:`P(y = 1)` for every :math:`t` in (0, 1] (the ``"mean"``
ranking) and 1 at :math:`t = 0`, and ``"lower"`` is 0 or 1.

Ties: a score that takes few values (a fraction of the draws, a discrete level, a bound
clipped to the scale, a saturated link) ties many items. Every rule breaks exact ties by
the posterior mean (the reported ``mean``; larger first), then by the item (the model's
item index, which follows the raw ids' order; new items after the known ones, in the
order given), so a tie never depends on how the candidates were listed and a fit read
from a zarr store gives the lists of the same fit in memory. The Thompson score is an
ordering device: it is not clipped (clipping would tie every item whose draw passes the
top of the scale); items tied under the drawn draw (a saturated logistic link) go to the
larger posterior mean, and ties left after it (identical items) are broken at random by
the same seeded generator, never by item order. The reported
``mean``/``lower``/``upper`` columns are the usual summaries whatever the rule; the
scores and their tie-break are `bayesmf.rank_scores`.

`bayesmf.fold_in.fold_in` (re-exported here) adds users who were not in the training data
without refitting.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from bayesmf._seed import SeedLike, base_seed, generator
from bayesmf._validate import validate_bool, validate_choice, validate_positive_int
from bayesmf.fold_in import fold_in
from bayesmf.options import AUTO, PredictOptions, resolve_options
from bayesmf.predictive.lazy import localize
from bayesmf.predictive.pairs import Pairs, resolve_pairs
from bayesmf.predictive.summary import Summary, summarize
from bayesmf.predictive.view import model_view
from bayesmf.rank_scores import item_order, rule_scores
from bayesmf.ranking import top_k_tiebroken

if TYPE_CHECKING:
    from bayesmf.results import FitResult

__all__ = ["RANK_BY", "fold_in", "rank_items", "recommend"]

RANK_BY = ("mean", "lower", "prob", "thompson")


def _prob_needs(implicit: bool, binary: bool) -> str:
    """Return what ``rank_by="prob"`` lacks without a threshold, in the model's own terms."""
    if implicit:
        return "kind='expected' and a threshold t in [0, 1] (P(P(chosen) >= t))"
    if binary:
        return (
            "a threshold t in [0, 1] on a binary fit: with kind='expected' it ranks by "
            "P(P(y = 1) >= t) (default t = 0.5); with kind='predictive', P(y >= t) is P(y = 1) "
            "(P(like)) for any t in (0, 1], which rank_by='mean' already ranks by"
        )
    return "a threshold (e.g. threshold=4.0)"


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


def _seeds(random_seed: SeedLike) -> tuple[int, np.random.Generator]:
    """Return the base seed of the per-pair draws (as in `predict`) and the stream of the Thompson draw.

    The base seed is `bayesmf._seed.base_seed` of ``random_seed``, exactly as `predict`
    takes it, so one int gives a pair the same draws in both. The Thompson draw comes from
    ``generator(random_seed)`` after one 63-bit number (the base seed of a Generator).
    """
    rng = generator(random_seed)
    drawn = base_seed(rng)
    return (drawn if random_seed is None or isinstance(random_seed, np.random.Generator) else int(random_seed)), rng


def recommend(
    result: FitResult,
    user: Any,
    n: int = 10,
    prob: float = 0.9,
    rank_by: str = "mean",
    threshold: float | str | None = "auto",
    exclude_rated: bool = True,
    items: Iterable[Any] | None = None,
    random_seed: SeedLike = None,
    *,
    kind: str = "auto",
    interval: str = "eti",
    clip: bool = True,
    unknown: str = "prior",
    chunk_size: int | None = None,
    options: PredictOptions | None = None,
) -> pd.DataFrame:
    r"""Top-``n`` items for one or several users, with intervals.

    Parameters
    ----------
    result : FitResult
        The fitted model.
    user : raw id or list of raw ids
        The user(s). An id the model does not know gets the prior predictive (popular, well-liked
        items first; with user features, its feature prior) with ``unknown="prior"``, a `KeyError` with "raise".
    n : int
        Items per user (fewer if fewer candidates).
    prob : float
        Interval probability, in (0, 1).
    rank_by : {"mean", "lower", "prob", "thompson"}
        Ranking rule (module docstring). ``"prob"`` needs a ``threshold``. Exact ties go
        to the larger posterior mean, then to the item first in the model's order.
    threshold : float, "auto" or None
        Rating for ``p_at_least`` = :math:`P(r \ge \text{threshold})`; must lie on the rating
        scale (on ratings typed in steps, of the rating as typed: `bayesmf.predict.predict`);
        None drops the column. ``"auto"`` (default): 4.0 for a rating model (on a 1-5
        star scale, "likes it"); for implicit feedback 0.5, the column then being
        :math:`P(\mathrm{P(chosen)} \ge 0.5)` (none with ``kind="predictive"``). Unlike
        `bayesmf.predict.predict` (default None), a recommendation list shows this
        probability by default, as ``rank_by="prob"`` ranks by it; on another rating scale
        pass a threshold on it (or None).
    exclude_rated : bool
        Leave out items the user rated in ``result.train``.
    items : iterable of raw ids, optional
        Candidate items (default: every item the model knows).
    random_seed : int or numpy.random.Generator, optional
        Seeds the Thompson draw, prior draws of unknown users and predictive HDIs. The same
        int gives a (user, item) pair the same draws, hence the same numbers, as in
        `bayesmf.predict.predict`.
    kind : {"auto", "predictive", "expected"}
        What the intervals and scores describe: the rating the user would give, or the
        mean rating (epistemic only); see `bayesmf.predict.predict`. ``"auto"``:
        ``"predictive"`` for ratings, ``"expected"`` (P(chosen)) for implicit feedback.
    interval : {"eti", "hdi"}
        Interval type.
    clip : bool
        Censor predictive draws to the rating scale (the reported summaries; the Thompson
        score is never clipped).
    unknown : {"prior", "raise"}
        Policy for ids the model does not know.
    chunk_size : int, optional
        Items per chunk when scoring.
    options : PredictOptions, optional
        ``prob``, ``threshold``, ``random_seed``, ``kind``, ``interval``, ``clip``,
        ``unknown`` and ``chunk_size`` as one object (the keywords must then be left at
        their defaults; its threshold, default None, replaces the 4.0 above).

    Returns
    -------
    pandas.DataFrame
        Long format, ``n`` rows per user: ``user``, ``rank`` (1 = best), ``item``, ``mean``,
        ``sd``, ``median``, ``lower``, ``upper``, ``p_at_least`` (with a threshold),
        ``score`` (the ranking score; for ``"thompson"`` the unclipped mean rating of the
        drawn posterior draw), ``new_user``, ``new_item``.

    Notes
    -----
    Every candidate is scored with only what the rule needs (the mean, one quantile, one
    tail probability or one draw); the full summaries are then computed for the top ``n``
    only. Both stages use the same per-pair seeds, so a ``"lower"`` score equals the
    reported ``lower``.
    """
    opts = resolve_options(
        recommend, options, prob=prob, threshold=threshold, random_seed=random_seed, kind=kind,
        interval=interval, clip=clip, unknown=unknown, chunk_size=chunk_size,
    ).for_model(result.spec)
    exclude_rated = validate_bool("exclude_rated", exclude_rated)
    ranker = _Ranker(result, opts, n, rank_by)
    users = _as_user_list(user)
    frames = []
    for raw_user in users:
        ranked = ranker.top(_candidates(result, raw_user, items, exclude_rated))
        if ranked is not None:
            frames.append(_top_frame(*ranked, opts, ranker.thr))
    if not frames:
        raise ValueError(f"no candidate items left for user(s) {users[:5]!r} (all rated?)")
    out = pd.concat(frames, ignore_index=True)
    out.attrs.update(
        prob=opts.prob, kind=opts.kind, interval=opts.interval, threshold=opts.threshold, rank_by=rank_by,
        method=result.method,
    )
    return out


class _Ranker:
    """The validated state of one ranking call: rule, options, model view and seeds."""

    def __init__(self, result: FitResult, opts: PredictOptions, n: int, rank_by: str) -> None:
        self.n = validate_positive_int("n", n)
        self.rank_by = validate_choice("rank_by", rank_by, RANK_BY)
        opts = opts.for_model(result.spec)
        self.result, self.opts = result, opts
        self.view = model_view(result, lazy=True)
        self.thr = self.view.threshold_cut(opts.threshold_on(self.view.low, self.view.high), opts.kind)
        if rank_by == "prob" and math.isnan(self.thr):
            raise ValueError(f"rank_by='prob' needs {_prob_needs(self.view.implicit, self.view.binary)}")
        self.base, self.rng = _seeds(opts.random_seed)

    def top(self, cand: pd.DataFrame) -> tuple[Callable[..., Summary], Pairs, np.ndarray] | None:
        """Score the candidate pairs (``user``, ``item`` raw ids); None when there are none.

        Returns the pairs' summary function, the top ``n`` pairs (best first) and their scores.
        """
        opts, base = self.opts, self.base
        pairs = resolve_pairs(self.result, cand, unknown=opts.unknown, rating_col=None)
        if len(pairs) == 0:
            return None
        key = item_order(pairs, self.result.train.n_items)
        # a posterior on disk: the draws of these pairs read once for every stage when they fit
        view, pairs = localize(self.view, pairs)

        def summary(
            qs: np.ndarray, thr_: float, hdi_: float, pairs: Pairs = pairs, clip_: bool = opts.clip
        ) -> Summary:
            return summarize(
                view, pairs, kind=opts.kind, qs=qs, threshold=thr_, clip=clip_, hdi_prob=hdi_,
                chunk_size=opts.chunk_size, base=base,
            )

        rng = self.rng
        score, tie_mean = rule_scores(summary, self.rank_by, opts, view, pairs, self.n, self.thr, rng, base)
        top = top_k_tiebroken(score, self.n, tie_mean, key, rng if self.rank_by == "thompson" else None)
        return summary, pairs.subset(top), score[top]


def rank_items(
    result: FitResult,
    candidates: Iterable[tuple[Any, Any]],
    n: int,
    rank_by: str = "mean",
    options: PredictOptions | None = None,
) -> Iterator[tuple[Any, np.ndarray, np.ndarray]]:
    """Top ``n`` of each user's own candidate items, by the rules of `recommend`.

    The ranking core of `recommend` without its summary columns, for evaluations whose
    candidate sets differ by user (`bayesmf.topn`). One model view and one seed stream
    serve every user, as in one `recommend` call.

    Parameters
    ----------
    result : FitResult
        The fitted model.
    candidates : iterable of (raw user id, array_like of raw item ids)
        Each user with the items to rank (each item once).
    n : int
        Items kept per user.
    rank_by : {"mean", "lower", "prob", "thompson"}
        Ranking rule (module docstring).
    options : PredictOptions, optional
        Prediction options (``threshold`` is the one of ``"prob"``; default
        ``PredictOptions(kind="auto")``).

    Yields
    ------
    tuple
        ``(user, items, scores)``: the raw user id, the raw ids of its top ``n`` candidates
        (best first) and their scores; a user with no candidate yields empty arrays.
    """
    ranker = _Ranker(result, options if options is not None else PredictOptions(kind=AUTO), n, rank_by)
    for user, items in candidates:
        raw = np.asarray(items.tolist() if hasattr(items, "tolist") else list(items), dtype=object)
        cand = pd.DataFrame({"user": np.full(len(raw), user, dtype=object), "item": raw})
        ranked = ranker.top(cand)
        if ranked is None:
            yield user, raw[:0], np.empty(0)
        else:
            yield user, ranked[1].item, ranked[2]


def _top_frame(
    summary: Callable[..., Summary], top: Pairs, score: np.ndarray, opts: PredictOptions, thr: float
) -> pd.DataFrame:
    """Return the rows of the top pairs: full summaries (same per-pair seeds as the scores)."""
    full = summary(opts.quantile_levels, thr, opts.hdi_prob, top)
    if full.hdi is not None:
        lower, upper = full.hdi[:, 0], full.hdi[:, 1]
    else:
        lower, upper = full.quantiles[:, 1], full.quantiles[:, 2]
    columns: dict[str, Any] = {
        "user": top.user,
        "rank": np.arange(1, len(top) + 1),
        "item": top.item,
        "mean": full.mean,
        "sd": full.sd,
        "median": full.quantiles[:, 0],
        "lower": lower,
        "upper": upper,
    }
    if full.p_at_least is not None:
        columns["p_at_least"] = full.p_at_least
    columns["score"] = score
    columns["new_user"] = top.new_user
    columns["new_item"] = top.new_item
    return pd.DataFrame(columns)
