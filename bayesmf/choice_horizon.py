r"""P(chosen) with a horizon: the chance that a user picks an item among their next ``n`` choices.

An implicit-feedback fit's P(chosen), :math:`\hat p_{ij} = E[\mathrm{clip}(\eta_{ij}, 0, 1)]`,
is a score fitted to the training choices (1) and non-choices (0). It is not the
probability of a future choice: that depends on how many choices the future holds, which
the fit cannot know. On ML-100K u1 it over-predicts the held-out choices in every bin
(`bayesmf.choice_calibration`; RESULTS, "Calibration of P(chosen)"). This module makes the
horizon explicit.

* **Shape** (`learn_choice_calibration`): hold out a share of the training choices, fit the
  same model on the rest, and learn by isotonic regression (weighted pool-adjacent-violators,
  `scipy.optimize.isotonic_regression`) the non-decreasing map :math:`g` from
  :math:`\hat p` to the frequency of held-out choices (`isotonic_calibrator`). Its level is
  that of the held-out share; only its shape is used below.
* **Level** (`chosen_within`): for user :math:`i` with candidate items :math:`C_i` (every
  item they have not chosen) and a horizon of :math:`n_i` more choices,

  .. math::

      P(j \in \text{next } n_i \text{ choices}) \approx
      \min\Bigl(1,\; n_i\, \frac{q_{ij}}{\sum_{k \in C_i} q_{ik}}\Bigr), \qquad
      q_{ij} = g(\hat p_{ij}) \text{ (or } \hat p_{ij} \text{ without a calibrator)},

  i.e. the user's :math:`n_i` choices spread over the candidates in proportion to
  :math:`q` (the expected number of chosen candidates is :math:`n_i` unless capped).

Measured (ML-100K u1, horizon = each test user's number of held-out choices; RESULTS,
"P(chosen) with a horizon"): ECE 0.033 for :math:`\hat p`, 0.008 with the horizon alone,
0.002 with the learned shape and the horizon. The horizon is the user's to state ("the next
10 picks"); the shape is learned from their data. Known limit: the cap at 1 is reached by a
user's few dominant items, and those are chosen less often than that (u1: 0.99 predicted,
0.85 observed in the top bin). An exponential race, :math:`1 - e^{-\lambda_i q_{ij}}` with
:math:`\lambda_i` set so the user's probabilities sum to :math:`n_i`, saturates smoothly
but under-predicts the bins from 0.5 to 0.9 by 0.05-0.08 instead (same ECE, tried by hand).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd
from scipy.optimize import isotonic_regression

from bayesmf._seed import SeedLike, generator
from bayesmf._validate import (
    reject_first_bad,
    validate_positive,
    validate_positive_int,
    validate_prob,
    validate_probabilities,
)
from bayesmf.choice_calibration import (
    checked_outcomes,
    chosen_within,
    held_out_choices,
    p_chosen_mean,
)
from bayesmf.predictive.view import model_view
from bayesmf.split import train_test_split
from bayesmf.topn_protocol import UnratedItems

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from bayesmf.data import RatingsData
    from bayesmf.results import FitResult
    from bayesmf.spec import PMF

__all__ = ["ChoiceCalibrator", "chosen_within", "isotonic_calibrator", "learn_choice_calibration", "p_chosen_within"]


@dataclass(frozen=True)
class ChoiceCalibrator:
    """A non-decreasing map from an implicit fit's P(chosen) to the frequency of held-out choices.

    Piecewise linear through ``knots`` (increasing P(chosen): the weighted mean of each
    isotonic block) and ``values`` (the block's frequency, non-decreasing); constant
    beyond the end knots. So it keeps the order of two P(chosen) values inside the knots'
    range (strictly where the values differ).

    Attributes
    ----------
    knots, values : numpy.ndarray
        The map's points.
    info : dict
        How it was learned: ``holdout``, ``n_pairs``, ``n_choices``, ``verdict`` (the
        held-out fit's `diagnose` verdict), when known.
    """

    knots: np.ndarray
    values: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        k, v = np.asarray(self.knots, np.float64), np.asarray(self.values, np.float64)
        if k.ndim != 1 or k.size == 0 or k.shape != v.shape:
            raise ValueError(f"knots and values must be non-empty 1-d arrays of one length, got {k.shape} and {v.shape}")
        validate_probabilities("knots", k)
        validate_probabilities("values", v)
        reject_first_bad("knots", k[1:], np.diff(k) <= 0, "greater than the knot before it")
        reject_first_bad("values", v[1:], np.diff(v) < 0, "at least the value before it")
        object.__setattr__(self, "knots", k)
        object.__setattr__(self, "values", v)

    def __call__(self, p_chosen: Any) -> np.ndarray:
        """Map each P(chosen) (array_like in [0, 1]; an error names a bad one) to its calibrated value."""
        return np.interp(validate_probabilities("p_chosen", p_chosen), self.knots, self.values)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (`from_dict` reads it back exactly)."""
        return {"knots": self.knots.tolist(), "values": self.values.tolist(), "info": dict(self.info)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ChoiceCalibrator:
        """Rebuild the calibrator `to_dict` wrote."""
        missing = {"knots", "values"} - set(d)
        if missing:
            raise ValueError(f"not a ChoiceCalibrator dict: missing {sorted(missing)!r}")
        return cls(np.asarray(d["knots"]), np.asarray(d["values"]), dict(d.get("info", {})))

    def save(self, path: str | os.PathLike[str], overwrite: bool = False) -> None:
        """Write it as JSON; an existing ``path`` is an error unless ``overwrite``."""
        if os.path.exists(path) and not overwrite:
            raise FileExistsError(f"{os.fspath(path)!r} exists; pass overwrite=True to replace it")
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(self.to_dict(), fh)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ChoiceCalibrator:
        """Read what `save` wrote."""
        with open(path, encoding="utf-8") as fh:
            return cls.from_dict(json.load(fh))

    def plot(self, ax: Axes | None = None) -> Axes:
        """Plot the map against the diagonal."""
        from bayesmf.plots import _axes

        ax = _axes(ax, (5.0, 5.0))
        ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="identity")
        ax.plot(self.knots, self.values, marker=".", label="learned map")
        ax.set_xlabel("P(chosen) of the fit")
        ax.set_ylabel("frequency of held-out choices")
        ax.set_title("Calibration of P(chosen)")
        ax.legend(loc="upper left")
        return ax


def isotonic_calibrator(predicted: Any, observed: Any, weights: Any = None) -> ChoiceCalibrator:
    """Learn the non-decreasing map from predictions to outcomes (weighted isotonic regression).

    Pairs with equal predictions are pooled first (one knot per distinct value), so equal
    P(chosen) always map to one value.

    Parameters
    ----------
    predicted : array_like of float
        P(chosen) of held-out pairs, in [0, 1].
    observed : array_like
        1 if the pair was chosen (0/1 or bool).
    weights : array_like of float, optional
        Weight of each pair, finite and > 0 (e.g. inverse-probability weights of sampled
        negatives); None: all 1.

    Returns
    -------
    ChoiceCalibrator

    Raises
    ------
    ValueError
        Empty or mismatched inputs, or a bad value (named).
    """
    p, y, w = checked_outcomes(predicted, observed, weights)
    order = np.argsort(p, kind="stable")
    p, y, w = p[order], y[order], w[order]
    distinct, start = np.unique(p, return_index=True)
    W = np.add.reduceat(w, start)
    fit = isotonic_regression(np.add.reduceat(w * y, start) / W, weights=W)
    first = fit.blocks[:-1]
    knots = np.add.reduceat(W * distinct, first) / np.add.reduceat(W, first)
    return ChoiceCalibrator(knots, fit.x[first], {"n_pairs": int(p.size), "n_choices": int(y.sum())})


def learn_choice_calibration(
    model: PMF,
    data: RatingsData,
    holdout: float = 0.2,
    *,
    negatives: int | None = None,
    random_seed: SeedLike = None,
    **fit_kwargs: Any,
) -> ChoiceCalibrator:
    """Learn the shape of P(chosen) on a held-out share of the choices (module docstring).

    Parameters
    ----------
    model : PMF
        An implicit-feedback model (``PMF(likelihood="implicit")``), the one whose fit the
        calibrator will be applied to.
    data : RatingsData
        Its training choices (e.g. ``as_implicit(train)``); never modified.
    holdout : float
        Share of the pairs held out, in (0, 1).
    negatives : int, optional
        Non-chosen pairs scored per user (None: all; see `choice_reliability`).
    random_seed : int or numpy.random.Generator, optional
        Seeds the split, the fit and the sampled negatives.
    **fit_kwargs
        Passed to ``model.fit`` (``method`` defaults to ``"gibbs"``).

    Returns
    -------
    ChoiceCalibrator
        Its ``info`` holds ``holdout``, ``n_pairs``, ``n_choices`` and the held-out fit's
        ``verdict``.
    """
    from bayesmf.spec import PMF

    if not isinstance(model, PMF) or model.likelihood != "implicit":
        raise ValueError(f"model must be PMF(likelihood='implicit'), got {model!r}")
    holdout = validate_prob(holdout, "holdout")
    if negatives is not None:
        negatives = validate_positive_int("negatives", negatives)
    rng = generator(random_seed)
    split = train_test_split(data, holdout, seed=rng)
    fit_kwargs.setdefault("method", "gibbs")
    fit_kwargs.setdefault("random_seed", int(rng.integers(2**31)))
    fit = model.fit(split.train, **fit_kwargs)
    p, y, w, _ = held_out_choices(fit, split.test, negatives=negatives, rng=rng)
    cal = isotonic_calibrator(p, y, w)
    cal.info.update({"holdout": holdout, "verdict": fit.info.get("verdict")})
    return cal


def _horizons(n_next: Any, ids: list[Any]) -> list[float]:
    """One horizon per listed user: a number for all, or a mapping / Series user -> number."""
    if isinstance(n_next, (dict, pd.Series)):
        mapping = dict(n_next.items())
        missing = [u for u in ids if u not in mapping]
        if missing:
            raise ValueError(f"n_next has no horizon for user(s) {missing[:5]!r}")
        return [cast(float, validate_positive(f"n_next[{u!r}]", mapping[u])) for u in ids]
    n = cast(float, validate_positive("n_next", n_next))
    return [n] * len(ids)


def p_chosen_within(
    fit: FitResult,
    n_next: float | dict[Any, float] | pd.Series,
    users: Any = None,
    calibration: ChoiceCalibrator | None = None,
    top: int | None = None,
) -> pd.DataFrame:
    """P(item among the user's next ``n_next`` choices), for the items the user has not chosen.

    Parameters
    ----------
    fit : FitResult
        An implicit-feedback fit.
    n_next : float, or dict / pandas.Series of user id -> float
        The horizon, > 0: one for every user listed, or one per user.
    users : user id or list of user ids, optional
        Raw ids (None: every user of the fit).
    calibration : ChoiceCalibrator, optional
        The shape learned by `learn_choice_calibration` (None: P(chosen) itself).
    top : int, optional
        Keep each user's ``top`` rows (None: every unchosen item; the probabilities are
        always spread over all of them).

    Returns
    -------
    pandas.DataFrame
        ``user``, ``item``, ``p_chosen`` (the fit's posterior mean), ``p_within``; rows by
        user, then by ``p_within`` descending.

    Raises
    ------
    ValueError
        Not an implicit-feedback fit, a horizon that is not a finite number > 0 (named), a
        user without one, or ``top`` < 1.
    KeyError
        A user the fit does not know.
    """
    view = model_view(fit)
    if not view.implicit:
        raise ValueError(f"p_chosen_within needs an implicit-feedback fit, got likelihood={fit.spec.likelihood!r}")
    train = fit.train
    if users is None:
        ids = train.users.classes.tolist()
    else:
        ids = list(users) if pd.api.types.is_list_like(users) else [users]
    horizons = _horizons(n_next, ids)
    if top is not None:
        top = validate_positive_int("top", top)
    uidx = np.asarray(train.users.to_index(ids)).tolist()
    unchosen = UnratedItems(train)
    frames = []
    for raw, u, n in zip(ids, uidx, horizons, strict=True):
        items = np.flatnonzero(unchosen(u))
        p = p_chosen_mean(view, u, items)
        within = chosen_within(p if calibration is None else calibration(p), n)
        order = np.argsort(-within, kind="stable")[:top]
        frames.append(pd.DataFrame({"user": raw, "item": train.items.to_raw(items[order]),
                                    "p_chosen": p[order], "p_within": within[order]}))
    return pd.concat(frames, ignore_index=True)
