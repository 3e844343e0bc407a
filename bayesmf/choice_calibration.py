r"""Is P(chosen) calibrated? A reliability table of an implicit-feedback fit on held-out choices.

An implicit-feedback fit (``PMF(likelihood="implicit")``) gives every (user, item) pair a
posterior mean :math:`\hat p_{ij} = E[\mathrm{clip}(\eta_{ij}, 0, 1)]`, its P(chosen).
Calibration asks: among pairs predicted near :math:`p`, is a fraction near :math:`p`
chosen? `choice_reliability` scores held-out choices:

* positives: the test pairs (user, item) that the user did not choose in training (test
  pairs also in training are left out and counted);
* negatives: every other pair of a test user that is in neither the training nor the test
  data; or, with ``negatives=n``, ``n`` of them per user drawn uniformly without
  replacement (seeded), each weighted by (the user's negatives) / (those drawn), so that
  weighted sums estimate the sums over all of them (inverse-probability weights).

`reliability_table` bins the predictions into ``n_bins`` equal-width bins of [0, 1] and
gives, per non-empty bin, the weighted mean prediction, the weighted observed frequency,
the number of pairs, the summed weight and the binomial standard error of the observed
frequency, :math:`\sqrt{f(1 - f)/n_\text{eff}}` with Kish's effective size
:math:`n_\text{eff} = (\sum w)^2 / \sum w^2`. Its summaries:

.. math::

    \mathrm{ECE} = \sum_b \frac{W_b}{W} \lvert f_b - \bar p_b \rvert, \qquad
    \mathrm{Brier} = \frac{\sum_p w_p (\hat p_p - y_p)^2}{\sum_p w_p}.

`plot_choice_reliability` draws the curve against the diagonal.

P(chosen) is fitted to the training choices; it is not the probability of a future choice,
which depends on how many choices the future holds. ``choice_reliability(...,
calibration=, horizon=)`` judges the probabilities of `bayesmf.choice_horizon` instead:
P(item among the user's next n choices), from P(chosen) or from the shape a calibrator
learned on a held-out share of the training choices.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import pandas as pd

from bayesmf._seed import SeedLike, generator
from bayesmf._validate import (
    reject_first_bad,
    validate_choice,
    validate_positive,
    validate_positive_int,
    validate_probabilities,
)
from bayesmf.data import RatingsData
from bayesmf.latent import latent_scores_per_draw
from bayesmf.predictive.view import ModelView, model_view
from bayesmf.topn_protocol import UnratedItems, index_pairs

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from bayesmf.choice_horizon import ChoiceCalibrator
    from bayesmf.results import FitResult

__all__ = ["Reliability", "choice_reliability", "plot_choice_reliability", "reliability_table"]

_UNKNOWN = ("raise", "drop")
_COLUMNS = ["bin", "low", "high", "mean_predicted", "observed", "n", "weight", "se"]


class Reliability(NamedTuple):
    """A reliability table and its summaries.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per non-empty bin: ``bin`` (0-based), ``low``, ``high`` (its edges),
        ``mean_predicted``, ``observed`` (weighted frequency of choices), ``n`` (pairs),
        ``weight`` (summed weights) and ``se`` (standard error of ``observed``).
    ece : float
        Expected calibration error (module docstring).
    brier : float
        Weighted Brier score.
    """

    table: pd.DataFrame
    ece: float
    brier: float


def checked_outcomes(predicted: Any, observed: Any, weights: Any = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Predictions in [0, 1], 0/1 outcomes and weights > 0 (all 1 when None), flat float arrays of one length.

    Raises a ``ValueError`` on empty or mismatched inputs, or naming the first bad value.
    """
    p = validate_probabilities("predicted", predicted).ravel()
    y = np.asarray(observed, dtype=np.float64).ravel()
    w = np.ones_like(p) if weights is None else np.asarray(weights, dtype=np.float64).ravel()
    if p.size == 0 or p.shape != y.shape or p.shape != w.shape:
        raise ValueError(
            f"predicted, observed and weights must be non-empty and of one length, got {p.size}, {y.size}, {w.size}"
        )
    reject_first_bad("observed", y, (y != 0) & (y != 1), "0 or 1")
    reject_first_bad("weights", w, ~(np.isfinite(w) & (w > 0)), "finite and > 0")
    return p, y, w


