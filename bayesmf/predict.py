r"""Posterior-predictive summaries and draws for (user, item) pairs, chunked.

For posterior draw :math:`s` and the pair (user :math:`i`, item :math:`j`) the latent
score is :math:`\eta^{(s)}_{ij} = \mu^{(s)} + b^{(s)}_i + c^{(s)}_j + U^{(s)}_i \cdot
V^{(s)}_j` and the mean rating :math:`m^{(s)}_{ij} = g(\eta^{(s)}_{ij})` (`bayesmf.model.mean_rating`:
the identity, ``low + (high - low) logistic(eta)``, or the ordinal expectation).

Two kinds of prediction:

``kind="expected"`` (epistemic)
    The distribution over draws of the mean rating :math:`m^{(s)}_{ij}`: how well the model
    knows the user's taste for the item. Summaries are those of the draws (sample mean,
    sd, quantiles, HDI). For a MAP result (one draw) it has zero width: ``sd = 0`` and
    ``lower = median = upper = mean``; a point estimate carries no epistemic uncertainty.
``kind="predictive"`` (what the user will actually rate)
    The posterior predictive :math:`p(r) = \frac1S \sum_s p(r \mid \theta^{(s)})`.
    For the normal likelihood this is a mixture of :math:`S` normals
    :math:`\mathcal N(m^{(s)}, \tau^{(s)2})`, :math:`\tau` the noise sd in rating units
    (:math:`\sigma` or :math:`(\text{high}-\text{low})\sigma` with the logistic link), and it
    is summarized EXACTLY, without Monte Carlo over the noise: mean and sd in closed form,
    :math:`P(r \ge t) = \frac1S\sum_s \bar\Phi((c - m^{(s)})/\tau^{(s)})` (:math:`c = t`
    for continuous ratings; for ratings typed on a grid, whole or half stars, the rating
    typed is the model's rounded to the nearest level, so :math:`c` is the lowest level at
    or above :math:`t` less half a step: 3.5 for "at least 4 whole stars";
    `bayesmf.predictive.view.ModelView.threshold_cut`), and equal-tailed
    quantiles as roots of the mixture CDF (Halley iterations safeguarded by bisection; error
    about 1e-9 of the predictive sd: checked against brentq to 1e-7 in the tests).
    A MAP result gives the plug-in :math:`\mathcal N(m, \tau^2)`: analytic normal quantiles.
    With ``clip=True`` every component is censored to the rating scale (a rating cannot
    leave [low, high]): closed-form censored-normal moments, clipped quantiles, and
    :math:`P(r \ge \text{low}) = 1`. For ``likelihood="ordinal"`` the predictive is
    discrete over the rating levels (see `predict_proba`); its quantiles are levels.

Implicit feedback (``likelihood="implicit"``): the response is the 0/1 preference and
:math:`E[y] = \eta` estimates the probability that the user chooses the item (a linear
probability model), so predictions live on [0, 1], never on the range of the counts.
``kind="expected"`` (its default, ``kind="auto"``) summarizes the score :math:`\eta`;
with ``clip=True`` each draw is clipped to [0, 1], making it P(chosen) (``clip=False``:
the raw score, which can leave [0, 1]). ``kind="predictive"`` is the Gaussian working
predictive :math:`\mathcal N(\eta, \sigma^2)` of a new pair (confidence 1), censored to
[0, 1] with ``clip``; it takes no ``threshold`` (:math:`P(y \ge t)` of that working model
is the probability of nothing observable), while ``kind="expected"`` gives
:math:`P(\mathrm{P(chosen)} \ge t)`. `predict_proba` gives ``p_0``, ``p_1`` = P(chosen).

HDIs (``interval="hdi"``): of the draws for ``"expected"``; for the normal predictive, of
seeded draws from the mixture (at least 4,000 per pair, ``random_seed``), then clipped;
for a MAP normal predictive it equals the equal-tailed interval (a normal is symmetric);
for the ordinal predictive, the shortest run of levels holding ``prob``.

Unknown ids (``unknown="prior"``): a user or item the encoder does not know gets factors
(and a bias) drawn from the prior given each draw's scales (``sigma_factor``,
``sigma_user_bias``, ``sigma_item_bias`` of the draw, or the fixed ``sigma_u``/``sigma_v``/
``sigma_bias``; with ``factor_prior="per_side"`` the side's ``factor_mean_*`` and
``sigma_factor_*``), seeded per id, and is flagged ``new_user``/``new_item``; at least 1,000
components are used for such pairs (posterior draws repeated with fresh prior draws), so a
MAP result gives a usable prior predictive too. ``unknown="raise"`` raises a `KeyError`
naming the id. A model fitted with features on a side (side information, Gibbs) predicts an
unknown id of that side from its feature prior, centred on :math:`m + W^\top x` per draw,
when it has the id's features (rows of ids without ratings attached with the training
data, or folded in with ``fit.fold_in({}, user=..., features=...)`` /
``fit.fold_in_items``), and refuses it with a ``ValueError`` naming it otherwise: the
population prior would ignore what the features say and give too narrow intervals
(`bayesmf.predictive.cold`).

Memory: pairs are processed in chunks whose (pairs x draws) buffer holds about
``2**22`` float64 (32 MB) by default (``chunk_size`` sets the pairs per chunk); nothing of
size users x items x draws is ever built. A fit whose draws are in a zarr store
(``fit_gibbs(store=...)``) is read a block of draws at a time, for groups of pairs
(`bayesmf.predictive.lazy`): the same numbers, without the draws all in memory.

The options are validated once (`bayesmf.options.PredictOptions`; pass one as ``options=``
instead of the keywords if you like); the machinery lives in `bayesmf.predictive`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from bayesmf._seed import SeedLike
from bayesmf._validate import validate_positive_int
from bayesmf.options import PredictOptions, resolve_options
from bayesmf.predictive.components import MIN_PRIOR_COMPONENTS
from bayesmf.predictive.draws import draw_matrix, level_probabilities
from bayesmf.predictive.pairs import frame, resolve_pairs
from bayesmf.predictive.summary import summarize
from bayesmf.predictive.view import model_view

if TYPE_CHECKING:
    from bayesmf.results import FitResult

__all__ = ["MAX_DRAWS_ELEMENTS", "PredictOptions", "predict", "predict_draws", "predict_proba"]

#: largest (draws x pairs) array `predict_draws` returns unless told otherwise (512 MB)
MAX_DRAWS_ELEMENTS = 2**26


def predict(
    result: FitResult,
    data: Any,
    prob: float = 0.9,
    kind: str = "auto",
    interval: str = "eti",
    threshold: float | None = None,
    clip: bool = True,
    unknown: str = "prior",
    chunk_size: int | None = None,
    random_seed: SeedLike = None,
    *,
    user_col: str = "user",
    item_col: str = "item",
    rating_col: str | None = "rating",
    progressbar: bool = True,
    options: PredictOptions | None = None,
) -> pd.DataFrame:
    r"""Posterior-predictive (or expected-rating) summaries for (user, item) pairs.

    Parameters
    ----------
    result : FitResult
        A fitted model (any inference route; MAP gives plug-in intervals).
    data : RatingsData or pandas.DataFrame
        The pairs: a `RatingsData` (e.g. the test part of a split; other encoders are
        re-encoded through the raw ids) or a frame with raw user and item ids (columns
        ``user_col``, ``item_col``; ``rating_col`` is carried along when present).
    prob : float
        Probability of the interval, in (0, 1).
    kind : {"auto", "predictive", "expected"}
        ``"predictive"``: the rating the user would give (noise included);
        ``"expected"``: the mean rating :math:`g(\eta)`, epistemic uncertainty only (zero
        width for MAP). See the module docstring for the maths. ``"auto"`` (default):
        ``"predictive"`` for a rating model, ``"expected"`` for implicit feedback (the
        score :math:`\eta`, P(chosen); module docstring).
    interval : {"eti", "hdi"}
        Equal-tailed (central) interval or highest-density interval.
    threshold : float, optional
        Adds ``p_at_least`` = :math:`P(r \ge \text{threshold})` (predictive) or
        :math:`P(g(\eta) \ge \text{threshold})` (expected); must lie on the rating scale.
        On ratings typed in steps (whole or half stars) the predictive probability is that
        of the rating as typed, the model's continuous rating rounded to the nearest step:
        at least 4 whole stars is :math:`P(y \ge 3.5)` (module docstring).
        Default None (no column): a summary of pairs adds a tail probability only when
        asked, and no threshold suits every rating scale. (`bayesmf.recommend.recommend`
        defaults to 4.0, since its ``rank_by="prob"`` ranks by this probability.)
    clip : bool
        Censor predictive draws (and clip expected ratings) to the rating scale.
    unknown : {"prior", "raise"}
        Ids the model does not know: prior predictive (flagged; from the feature prior in a
        model with features, module docstring) or `KeyError` naming them.
    chunk_size : int, optional
        Pairs per chunk; default keeps each chunk's (pairs x draws) buffer near 32 MB.
        Results do not depend on it.
    random_seed : int or numpy.random.Generator, optional
        Seeds what is random: prior draws for unknown ids and predictive HDIs. Equal-tailed
        summaries of known pairs are deterministic. The same int gives a pair the same
        draws here and in `bayesmf.recommend.recommend`.
    user_col, item_col, rating_col : str
        Column names when ``data`` is a DataFrame.
    progressbar : bool
        Show a tqdm bar on long runs (at least 4 chunks).
    options : PredictOptions, optional
        All of ``prob`` ... ``random_seed`` as one object (the keywords must then be left
        at their defaults).

    Returns
    -------
    pandas.DataFrame
        One row per pair, in input order: ``user``, ``item`` (raw ids), ``rating`` (when
        known), ``mean``, ``sd``, ``median``, ``lower``, ``upper``, ``p_at_least`` (with a
        threshold), ``new_user``, ``new_item`` (id unknown to the model or without training
        ratings). ``attrs`` records ``prob``, ``kind``, ``interval``.

    Raises
    ------
    ValueError
        ``prob`` outside (0, 1), ``threshold`` off the scale, a bad choice of ``kind``/
        ``interval``/``unknown``, or missing id columns (the message names them); an
        unknown id whose features a model with features lacks (named).
    KeyError
        An unknown id with ``unknown="raise"`` (a `bayesmf.data.UnknownIdError`, also a
        ``ValueError``).

    Examples
    --------
    >>> result.predict(test, prob=0.9, threshold=4)  # doctest: +SKIP
    """
    opts = resolve_options(
        predict, options, prob=prob, kind=kind, interval=interval, threshold=threshold, clip=clip,
        unknown=unknown, chunk_size=chunk_size, random_seed=random_seed,
    ).for_model(result.spec)
    view = model_view(result, lazy=True)
    thr = view.threshold_cut(opts.threshold_on(view.low, view.high), opts.kind)
    pairs = resolve_pairs(
        result, data, unknown=opts.unknown, user_col=user_col, item_col=item_col, rating_col=rating_col
    )
    summary = summarize(
        view, pairs, kind=opts.kind, qs=opts.quantile_levels, threshold=thr, clip=opts.clip,
        hdi_prob=opts.hdi_prob, chunk_size=opts.chunk_size, base=opts.base_seed(), progressbar=progressbar,
    )
    columns: dict[str, np.ndarray] = {
        "mean": summary.mean,
        "sd": summary.sd,
        "median": summary.quantiles[:, 0],
    }
    if summary.hdi is not None:
        columns["lower"], columns["upper"] = summary.hdi[:, 0], summary.hdi[:, 1]
    else:
        columns["lower"], columns["upper"] = summary.quantiles[:, 1], summary.quantiles[:, 2]
    if summary.p_at_least is not None:
        columns["p_at_least"] = summary.p_at_least
    out = frame(pairs, columns)
    out.attrs.update(
        prob=opts.prob, kind=opts.kind, interval=opts.interval, threshold=opts.threshold, method=result.method
    )
    return out


def predict_draws(
    result: FitResult,
    data: Any,
    kind: str = "auto",
    n_draws: int | None = None,
    clip: bool = True,
    unknown: str = "prior",
    chunk_size: int | None = None,
    random_seed: SeedLike = None,
    *,
    max_elements: int = MAX_DRAWS_ELEMENTS,
    user_col: str = "user",
    item_col: str = "item",
    options: PredictOptions | None = None,
) -> np.ndarray:
    r"""Draws of the predictive (or expected) rating, shape ``(sample, pair)``.

    Each posterior draw gives ``R = max(1, ceil(n_draws / S))`` draws (``S`` posterior
    draws), so there are ``S * R`` rows; sample ``c`` uses posterior draw ``c % S``. With
    ``n_draws=None`` at least 1,000 draws are made (so a MAP result gives 1,000 noise draws
    around its point prediction). Noise is seeded per pair, so the result does not depend on
    ``chunk_size``. Use it for sample-based metrics (`bayesmf.metrics.crps`, `pit`).

    Parameters
    ----------
    result : FitResult
        The fitted model.
    data : RatingsData or pandas.DataFrame
        Pairs, as in `predict`.
    kind : {"auto", "predictive", "expected"}
        Noisy ratings (ordinal: rating levels) or mean ratings :math:`g(\eta)`;
        ``"auto"`` as in `predict`.
    n_draws : int, optional
        Minimum number of draws per pair (default ``max(S, 1000)``).
    clip : bool
        Censor to the rating scale.
    unknown : {"prior", "raise"}
        Policy for ids the model does not know (see `predict`).
    chunk_size : int, optional
        Pairs per chunk.
    random_seed : int or numpy.random.Generator, optional
        Seed of the noise and prior draws.
    max_elements : int
        Refuse to build an output larger than this many float64 (default ``2**26``, 512 MB).
    user_col, item_col : str
        Id columns of a DataFrame ``data``.
    options : PredictOptions, optional
        ``kind``, ``clip``, ``unknown``, ``chunk_size`` and ``random_seed`` as one object
        (its ``prob``, ``interval`` and ``threshold`` are not used here).

    Returns
    -------
    numpy.ndarray
        float64 array ``(S * R, n_pairs)``.

    Raises
    ------
    ValueError
        If the output would exceed ``max_elements`` (summarize with `predict` instead, or
        pass fewer pairs), or on bad options.
    """
    opts = resolve_options(
        predict_draws, options, kind=kind, clip=clip, unknown=unknown, chunk_size=chunk_size,
        random_seed=random_seed,
    ).for_model(result.spec)
    max_elements = validate_positive_int("max_elements", max_elements)
    view = model_view(result, lazy=True)
    S = view.n_samples
    target = max(S, MIN_PRIOR_COMPONENTS) if n_draws is None else validate_positive_int("n_draws", n_draws)
    n_comp = S * max(1, math.ceil(target / S))
    pairs = resolve_pairs(result, data, unknown=opts.unknown, user_col=user_col, item_col=item_col, rating_col=None)
    size = n_comp * len(pairs)
    if size > max_elements:
        raise ValueError(
            f"predict_draws would return {n_comp} x {len(pairs)} = {size:,} values, more than "
            f"max_elements={max_elements:,}; summarize with predict(), pass fewer pairs, "
            "fewer n_draws, or raise max_elements"
        )
    return draw_matrix(
        view, pairs, kind=opts.kind, n_comp=n_comp, clip=opts.clip, chunk_size=opts.chunk_size,
        base=opts.base_seed(),
    )


def predict_proba(
    result: FitResult,
    data: Any,
    unknown: str = "prior",
    chunk_size: int | None = None,
    random_seed: SeedLike = None,
    *,
    user_col: str = "user",
    item_col: str = "item",
    rating_col: str | None = "rating",
    options: PredictOptions | None = None,
) -> pd.DataFrame:
    r"""Predictive probability of each rating level, one row per pair.

    For ``likelihood="ordinal"``: :math:`P(r = \ell_k) = \frac1S \sum_s
    [F(c^{(s)}_k - \eta^{(s)}) - F(c^{(s)}_{k-1} - \eta^{(s)})]` with :math:`F` the logistic
    function (``link="identity"``, ``pm.OrderedLogistic``) or the standard normal cdf
    :math:`\Phi` (``link="probit"``, the ordered probit, ``pm.OrderedProbit``), as
    `bayesmf.link.ordinal_probs`. For the normal likelihood on discrete ratings, the mass the
    censored normal mixture puts on each level's bin (halfway to the neighbouring levels,
    the end bins open): the rating rounded to the nearest level. For implicit feedback the
    levels are 0 (not chosen) and 1 (chosen): ``p_1`` = P(chosen) = the mean over draws of
    :math:`\mathrm{clip}(\eta, 0, 1)`, ``p_0 = 1 - p_1``.

    Parameters
    ----------
    result : FitResult
        Fitted model whose training ratings have discrete levels (`RatingsData.levels`).
    data : RatingsData or pandas.DataFrame
        Pairs, as in `predict`.
    unknown, chunk_size, random_seed, user_col, item_col, rating_col
        As in `predict` (a model fitted with features gives an unknown id the level
        probabilities of its feature prior; see the module docstring).
    options : PredictOptions, optional
        ``unknown``, ``chunk_size`` and ``random_seed`` as one object.

    Returns
    -------
    pandas.DataFrame
        ``user``, ``item`` (, ``rating``), one column ``p_<level>`` per level (e.g. ``p_1``,
        ``p_4.5``; rows sum to 1), ``new_user``, ``new_item``.

    Raises
    ------
    ValueError
        If the training ratings have no discrete levels.
    """
    opts = resolve_options(predict_proba, options, unknown=unknown, chunk_size=chunk_size, random_seed=random_seed)
    view = model_view(result, lazy=True)
    if view.levels is None:  # implicit feedback has levels (0, 1)
        raise ValueError(
            "predict_proba needs discrete rating levels, but the training ratings are continuous"
        )
    pairs = resolve_pairs(
        result, data, unknown=opts.unknown, user_col=user_col, item_col=item_col, rating_col=rating_col
    )
    probs = level_probabilities(view, pairs, chunk_size=opts.chunk_size, base=opts.base_seed())
    names = [f"p_{level:g}" for level in view.levels]
    return frame(pairs, dict(zip(names, probs.T, strict=True)))
