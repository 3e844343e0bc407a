r"""Top ``k`` by lower bound or by :math:`P(r \ge t)` for many users at once, exactly as `recommend`.

`bayesmf.recommend.recommend` scores each candidate of one user with the exact predictive
(`bayesmf.predictive.summary.summarize`): for the normal likelihood with the identity
link, the mixture :math:`F(x) = \frac1S \sum_s \Phi((x - \eta^{(s)}) / \sigma^{(s)})` over
the :math:`S` draws, whose ``"lower"`` score is the root of :math:`F(x) = q` (``q`` the
interval's lower tail, then clipped to the scale with ``clip``) and whose ``"prob"`` score
is :math:`1 - F(t)` (1 with ``clip`` and :math:`t` at the bottom of the scale). Each costs
:math:`S` transcendental functions per candidate, several times over for the root. Here
the candidates of a batch of users are first bracketed with no transcendental per draw
(kernel `bayesmf._kernels_ranking.pair_sums`: :math:`\Phi` read from a table on a grid of
step 1/1024, whose neighbouring entries bound it), and only those that can reach the top
``k`` are scored exactly, by the same `summarize` as `recommend`:

* ``"prob"``: bounds :math:`[p^-, p^+]` on every candidate's score; with :math:`L` the
  ``k``-th largest :math:`p^-` of the user, a candidate with :math:`p^+ < L - 10^{-9}`
  cannot reach the top ``k``.
* ``"lower"``: the exact scores of the user's ``k + SEED_EXTRA`` candidates with the
  highest normal approximation :math:`\bar\eta + z_q \sqrt{\mathrm{var}(\eta) +
  \overline{\sigma^2}}` give :math:`x^*`, their ``k``-th largest, at most the user's true
  ``k``-th largest score. A candidate whose table bound gives :math:`F(x^*) > q + \delta
  f_{\max}` (:math:`f_{\max} = \max_s 1/(\sqrt{2\pi}\sigma^{(s)})` bounds the density,
  :math:`\delta = 10^{-5}` times the scale's width, far above the root finder's error)
  has its quantile below :math:`x^* - \delta`: it cannot reach the top ``k``. No candidate
  is dropped when :math:`x^*` is at the bottom of a clipped scale (ties there).

With ``kind="expected"`` the scores are summaries of the :math:`S` draws of
:math:`\eta` itself (clipped with ``clip``): ``"prob"`` the fraction of draws
:math:`\ge t`, ``"lower"`` numpy's linear quantile of the draws. The same two stages
apply with draw COUNTS in place of the CDF table (margin :math:`10^{-9}` times the scale's
width on :math:`\eta`): a linear quantile is at most the draw of rank
:math:`\lfloor (S - 1) q \rfloor + 1`, so a candidate with more draws than that below
:math:`x^*` cannot reach the top ``k``.

Every candidate kept is scored as `recommend` scores it and ranked the same way (exact
ties by the posterior mean, then the item index: `bayesmf.ranking.top_k_tiebroken`), so
the lists and scores are `recommend`'s; candidates tied with the ``k``-th score are
always kept.

Cost: :math:`O(S K)` multiply-adds and one table read (or comparison) per draw of each
(user, item) pair, once for ``"prob"`` and twice for ``"lower"`` (moments, then bounds),
against `recommend`'s several transcendental functions per draw (a root search for
``"lower"``; a sort of the draws for ``kind="expected"``); then the exact scores of the
kept candidates (about ``k`` per user, plus ``k + SEED_EXTRA`` seeds for ``"lower"``).
Memory: two (users x items) float64 arrays per batch of users, at most `BATCH_BUDGET`
elements (8 MB) each, a few more of that size for ``"lower"``'s approximation, the exact
stage's chunks (`bayesmf.predictive.components.CHUNK_BUDGET`) and the posterior itself;
nothing grows with the number of draws times pairs.

Applies to the normal likelihood with the identity link, ``kind="predictive"`` or
``"expected"``, and for ``"lower"`` the equal-tailed interval: `bounds_apply`.
`rank_candidates` picks this, the batched mean ranking (`bayesmf.mean_ranking`) or
`recommend`'s user-by-user path.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.special import ndtri

from bayesmf._kernels_ranking import pair_sums, phi_table
from bayesmf.mean_ranking import batched, exact_summary, top_by_mean
from bayesmf.options import PredictOptions
from bayesmf.predictive.lazy import draw_blocks, is_lazy
from bayesmf.predictive.view import ModelView, model_view
from bayesmf.ranking import top_k_tiebroken
from bayesmf.recommend import rank_items

if TYPE_CHECKING:
    from bayesmf.results import FitResult

__all__ = ["BATCH_BUDGET", "SEED_EXTRA", "bounds_apply", "rank_candidates", "top_by_bounds"]

#: (users x items) elements of each of a batch's two float64 sum arrays (8 MB)
BATCH_BUDGET = 2**20
#: candidates per user, beyond k, scored exactly to find the cut-off of "lower"
SEED_EXTRA = 10
#: quantile margin (x the scale's width) and probability margin of the pruning
_QUANTILE_SLACK = 1e-5
_PROB_SLACK = 1e-9
#: margin on eta (x the scale's width) of the draw counts of kind="expected"
_COUNT_SLACK = 1e-9


def bounds_apply(view: ModelView, opts: PredictOptions, rank_by: str) -> bool:
    """Whether `top_by_bounds` ranks ``rank_by`` under these options (module docstring)."""
    return (
        rank_by in ("lower", "prob")
        and view.spec.likelihood == "normal"
        and not view.ordinal
        and view.spec.link == "identity"
        and opts.kind in ("predictive", "expected")
        and (rank_by == "prob" or opts.interval == "eti")
        and view.noise is not None
        and bool(np.all(view.noise > 0))
    )


def _sums(view: ModelView, users: np.ndarray, mode: int, x: np.ndarray, sign: float) -> tuple[np.ndarray, np.ndarray]:
    """`pair_sums` of ``users`` with every item, divided by the number of draws.

    ``mode`` 1 (the normal CDF) is turned into 2 (draw counts) for ``kind="expected"``,
    whose scores are summaries of the draws of eta themselves (`_mode`). A lazy view (a
    posterior on disk) is summed a stored block of draws at a time.
    """
    if is_lazy(view):
        lo, hi = np.zeros((2, len(users), view.arrays.V.shape[1]))
        for part in draw_blocks(view):
            part_lo, part_hi = _sums(part, users, mode, x, sign)
            lo += part_lo * (part.n_samples / view.n_samples)
            hi += part_hi * (part.n_samples / view.n_samples)
            del part  # before the next block is read
        return lo, hi
    a, bias = view.arrays, view.has_bias
    none = np.zeros((1, 1))
    mu = a.mu if bias and a.mu is not None else None
    ub = a.user_bias if bias and a.user_bias is not None else None
    ib = a.item_bias if bias and a.item_bias is not None else None
    assert view.noise is not None  # bounds_apply
    lo = np.empty((len(users), a.V.shape[1]))
    hi = np.empty_like(lo)
    pair_sums(
        a.U, a.V, np.zeros(1) if mu is None else np.asarray(mu, dtype=np.float64).reshape(-1),
        none if ub is None else ub, none if ib is None else ib, mu is not None, ub is not None,
        ib is not None, users, mode, x, sign, 1.0 / view.noise, phi_table(),
        _COUNT_SLACK * (view.high - view.low), lo, hi,
    )
    lo /= view.n_samples
    hi /= view.n_samples
    return lo, hi


def _mode(opts: PredictOptions) -> int:
    """`pair_sums` mode of the CDF bounds: the normal mixture (1) or the draws of eta (2)."""
    return 1 if opts.kind == "predictive" else 2


def _kept_by_prob(
    view: ModelView, batch: np.ndarray, cands: Sequence[np.ndarray], k: int, thr: float, opts: PredictOptions
) -> list[np.ndarray]:
    """Candidates whose P(r >= thr) can reach the top ``k`` (all of them when it is 1 for all)."""
    if opts.clip and thr <= view.low:
        return list(cands)
    # P(r >= t) = mean_s Phi((eta - t) / sigma), or the fraction of draws with eta >= t: sign -1 at x = t
    lo, hi = _sums(view, batch, _mode(opts), np.full(len(batch), thr), -1.0)
    keep = []
    for row, cand in enumerate(cands):
        low_end = lo[row, cand]
        nth = len(cand) - min(k, len(cand))
        cut = np.partition(low_end, nth)[nth] if len(cand) else 0.0
        keep.append(cand[hi[row, cand] >= cut - _PROB_SLACK])
    return keep


def _kept_by_lower(
    result: FitResult, view: ModelView, batch: np.ndarray, cands: Sequence[np.ndarray], k: int, opts: PredictOptions
) -> list[np.ndarray]:
    """Candidates whose lower bound can reach the top ``k`` (module docstring)."""
    assert view.noise is not None  # bounds_apply
    q = opts.tail
    total, square = _sums(view, batch, 0, np.zeros(len(batch)), 1.0)
    noise_var = float(np.mean(view.noise**2)) if opts.kind == "predictive" else 0.0
    approx = total + float(ndtri(q)) * np.sqrt(np.maximum(square - total**2, 0.0) + noise_var)
    seeds = []
    for row, cand in enumerate(cands):
        m = min(len(cand), k + SEED_EXTRA)
        seeds.append(np.sort(cand[np.argpartition(-approx[row, cand], m - 1)[:m]]) if m else cand)
    sizes = [len(s) for s in seeds]
    exact = exact_summary(
        result, view, np.repeat(batch, sizes), np.concatenate(seeds), opts, qs=np.array([q])
    ).quantiles[:, 0]
    cut = np.full(len(batch), -np.inf)
    for row, score in enumerate(np.split(exact, np.cumsum(sizes)[:-1])):
        if len(cands[row]) > k:
            kth = np.partition(score, len(score) - k)[len(score) - k]
            cut[row] = kth if not (opts.clip and kth <= view.low) else -np.inf
    f_lo, _ = _sums(view, batch, _mode(opts), cut, 1.0)
    if opts.kind == "expected":
        # the linear quantile is at most the draw of rank floor((S - 1) q) + 1: below x* when
        # more draws than that rank lie below x* (by the margin)
        S = view.n_samples
        rank = min(math.floor((S - 1) * q) + 1, S - 1)
        return [cand[np.rint(f_lo[row, cand] * S) <= rank] for row, cand in enumerate(cands)]
    slack = _QUANTILE_SLACK * (view.high - view.low) / (math.sqrt(2.0 * math.pi) * float(view.noise.min()))
    return [cand[f_lo[row, cand] <= q + slack] for row, cand in enumerate(cands)]


def top_by_bounds(
    result: FitResult, users: Sequence[int], candidates: Sequence[np.ndarray], k: int, rank_by: str,
    opts: PredictOptions, progressbar: bool = False,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Top ``k`` candidate item indices of each user by ``"lower"`` or ``"prob"``, with scores.

    Parameters
    ----------
    result, users, candidates, k, opts, progressbar
        As in `rank_candidates` (``result`` one that `bounds_apply` accepts).
    rank_by : {"lower", "prob"}
        The rule of `bayesmf.recommend.recommend`.

    Returns
    -------
    list of tuple of numpy.ndarray
        Per user: its top item indices, best first, and their scores (`recommend`'s).

    Raises
    ------
    ValueError
        If the rule and options are not ones `bounds_apply` accepts, or ``"prob"`` lacks a
        threshold.
    """
    opts = opts.for_model(result.spec)
    view = model_view(result, lazy=True)
    if not bounds_apply(view, opts, rank_by):
        raise ValueError(f"rank_by={rank_by!r} with these options and this model is not ranked by bounds (see bounds_apply)")
    thr = view.threshold_cut(opts.threshold_on(view.low, view.high), opts.kind)
    if rank_by == "prob" and math.isnan(thr):
        raise ValueError("rank_by='prob' needs a threshold (e.g. threshold=4.0)")
    size = max(1, BATCH_BUDGET // max(view.arrays.V.shape[1], 1))
    starts: Iterable[int] = range(0, len(users), size)
    if progressbar and len(users) > size:
        from tqdm.auto import tqdm

        starts = tqdm(starts, total=-(-len(users) // size), desc=f"top-{k} by {rank_by}", unit="batch")
    out: list[tuple[np.ndarray, np.ndarray]] = []
    for b0 in starts:
        batch = np.asarray(users[b0 : b0 + size], dtype=np.int64)
        cands = [np.asarray(c, dtype=np.int64) for c in candidates[b0 : b0 + size]]
        if rank_by == "prob":
            keep = _kept_by_prob(view, batch, cands, k, thr, opts)
            qs, threshold = np.empty(0), thr
        else:
            keep = _kept_by_lower(result, view, batch, cands, k, opts)
            qs, threshold = np.array([opts.tail]), math.nan
        sizes = [len(c) for c in keep]
        summary = exact_summary(result, view, np.repeat(batch, sizes), np.concatenate(keep), opts, qs, threshold)
        scores = summary.p_at_least if rank_by == "prob" else summary.quantiles[:, 0]
        assert scores is not None
        cuts = np.cumsum(sizes)[:-1]
        for items, score, mean in zip(keep, np.split(scores, cuts), np.split(summary.mean, cuts), strict=True):
            top = top_k_tiebroken(score, k, mean.take, items)
            out.append((items[top], score[top]))
    return out


def rank_candidates(
    result: FitResult,
    users: Sequence[int],
    candidates: Sequence[np.ndarray],
    k: int,
    rank_by: str,
    opts: PredictOptions,
    progressbar: bool = False,
) -> list[np.ndarray]:
    """Top ``k`` candidate item indices of each user by any rule of `bayesmf.recommend.recommend`.

    ``"mean"`` by `bayesmf.mean_ranking.top_by_mean` and ``"lower"``/``"prob"`` by
    `top_by_bounds` where they apply (`bayesmf.mean_ranking.batched`, `bounds_apply`);
    otherwise (``"thompson"``, ordinal likelihood, logistic link, the HDI's lower end)
    user by user with `bayesmf.recommend.rank_items`. The lists are those of `recommend`
    in every case, from a fit in memory or one read lazily from a zarr store (its draws
    read a stored block at a time).

    Parameters
    ----------
    result : FitResult
        The fit.
    users : sequence of int
        User indices of ``result.train``.
    candidates : sequence of numpy.ndarray
        Each user's candidate item indices, increasing, each once.
    k : int
        Items kept per user.
    rank_by : {"mean", "lower", "prob", "thompson"}
        The ranking rule.
    opts : PredictOptions
        Prediction options (``threshold`` is the one of ``"prob"``; ``random_seed`` drives
        Thompson's draws).
    progressbar : bool
        A tqdm bar over the users (user by user) or their batches.

    Returns
    -------
    list of numpy.ndarray
        Item indices, best first, one array per user.
    """
    opts = opts.for_model(result.spec)  # the "auto" kind and threshold, as recommend resolves them
    view = model_view(result, lazy=True)
    if rank_by == "mean" and batched(view, opts):
        return top_by_mean(result, users, candidates, k, opts)
    if bounds_apply(view, opts, rank_by):
        return [items for items, _ in top_by_bounds(result, users, candidates, k, rank_by, opts, progressbar)]
    return [items for items, _ in per_user(result, users, candidates, k, rank_by, opts, progressbar)]


def per_user(
    result: FitResult, users: Sequence[int], candidates: Sequence[np.ndarray], k: int, rank_by: str,
    opts: PredictOptions, progressbar: bool = False,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Top ``k`` item indices and scores of each user, one user at a time (`bayesmf.recommend.rank_items`)."""
    train = result.train
    user_raw, item_raw = train.users.classes, train.items.classes
    pairs: Iterable[Any] = ((user_raw[u], item_raw[c]) for u, c in zip(users, candidates, strict=True))
    if progressbar:
        from tqdm.auto import tqdm

        pairs = tqdm(pairs, total=len(users), desc=f"top-{k} by {rank_by}", unit="user")
    return [(train.items.to_index(top), score) for _, top, score in rank_items(result, pairs, k, rank_by, opts)]