def reliability_table(
    predicted: Any, observed: Any, weights: Any = None, n_bins: int = 10
) -> Reliability:
    """Bin predicted probabilities and compare them with what happened.

    Parameters
    ----------
    predicted : array_like of float
        Predicted probabilities, in [0, 1].
    observed : array_like
        Outcomes, 0 or 1 (bool accepted), as many as ``predicted``.
    weights : array_like of float, optional
        Weight of each pair, finite and > 0 (None: all 1).
    n_bins : int
        Equal-width bins of [0, 1] (a prediction of exactly 1 falls in the last).

    Returns
    -------
    Reliability
        ``(table, ece, brier)``; ``table.attrs`` hold ``ece``, ``brier``, ``n_pairs``,
        ``n_positive`` and ``n_bins``.

    Raises
    ------
    ValueError
        On empty input, mismatched lengths, a prediction outside [0, 1] or NaN, an outcome
        other than 0/1, a weight that is not finite and > 0, or ``n_bins < 1`` (each
        message names the value).
    """
    n_bins = validate_positive_int("n_bins", n_bins)
    p, y, w = checked_outcomes(predicted, observed, weights)
    bins = np.minimum((p * n_bins).astype(np.int64), n_bins - 1)
    W = np.bincount(bins, weights=w, minlength=n_bins)
    n = np.bincount(bins, minlength=n_bins)
    W2 = np.bincount(bins, weights=w * w, minlength=n_bins)
    keep = n > 0
    mean_p = np.bincount(bins, weights=w * p, minlength=n_bins)[keep] / W[keep]
    freq = np.bincount(bins, weights=w * y, minlength=n_bins)[keep] / W[keep]
    n_eff = W[keep] ** 2 / W2[keep]
    index = np.flatnonzero(keep)
    table = pd.DataFrame({
        "bin": index, "low": index / n_bins, "high": (index + 1) / n_bins, "mean_predicted": mean_p,
        "observed": freq, "n": n[keep], "weight": W[keep], "se": np.sqrt(freq * (1 - freq) / n_eff),
    }, columns=_COLUMNS)
    ece = float(np.sum(W[keep] * np.abs(freq - mean_p)) / W.sum())
    brier = float(np.sum(w * (p - y) ** 2) / w.sum())
    table.attrs.update({"ece": ece, "brier": brier, "n_pairs": int(p.size), "n_positive": int(y.sum()), "n_bins": n_bins})
    return Reliability(table, ece, brier)


def _encode(train: RatingsData, test: Any, unknown: str) -> tuple[np.ndarray, np.ndarray, int]:
    """Test pairs as the fit's (user, item) indices, and the number of unknown pairs dropped."""
    if isinstance(test, RatingsData):
        if test.users.equals(train.users) and test.items.equals(train.items):
            return np.asarray(test.user_idx, np.int64), np.asarray(test.item_idx, np.int64), 0
        user_raw, item_raw = test.users.to_raw(test.user_idx), test.items.to_raw(test.item_idx)
    elif isinstance(test, pd.DataFrame):
        for column in ("user", "item"):
            if column not in test.columns:
                raise ValueError(f"test column {column!r} not found; the frame has columns {list(test.columns)!r}")
        user_raw, item_raw = test["user"].to_numpy(), test["item"].to_numpy()
    else:
        raise TypeError(
            f"test must be a RatingsData or a pandas DataFrame with columns user and item, got {type(test).__name__}"
        )
    uidx, iidx, keep = index_pairs(train, user_raw, item_raw, unknown, "test pair(s)")
    return uidx[keep], iidx[keep], int((~keep).sum())


def p_chosen_mean(view: ModelView, u: int, items: np.ndarray) -> np.ndarray:
    """Posterior mean of clip(eta, 0, 1) of user ``u`` and ``items``."""
    a, bias = view.arrays, view.has_bias
    eta = latent_scores_per_draw(
        a.U, a.V, np.full(len(items), u), items,
        mu=a.mu if bias else None, user_bias=a.user_bias if bias else None, item_bias=a.item_bias if bias else None,
    )
    return np.clip(eta, 0.0, 1.0).mean(axis=0)  # type: ignore[no-any-return]


