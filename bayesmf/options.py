"""The options of the predictive path, validated once: `PredictOptions`.

`bayesmf.predict.predict`, `~bayesmf.predict.predict_draws`, `~bayesmf.predict.predict_proba`,
`bayesmf.recommend.recommend` and the calibration functions of `bayesmf.evaluation` take the
same options (``prob``, ``kind``, ``interval``, ``threshold``, ``clip``, ``unknown``,
``chunk_size``, ``random_seed``). Each builds one `PredictOptions` from its keywords, or
takes a ready one through ``options=``; the checks below run once, and every message names
the bad value. The seed follows the package's one policy (`bayesmf._seed`): an int >= 0, a
`numpy.random.Generator` or None.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from bayesmf._seed import SeedLike, base_seed, check_seed
from bayesmf._validate import (
    validate_bool,
    validate_choice,
    validate_in_scale,
    validate_positive_int,
    validate_prob,
)

__all__ = ["AUTO", "IMPLICIT_THRESHOLD", "INTERVALS", "KINDS", "UNKNOWN", "PredictOptions", "resolve_options"]

KINDS = ("predictive", "expected")
INTERVALS = ("eti", "hdi")
UNKNOWN = ("prior", "raise")
#: ``threshold="auto"``: 4.0 (stars) for a rating model, `IMPLICIT_THRESHOLD` for implicit feedback
AUTO = "auto"
#: threshold of ``"auto"`` on an implicit-feedback fit: P(P(chosen) >= 0.5)
IMPLICIT_THRESHOLD = 0.5
_STARS_THRESHOLD = 4.0


@dataclass(frozen=True)
class PredictOptions:
    r"""Validated options of a prediction (see `bayesmf.predict.predict` for their meaning).

    Parameters
    ----------
    prob : float
        Interval probability, in (0, 1).
    kind : {"predictive", "expected", "auto"}
        The rating the user would give, or the mean rating (epistemic only). ``"auto"``:
        the model's own default (`for_model`): ``"predictive"`` for ratings,
        ``"expected"`` (the score :math:`\eta`, P(chosen)) for implicit feedback.
    interval : {"eti", "hdi"}
        Equal-tailed or highest-density interval.
    threshold : float, "auto" or None
        Rating ``t`` of :math:`P(r \ge t)`; checked against the rating scale by
        `threshold_on` (the scale is the fitted result's). ``"auto"``: 4.0 for a rating
        model, 0.5 for implicit feedback (`for_model`).
    clip : bool
        Censor to the rating scale.
    unknown : {"prior", "raise"}
        Ids the model does not know: prior predictive, or an error naming them.
    chunk_size : int, optional
        Pairs per chunk (None: about 32 MB per chunk buffer).
    random_seed : int, numpy.random.Generator or None
        Seed of what is random (prior draws of unknown ids, predictive HDIs and draws).

    Raises
    ------
    ValueError, TypeError
        On a bad value; the message names it.

    Examples
    --------
    >>> opts = PredictOptions(prob=0.8, threshold=4.0, random_seed=1)
    >>> result.predict(test, options=opts)  # doctest: +SKIP
    """

    prob: float = 0.9
    kind: str = "predictive"
    interval: str = "eti"
    threshold: float | str | None = None
    clip: bool = True
    unknown: str = "prior"
    chunk_size: int | None = None
    random_seed: SeedLike = None

    def __post_init__(self) -> None:
        put = functools.partial(object.__setattr__, self)
        put("prob", validate_prob(self.prob))
        validate_choice("kind", self.kind, (*KINDS, AUTO))
        validate_choice("interval", self.interval, INTERVALS)
        threshold = self.threshold
        if threshold is not None and threshold != AUTO and (
            isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.integer, np.floating))
        ):
            raise TypeError(f"threshold must be a number on the rating scale, 'auto' or None, got {threshold!r}")
        put("clip", validate_bool("clip", self.clip))
        validate_choice("unknown", self.unknown, UNKNOWN)
        if self.chunk_size is not None:
            put("chunk_size", validate_positive_int("chunk_size", self.chunk_size))
        put("random_seed", check_seed(self.random_seed))

    def for_model(self, spec: Any) -> PredictOptions:
        r"""Return these options with the model's defaults filled in (the ``"auto"`` values).

        A rating model: ``kind`` -> ``"predictive"``, ``threshold`` -> 4.0. Implicit
        feedback (``spec.likelihood == "implicit"``): ``kind`` -> ``"expected"`` (the
        score :math:`\eta`, clipped to [0, 1] with ``clip``: P(chosen)); ``"auto"`` -> 0.5
        (the column :math:`P(\mathrm{P(chosen)} \ge 0.5)`), or None with
        ``kind="predictive"``. Binary feedback (``"bernoulli"``): the same defaults, the
        expected response being :math:`P(y = 1) = \Phi(\eta)`.

        Raises
        ------
        ValueError
            A threshold with ``kind="predictive"`` on implicit feedback:
            :math:`P(y \ge t)` of the Gaussian working model of the 0/1 preference
            :math:`y` is the probability of nothing observable.
        """
        implicit = getattr(spec, "likelihood", None) == "implicit"
        binary = implicit or getattr(spec, "likelihood", None) == "bernoulli"  # a 0/1 response
        kind = self.kind if self.kind != AUTO else ("expected" if binary else "predictive")
        threshold = self.threshold
        if threshold == AUTO:
            threshold = (None if kind == "predictive" else IMPLICIT_THRESHOLD) if binary else _STARS_THRESHOLD
        if implicit and kind == "predictive" and threshold is not None:
            raise ValueError(
                f"threshold={threshold!r} with kind='predictive' on an implicit-feedback fit: "
                "P(y >= t) of the Gaussian working model of a 0/1 preference is not the "
                "probability of anything observable; use kind='expected' (P(P(chosen) >= t)) "
                "or threshold=None"
            )
        if kind == self.kind and threshold == self.threshold:
            return self
        return dataclasses.replace(self, kind=kind, threshold=threshold)

    def replace(self, **changes: Any) -> PredictOptions:
        """Return a copy with ``changes`` applied (and validated)."""
        return dataclasses.replace(self, **changes)

    @property
    def tail(self) -> float:
        """Probability outside the interval on each side, ``(1 - prob) / 2``."""
        return (1.0 - self.prob) / 2.0

    @property
    def quantile_levels(self) -> np.ndarray:
        """The levels of the median and the equal-tailed interval: ``[0.5, tail, 1 - tail]``."""
        return np.array([0.5, self.tail, 1.0 - self.tail])

    @property
    def hdi_prob(self) -> float:
        """``prob`` when the interval is an HDI, else NaN (no HDI computed)."""
        return self.prob if self.interval == "hdi" else math.nan

    def threshold_on(self, low: float, high: float) -> float:
        """Return the threshold as a float on the scale ``[low, high]``; NaN when None."""
        if self.threshold is None:
            return math.nan
        if self.threshold == AUTO:
            raise ValueError("threshold='auto' must be resolved first (PredictOptions.for_model)")
        try:
            return validate_in_scale("threshold", self.threshold, (low, high))
        except ValueError as exc:
            raise ValueError(f"{exc}; pass a rating on the scale (or threshold=None)") from None

    def base_seed(self) -> int:
        """Return the call's 63-bit base seed (`bayesmf._seed.base_seed`; advances a Generator).

        Per-pair and per-id seeds are hashed from it, so an int seed gives the same draws for
        a pair in every function.
        """
        return base_seed(self.random_seed)


@functools.cache
def _defaults(func: Callable[..., Any]) -> dict[str, Any]:
    return {name: p.default for name, p in inspect.signature(func).parameters.items()}


def _same(a: Any, b: Any) -> bool:
    """Identity for None, bools and Generators; equal values for numbers and strings."""
    if a is b:
        return True
    if any(x is None or isinstance(x, (bool, np.bool_, np.random.Generator)) for x in (a, b)):
        return False
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return False


def resolve_options(func: Callable[..., Any], options: Any, **given: Any) -> PredictOptions:
    """Build the options of a call to ``func`` from its option keywords, or take ``options``.

    Parameters
    ----------
    func : callable
        The public function called (its signature holds the keywords' defaults).
    options : PredictOptions or None
        Options passed as one object. Its fields replace the option keywords, which must
        then be left at ``func``'s defaults (or equal the object's values).
    **given
        The option keywords of the call, by name.

    Returns
    -------
    PredictOptions

    Raises
    ------
    TypeError
        ``options`` is not a `PredictOptions`, or a keyword was changed from its default
        as well (the message names it).
    """
    if options is None:
        return PredictOptions(**given)
    if not isinstance(options, PredictOptions):
        raise TypeError(f"options must be a PredictOptions, got {type(options).__name__}")
    defaults = _defaults(func)
    for name, value in given.items():
        if not (_same(value, defaults[name]) or _same(value, getattr(options, name))):
            raise TypeError(
                f"{name}={value!r} given together with options=, whose {name} is "
                f"{getattr(options, name)!r}; pass it once (e.g. options.replace({name}=...))"
            )
    return options
