"""Scores of ordinal predictions (`bayesmf.ordinal_metrics`): values, calibration, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bayesmf.binary_metrics import reliability
from bayesmf.ordinal_metrics import (
    exceedance_reliability,
    expected_rating,
    expected_rating_errors,
    level_columns,
    multiclass_log_loss,
    ordinal_scores,
    ranked_probability_score,
)

LEVELS = np.array([1.0, 2.0, 3.0, 4.0, 5.0])


def _random_probs(rng: np.random.Generator, n: int, n_levels: int = 5) -> np.ndarray:
    return rng.dirichlet(np.ones(n_levels), size=n)


def _sample(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One level index per row of ``probs``."""
    return (rng.random(len(probs))[:, None] > np.cumsum(probs, axis=1)).sum(axis=1)


def test_scores_match_their_definitions():
    """RPS, log-loss, RMSE and MAE of the expected rating against a direct loop over ratings and levels."""
    rng = np.random.default_rng(0)
    probs = _random_probs(rng, 50)
    rating = LEVELS[rng.integers(0, 5, 50)]
    rps, loss, sq, ab = 0.0, 0.0, 0.0, 0.0
    for p, r in zip(probs, rating, strict=True):
        k = int(r) - 1
        rps += sum((p[: m + 1].sum() - float(k <= m)) ** 2 for m in range(4))
        loss -= np.log(p[k])
        mean = float(p @ LEVELS)
        sq += (mean - r) ** 2
        ab += abs(mean - r)
    assert ranked_probability_score(rating, probs, LEVELS) == pytest.approx(rps / 50, rel=1e-12)
    assert multiclass_log_loss(rating, probs, LEVELS) == pytest.approx(loss / 50, rel=1e-12)
    errors = expected_rating_errors(rating, probs, LEVELS)
    assert errors["rmse"] == pytest.approx(np.sqrt(sq / 50), rel=1e-12)
    assert errors["mae"] == pytest.approx(ab / 50, rel=1e-12)
    np.testing.assert_allclose(expected_rating(probs, LEVELS), probs @ LEVELS)


def test_rps_ranks_a_near_miss_above_a_far_one_and_certainty_at_zero():
    """All mass on the observed level scores 0; one level off scores 1, two levels off 2 (log-loss cannot tell them apart)."""
    one_hot = np.eye(5)
    rating = np.array([3.0])
    assert ranked_probability_score(rating, one_hot[[2]], LEVELS) == 0.0
    assert ranked_probability_score(rating, one_hot[[3]], LEVELS) == pytest.approx(1.0)
    assert ranked_probability_score(rating, one_hot[[4]], LEVELS) == pytest.approx(2.0)


def test_scores_prefer_the_true_probabilities():
    """Proper scores: ratings drawn from p score better under p than under a flattened or sharpened p.

    20,000 ratings; the gaps are many standard errors wide (they are O(0.05) with se O(0.005)).
    """
    rng = np.random.default_rng(1)
    probs = _random_probs(rng, 20_000)
    rating = LEVELS[_sample(rng, probs)]
    flat = 0.5 * probs + 0.5 / 5
    sharp = probs**3 / (probs**3).sum(axis=1, keepdims=True)
    for score in (ranked_probability_score, multiclass_log_loss):
        truth = score(rating, probs, LEVELS)
        assert truth < score(rating, flat, LEVELS)
        assert truth < score(rating, sharp, LEVELS)