#: per user: (P(chosen) of its scored pairs, their weights, its number of held-out choices) -> probabilities
PerUser = Callable[[np.ndarray, np.ndarray, int], np.ndarray]


def held_out_choices(
    fit: FitResult,
    test: RatingsData | pd.DataFrame,
    *,
    negatives: int | None = None,
    unknown: str = "raise",
    rng: np.random.Generator | None = None,
    per_user: PerUser | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
    """Score the held-out pairs of `choice_reliability`: (P(chosen), chosen 0/1, weights, counts).

    ``per_user`` replaces each user's P(chosen) (e.g. by `bayesmf.choice_horizon.chosen_within`);
    the counts are ``n_users``, ``n_unknown_dropped``, ``n_test_in_train``, ``negatives``.
    """
    view = model_view(fit)
    train = fit.train
    rng = generator(rng)
    uidx, iidx, n_unknown = _encode(train, test, unknown)
    unchosen = UnratedItems(train)
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    in_train = 0
    for u in np.unique(uidx).tolist():
        free = unchosen(u)
        items = np.unique(iidx[uidx == u])
        positive = items[free[items]]
        in_train += len(items) - len(positive)
        if len(positive) == 0:
            continue
        free[positive] = False
        pool = np.flatnonzero(free)
        weight = 1.0
        if negatives is not None and len(pool) > negatives:
            weight = len(pool) / negatives
            pool = np.sort(rng.choice(pool, size=negatives, replace=False))
        both = np.concatenate([positive, pool])
        y = np.concatenate([np.ones(len(positive)), np.zeros(len(pool))])
        w = np.concatenate([np.ones(len(positive)), np.full(len(pool), weight)])
        p = p_chosen_mean(view, u, both)
        parts.append((p if per_user is None else per_user(p, w, len(positive)), y, w))
    if not parts:
        raise ValueError("no held-out choice left: every test pair is unknown or was chosen in training")
    p, y, w = (np.concatenate(c) for c in zip(*parts, strict=True))
    counts = {"n_users": len(parts), "n_unknown_dropped": n_unknown, "n_test_in_train": in_train, "negatives": negatives}
    return p, y, w, counts


def chosen_within(scores: Any, n_next: float, weights: Any = None) -> np.ndarray:
    r"""One user's :math:`\min(1, n\, q_j / \sum_k w_k q_k)` over all their candidates (`bayesmf.choice_horizon`).

    Parameters
    ----------
    scores : array_like of float
        :math:`q` of every candidate item of the user (>= 0), or of a weighted sample of
        them.
    n_next : float
        The horizon: how many more items the user will choose (> 0).
    weights : array_like of float, optional
        Weights that make :math:`\sum_k w_k q_k` the sum over all candidates (sampled
        negatives); None: all 1.

    Returns
    -------
    numpy.ndarray
        One probability per score, in [0, 1] (all 0 when every score is 0).
    """
    q = np.asarray(scores, dtype=np.float64)
    w = np.ones_like(q) if weights is None else np.asarray(weights, dtype=np.float64)
    total = float(np.sum(w * q))
    if total <= 0:
        return np.zeros_like(q)
    return np.minimum(1.0, n_next * q / total)  # type: ignore[no-any-return]


def horizon_probabilities(calibration: ChoiceCalibrator | None, horizon: str | float | None) -> PerUser | None:
    """Build the ``per_user`` of `held_out_choices` that `choice_reliability` judges (its ``calibration``, ``horizon``).

    None when both are None (P(chosen) as fitted); a bad ``horizon`` is an error naming it.
    """
    if isinstance(horizon, str) and horizon != "held-out":
        raise ValueError(f"horizon must be 'held-out', a number of choices > 0 or None, got {horizon!r}")
    fixed = None if horizon is None or horizon == "held-out" else validate_positive("horizon", horizon)
    if calibration is None and horizon is None:
        return None

    def per_user(p: np.ndarray, w: np.ndarray, n_held_out: int) -> np.ndarray:
        q = p if calibration is None else calibration(p)
        if horizon is None:
            return q
        return chosen_within(q, n_held_out if fixed is None else fixed, w)

    return per_user


def choice_reliability(
    fit: FitResult,
    test: RatingsData | pd.DataFrame,
    n_bins: int = 10,
    *,
    negatives: int | None = None,
    unknown: str = "raise",
    random_seed: SeedLike = None,
    calibration: ChoiceCalibrator | None = None,
    horizon: str | float | None = None,
) -> Reliability:
    """Reliability of an implicit-feedback fit's P(chosen) on held-out choices (module docstring).

    Parameters
    ----------
    fit : FitResult
        A fit of ``PMF(likelihood="implicit")``.
    test : RatingsData or pandas.DataFrame
        Held-out choices: every pair counts as chosen, whatever its value (e.g. the test
        ratings of a split, or ``as_implicit`` of them); a frame needs columns ``user``
        and ``item`` (raw ids).
    n_bins : int
        Equal-width bins of [0, 1].
    negatives : int, optional
        None: every unchosen pair of each test user. An int: that many per user, drawn
        without replacement (seeded), weighted to stand for all of them.
    unknown : {"raise", "drop"}
        Test pairs whose user or item the fit does not know: an error naming them, or
        dropped and counted.
    random_seed : int or numpy.random.Generator, optional
        Seeds the sampled negatives.
    calibration : ChoiceCalibrator, optional
        Judge the calibrated P(chosen) instead (`bayesmf.choice_horizon`); without a
        ``horizon``, the calibrator's own level.
    horizon : "held-out" or float, optional
        Judge P(item among the user's next n choices) (`bayesmf.choice_horizon.chosen_within`):
        ``"held-out"``: n = the user's number of held-out choices; a number: that n for
        every user. None: P(chosen) as it is.

    Returns
    -------
    Reliability
        As `reliability_table`; ``table.attrs`` also hold ``n_users``, ``n_unknown_dropped``,
        ``n_test_in_train``, ``negatives`` and ``horizon``.

    Raises
    ------
    ValueError
        ``fit`` is not implicit feedback, a bad option, or no held-out choice left.
    bayesmf.data.UnknownIdError
        Unknown ids with ``unknown="raise"``.
    """
    view = model_view(fit)
    if not view.implicit:
        raise ValueError(
            f"choice_reliability needs an implicit-feedback fit (PMF(likelihood='implicit')), got "
            f"likelihood={getattr(fit.spec, 'likelihood', None)!r}; for ratings see bayesmf.evaluation.calibration_table"
        )
    validate_choice("unknown", unknown, _UNKNOWN)
    n_bins = validate_positive_int("n_bins", n_bins)
    if negatives is not None:
        negatives = validate_positive_int("negatives", negatives)
    per_user = horizon_probabilities(calibration, horizon)
    p, y, w, counts = held_out_choices(
        fit, test, negatives=negatives, unknown=unknown, rng=generator(random_seed), per_user=per_user
    )
    out = reliability_table(p, y, w, n_bins)
    out.table.attrs.update({**counts, "horizon": horizon})
    return out


def plot_choice_reliability(
    reliability: Reliability, ax: Axes | None = None, label: str | None = None
) -> Axes:
    """Reliability curve (observed frequency against mean P(chosen), +-2 se) with the diagonal.

    Parameters
    ----------
    reliability : Reliability
        From `choice_reliability` or `reliability_table`.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on (None: a new figure).
    label : str, optional
        Legend label of the curve (ECE and Brier score are appended).

    Returns
    -------
    matplotlib.axes.Axes
        The axes, titled and labelled.
    """
    from bayesmf.plots import _axes

    ax = _axes(ax, (5.0, 5.0))
    t = reliability.table
    text = f"ECE {reliability.ece:.3g}, Brier {reliability.brier:.3g}"
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="calibrated")
    ax.errorbar(t["mean_predicted"], t["observed"], yerr=2 * t["se"], marker="o", capsize=3,
                label=f"{label}: {text}" if label else text)
    ax.set_xlabel("mean predicted P(chosen) in bin")
    ax.set_ylabel("observed frequency of held-out choices")
    ax.set_title("Reliability of P(chosen)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(loc="upper left")
    return ax
