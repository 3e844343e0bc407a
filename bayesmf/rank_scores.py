r"""The score of every candidate pair under a ranking rule of `bayesmf.recommend`, and its tie-break.

`rule_scores` computes only what the rule needs (the mean, one quantile, one tail
probability or one posterior draw) and returns, beside the scores, the tie-breaker of
`bayesmf.ranking.top_k_tiebroken`: the posterior mean of the pairs asked for (the
``mean`` that `recommend` reports, or for implicit feedback's unclipped scores the
unclipped mean, which orders the same way wherever the clipped one is not tied).
For ``"prob"`` and ``"lower"`` those means come out of the same pass as the scores; for
``"thompson"`` they are computed for the tied pairs only. `item_order` is the last key:
the model's item index (raw-id order), new items after the known ones in the order given.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from bayesmf.latent import latent_scores_per_draw
from bayesmf.mean_ranking import scarf_bounds
from bayesmf.options import PredictOptions
from bayesmf.predictive.components import blocks, latent
from bayesmf.predictive.lazy import by_groups, is_lazy
from bayesmf.predictive.pairs import Pairs
from bayesmf.predictive.summary import Summary, mean_of
from bayesmf.predictive.view import ModelView

__all__ = ["item_order", "rule_scores"]

_NONE = np.empty(0)

#: the posterior mean of the pairs at some positions (the tie-breaker)
TieMean = Callable[[np.ndarray], np.ndarray]


def item_order(pairs: Pairs, n_items: int) -> np.ndarray:
    """Last tie-break key of each pair: its item's index in the model; new items after, as given."""
    iidx = pairs.keys[1]
    return np.where(iidx >= 0, iidx, n_items + np.arange(len(iidx)))


def rule_scores(
    summary: Callable[..., Summary],
    rank_by: str,
    opts: PredictOptions,
    view: ModelView,
    pairs: Pairs,
    n: int,
    thr: float,
    rng: np.random.Generator,
    base: int,
) -> tuple[np.ndarray, TieMean]:
    """Ranking score of every candidate pair under rule ``rank_by``, and the tie-breaker (module docstring).

    ``summary(qs, threshold, hdi_prob, pairs=..., clip_=...)`` summarizes pairs with the
    call's options and per-pair seeds; ``rng`` gives Thompson's draw.
    """
    if rank_by == "mean":
        if opts.kind == "predictive" and opts.clip and not view.ordinal:
            score = _censored_mean_scores(summary, pairs, n, view.low, view.high)
        else:
            score = summary(_NONE, math.nan, math.nan).mean
        return score, lambda rows: score[rows]
    if rank_by == "thompson":
        draw = int(rng.integers(view.n_samples))
        return _thompson_scores(view, pairs, draw, opts.chunk_size, base), (
            lambda rows: summary(_NONE, math.nan, math.nan, pairs.subset(rows)).mean
        )
    if rank_by == "prob":
        full = summary(_NONE, thr, math.nan)
        assert full.p_at_least is not None
        return full.p_at_least, lambda rows: full.mean[rows]
    # implicit feedback: the unclipped bound, same order without ties at P(chosen) = 0
    clip = opts.clip and not view.implicit
    if opts.interval == "hdi":
        full = summary(_NONE, math.nan, opts.hdi_prob, pairs, clip)
        assert full.hdi is not None
        return full.hdi[:, 0], lambda rows: full.mean[rows]
    full = summary(np.array([opts.tail]), math.nan, math.nan, pairs, clip)
    return full.quantiles[:, 0], lambda rows: full.mean[rows]


def _censored_mean_scores(
    summary: Callable[..., Summary], pairs: Pairs, n: int, low: float, high: float
) -> np.ndarray:
    r"""Censored predictive means of the pairs that can make the top ``n``; ``-inf`` elsewhere.

    The censored mean :math:`E[\mathrm{clip}(Y)] = E[Y] + E[(l - Y)^+] - E[(Y - h)^+]` costs
    two normal CDFs per draw; the uncensored mean :math:`u` and sd :math:`s` of the mixture
    cost none. For ANY distribution with that mean and sd,
    :math:`E[(Y - k)^+] \le \tfrac12(\sqrt{s^2 + (u - k)^2} + u - k)` (Scarf's bound), so
    each censored mean lies in a cheap interval around :math:`u`. Only the pairs whose upper
    bound reaches the ``n``-th largest lower bound can be in the top ``n``; the exact
    censored mean is computed for those alone, and the ranking is exact (ties included:
    a pair tied with the ``n``-th score has its upper bound above that lower bound).
    """
    raw = summary(_NONE, math.nan, math.nan, pairs, False)
    u, s = raw.mean, raw.sd
    lower_bound, upper_bound = scarf_bounds(u, s, low, high)
    kth = np.sort(lower_bound)[::-1][min(n, len(u)) - 1]
    keep = np.flatnonzero(upper_bound >= kth)
    score = np.full(len(u), -np.inf)
    score[keep] = summary(_NONE, math.nan, math.nan, pairs.subset(keep)).mean
    return score


def _thompson_scores(
    view: ModelView, pairs: Pairs, draw: int, chunk_size: int | None, base: int
) -> np.ndarray:
    """Mean rating of every pair under posterior draw ``draw``, NOT clipped to the scale.

    Known pairs are computed under that one draw only; prior draws stand in for unknown
    ids (their components, as in `summarize`). Clipping would turn every draw above the
    top of the scale into the same score; the ranking needs the draw itself.
    """
    if is_lazy(view):
        return by_groups(view, pairs, lambda v, p: _thompson_scores(v, p, draw, chunk_size, base))
    out = np.empty(len(pairs))
    which = np.array([draw])
    known = np.flatnonzero(~pairs.unknown)
    if len(known):
        a, bias = view.arrays, view.has_bias
        eta = latent_scores_per_draw(
            a.U[which], a.V[which], pairs.uidx[known], pairs.iidx[known],
            mu=a.mu[which] if bias and a.mu is not None else None,
            user_bias=a.user_bias[which] if bias and a.user_bias is not None else None,
            item_bias=a.item_bias[which] if bias and a.item_bias is not None else None,
        )
        out[known] = mean_of(view, eta.T, which)[:, 0]
    if len(known) < len(pairs):
        unknown = np.flatnonzero(pairs.unknown)
        sub = pairs.subset(unknown)
        for rows, n_comp in blocks(view, sub, chunk_size):
            eta = latent(view, sub, rows, n_comp, base)
            out[unknown[rows]] = mean_of(view, eta[:, which], which % view.n_samples)[:, 0]
    return out