def test_exceedance_calibration_is_the_binary_table_and_can_fail():
    """P(r >= 4) calibration is binary_metrics' reliability on the events r >= 4; true p calibrated, shifted p not.

    20,000 ratings from p: ECE of p below 0.02 (its sampling noise is ~0.005); of p pushed
    toward 1 (P(r >= 4)^0.5) above 0.1.
    """
    rng = np.random.default_rng(2)
    probs = _random_probs(rng, 20_000)
    codes = _sample(rng, probs)
    rating = LEVELS[codes]
    table = exceedance_reliability(rating, probs, LEVELS, threshold=4.0)
    direct = reliability((codes >= 3).astype(float), probs[:, 3:].sum(axis=1))
    assert table.ece == pytest.approx(direct.ece) and table.brier == pytest.approx(direct.brier)
    assert table.ece < 0.02
    pushed = probs.copy()
    above = probs[:, 3:].sum(axis=1)
    pushed[:, 3:] *= (np.sqrt(above) / above)[:, None]
    pushed[:, :3] *= ((1 - np.sqrt(above)) / (1 - above))[:, None]
    assert exceedance_reliability(rating, pushed, LEVELS, threshold=4.0).ece > 0.1


def test_ordinal_scores_read_a_predict_proba_frame():
    """`ordinal_scores` finds the p_<level> columns in level order (p_10 after p_9) and returns every score."""
    rng = np.random.default_rng(3)
    levels = np.arange(1.0, 11.0)
    probs = _random_probs(rng, 40, 10)
    rating = levels[rng.integers(0, 10, 40)]
    frame = pd.DataFrame({"user": range(40), "rating": rating} | {f"p_{lv:g}": probs[:, k] for k, lv in enumerate(levels)})
    frame = frame[["user", "rating", *sorted(c for c in frame if c.startswith("p_"))]]  # p_1, p_10, p_2, ...
    cols, found = level_columns(frame)
    assert cols == [f"p_{lv:g}" for lv in levels]
    np.testing.assert_array_equal(found, levels)
    scores = ordinal_scores(frame, threshold=7)
    assert scores["rps"] == pytest.approx(ranked_probability_score(rating, probs, levels))
    assert scores["log_loss"] == pytest.approx(multiclass_log_loss(rating, probs, levels))
    assert scores["ece"] == pytest.approx(exceedance_reliability(rating, probs, levels, threshold=7).ece)
    assert set(scores.index) == {"rps", "log_loss", "rmse", "mae", "ece", "brier", "n"}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"levels": [1.0, 2.0, 3.5, 4.5]}, r"regular grid, but level 3\.5 follows 2\.0"),
        ({"levels": [1.0, 3.0, 2.0]}, r"levels must increase, got 2\.0 after 3\.0"),
        ({"rating": [1.0, 2.5, 3.0]}, r"rating 2\.5 at position 1 is not one of the levels"),
        ({"probs": np.full((3, 3), 0.5)}, r"row 0 sums to 1\.5"),
        ({"probs": np.full((3, 2), 0.5)}, r"shape \(n ratings, n levels\) = \(3, 3\)"),
        ({"probs": np.array([[1.2, -0.2, 0.0]] * 3)}, r"got 1\.2 at row 0, level 1"),
    ],
)
def test_bad_input_is_named(kwargs, message):
    args = {"rating": [1.0, 2.0, 3.0], "probs": np.full((3, 3), 1.0 / 3.0), "levels": [1.0, 2.0, 3.0]} | kwargs
    if len(args["levels"]) != 3 and "probs" not in kwargs:
        args["probs"] = np.full((3, len(args["levels"])), 1.0 / len(args["levels"]))
        args["rating"] = [1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match=message):
        ranked_probability_score(args["rating"], args["probs"], args["levels"])


@pytest.mark.parametrize("threshold", [0.0, 1.0, 3.5, 6.0])
def test_a_threshold_that_is_not_a_level_above_the_lowest_is_named(threshold):
    probs = np.full((3, 5), 0.2)
    with pytest.raises(ValueError, match=rf"threshold={threshold!r} must be one of the levels above the lowest"):
        exceedance_reliability([1.0, 2.0, 3.0], probs, LEVELS, threshold=threshold)


def test_frames_without_level_columns_or_ratings_are_refused():
    with pytest.raises(ValueError, match="p_<level>"):
        ordinal_scores(pd.DataFrame({"rating": [1.0], "mean": [2.0]}))
    with pytest.raises(ValueError, match="no column 'rating'"):
        ordinal_scores(pd.DataFrame({"p_1": [0.5], "p_2": [0.5]}))
