"""Per-pair draws of the predictive (or expected) rating, and rating-level probabilities."""

from __future__ import annotations

from functools import partial

import numpy as np
from scipy.special import ndtr

from bayesmf import _kernels_predict as kern
from bayesmf.link import ordinal_probs
from bayesmf.predictive.components import blocks, chunk_width, chunks, latent, pair_seeds
from bayesmf.predictive.lazy import by_groups, is_lazy
from bayesmf.predictive.pairs import Pairs
from bayesmf.predictive.summary import mean_of
from bayesmf.predictive.view import ModelView

__all__ = ["draw_matrix", "level_probabilities"]


def draw_matrix(
    view: ModelView, pairs: Pairs, *, kind: str, n_comp: int, clip: bool, chunk_size: int | None, base: int
) -> np.ndarray:
    """Draws ``(n_comp, len(pairs))``; row ``c`` uses posterior draw ``c % S``, noise seeded per pair."""
    if is_lazy(view):
        same = partial(draw_matrix, kind=kind, n_comp=n_comp, clip=clip, chunk_size=chunk_size, base=base)
        return by_groups(view, pairs, same, axis=1)
    seeds = pair_seeds(base, pairs, stream=2)
    s_of_c = np.arange(n_comp) % view.n_samples
    out = np.empty((n_comp, len(pairs)))
    width = chunk_width(view, bool(pairs.unknown.any()))
    for rows in chunks(np.arange(len(pairs)), n_comp, width, chunk_size):
        eta = latent(view, pairs, rows, n_comp, base)
        if kind == "expected":
            values = mean_of(view, eta, s_of_c)
            if clip:
                np.clip(values, view.low, view.high, out=values)
            out[:, rows] = values.T
            continue
        block = np.empty((n_comp, len(rows)))
        if view.ordinal:
            assert view.cutpoints is not None and view.levels is not None
            kern.ordinal_level_draws(
                eta, view.cutpoints[s_of_c], view.levels, view.spec.link == "probit", seeds[rows], block
            )
        elif view.binary:  # probit: y = [z > 0], z ~ N(eta, 1)
            kern.normal_draws(eta, np.ones(n_comp), seeds[rows], False, 0.0, 1.0, block)
            block = (block > 0.0).astype(np.float64)
        else:
            assert view.noise is not None
            means = mean_of(view, eta, s_of_c)
            kern.normal_draws(means, view.noise[s_of_c], seeds[rows], clip, view.low, view.high, block)
        out[:, rows] = block
    return out


def level_probabilities(view: ModelView, pairs: Pairs, *, chunk_size: int | None, base: int) -> np.ndarray:
    """``P(r = level)`` per pair, ``(len(pairs), n_levels)``: ordinal, or normal mass per level's bin.

    Implicit feedback: levels (0, 1), ``P(chosen)`` = the mean over draws of
    ``clip(eta, 0, 1)`` (the linear probability model, clipped to a probability).
    Binary feedback: levels (0, 1), ``P(y = 1)`` = the mean over draws of ``Phi(eta)``.
    """
    if is_lazy(view):
        return by_groups(view, pairs, partial(level_probabilities, chunk_size=chunk_size, base=base))
    levels = view.levels
    assert levels is not None
    probs = np.empty((len(pairs), len(levels)))
    edges = np.concatenate([[-np.inf], (levels[1:] + levels[:-1]) / 2.0, [np.inf]])
    for rows, n_comp in blocks(view, pairs, chunk_size, min_width=len(levels) + 1):
        s_of_c = np.arange(n_comp) % view.n_samples
        eta = latent(view, pairs, rows, n_comp, base)
        if view.implicit or view.binary:
            chosen = np.clip(mean_of(view, eta, s_of_c), 0.0, 1.0).mean(axis=1)
            probs[rows] = np.column_stack([1.0 - chosen, chosen])
        elif view.ordinal:
            assert view.cutpoints is not None
            probs[rows] = ordinal_probs(eta, view.cutpoints[s_of_c], view.spec.link).mean(axis=1)
        else:
            assert view.noise is not None
            means = mean_of(view, eta, s_of_c)
            z = (edges[None, None, :] - means[:, :, None]) / view.noise[s_of_c][None, :, None]
            probs[rows] = np.diff(ndtr(z).mean(axis=1), axis=1)
    return probs
