"""P(chosen) with a horizon (bayesmf.choice_horizon): the isotonic map, the horizon, the learning route."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bayesmf import PMF, as_implicit, simulate
from bayesmf.choice_horizon import (
    ChoiceCalibrator,
    chosen_within,
    isotonic_calibrator,
    learn_choice_calibration,
    p_chosen_within,
)
from tests.helpers import fake_result


def test_the_isotonic_map_recovers_a_planted_monotone_curve():
    # the truth is 0.6 p^2; over 30 seeds the largest error on [0.1, 0.9] was 0.011-0.029
    rng = np.random.default_rng(0)
    p = rng.random(100_000)
    y = rng.random(p.size) < 0.6 * p**2
    g = isotonic_calibrator(p, y)
    x = np.linspace(0.1, 0.9, 81)
    assert np.abs(g(x) - 0.6 * x**2).max() < 0.06
    assert np.abs(x - 0.6 * x**2).max() > 0.3  # the identity would fail the bound
    assert np.all(np.diff(g(np.linspace(0, 1, 1001))) >= 0)
    assert g.info == {"n_pairs": 100_000, "n_choices": int(y.sum())}


def test_pooled_adjacent_violators_on_a_hand_example():
    # 0.1 -> 1 and 0.2 -> 0 violate the order: pooled to 0.5 at their mean 0.15
    g = isotonic_calibrator([0.1, 0.2, 0.3, 0.3], [1, 0, 1, 1])
    np.testing.assert_allclose(g.knots, [0.15, 0.3])
    np.testing.assert_allclose(g.values, [0.5, 1.0])
    np.testing.assert_allclose(g([0.0, 0.15, 0.225, 0.3, 1.0]), [0.5, 0.5, 0.75, 1.0, 1.0])


def test_weights_count_as_repeated_pairs_and_equal_predictions_share_a_value():
    rng = np.random.default_rng(1)
    p = np.round(rng.random(500), 2)  # many ties
    y = rng.random(500) < p
    w = rng.integers(1, 4, 500)
    weighted = isotonic_calibrator(p, y, w)
    repeated = isotonic_calibrator(np.repeat(p, w), np.repeat(y, w))
    np.testing.assert_allclose(weighted.knots, repeated.knots)
    np.testing.assert_allclose(weighted.values, repeated.values)
    assert len(np.unique(weighted(p[p == p[0]]))) == 1


def test_it_round_trips_through_a_dict_and_a_file(tmp_path):
    g = isotonic_calibrator([0.1, 0.4, 0.7, 0.9], [0, 0, 1, 1])
    g.info["holdout"] = 0.2
    back = ChoiceCalibrator.from_dict(g.to_dict())
    np.testing.assert_array_equal(back.knots, g.knots)
    np.testing.assert_array_equal(back.values, g.values)
    assert back.info == g.info
    path = tmp_path / "cal.json"
    g.save(path)
    np.testing.assert_array_equal(ChoiceCalibrator.load(path).values, g.values)
    before = path.read_text()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        g.save(path)
    assert path.read_text() == before
    g.save(path, overwrite=True)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match=r"predicted\[1\] = 1.5"):
        isotonic_calibrator([0.2, 1.5], [0, 1])
    with pytest.raises(ValueError, match=r"observed\[0\] = 0.5"):
        isotonic_calibrator([0.2], [0.5])
    with pytest.raises(ValueError, match=r"weights\[0\] = 0.0"):
        isotonic_calibrator([0.2], [1], [0.0])
    with pytest.raises(ValueError, match="one length"):
        isotonic_calibrator([0.2, 0.3], [1])
    with pytest.raises(ValueError, match=r"knots\[0\] = 0.2 must be greater"):
        ChoiceCalibrator(np.array([0.2, 0.2]), np.array([0.1, 0.2]))
    with pytest.raises(ValueError, match=r"values\[0\] = 0.1 must be at least"):
        ChoiceCalibrator(np.array([0.2, 0.3]), np.array([0.2, 0.1]))
    with pytest.raises(ValueError, match="missing"):
        ChoiceCalibrator.from_dict({"knots": [0.5]})
    g = isotonic_calibrator([0.1, 0.9], [0, 1])
    with pytest.raises(ValueError, match=r"p_chosen\[0\] = nan"):
        g([np.nan])
    with pytest.raises(ValueError, match="must be PMF"):
        learn_choice_calibration(PMF(), as_implicit(simulate(5, 5, 1, density=0.5, seed=0).data))
    with pytest.raises(ValueError, match="holdout"):
        learn_choice_calibration(PMF(likelihood="implicit"), as_implicit(simulate(5, 5, 1, density=0.5, seed=0).data), 1.0)


def test_chosen_within_spreads_n_choices_over_the_candidates():
    q = np.array([0.1, 0.3, 0.6])
    np.testing.assert_allclose(chosen_within(q, 1), q)
    np.testing.assert_allclose(chosen_within(q, 2), [0.2, 0.6, 1.0])  # capped at 1
    # a sample of candidates weighted to stand for all: the same as the whole set
    whole = np.array([0.1, 0.2, 0.2, 0.2, 0.3])
    np.testing.assert_allclose(chosen_within([0.1, 0.2, 0.3], 0.5, [1, 3, 1]), 0.5 * np.array([0.1, 0.2, 0.3]) / whole.sum())
    np.testing.assert_array_equal(chosen_within(np.zeros(3), 2), np.zeros(3))


# fits this short may fail their verdict, and warn; what is tested here is not their mixing
NOT_CONVERGED = pytest.mark.filterwarnings("ignore::bayesmf.ConvergenceWarning")


@pytest.fixture(scope="module")
def small():
    """Simulated choices of 40 users x 30 items, a short implicit Gibbs fit, held-out pairs."""
    data = as_implicit(simulate(n_users=40, n_items=30, n_factors=2, density=0.35, seed=2).data)
    model = PMF(n_factors=2, likelihood="implicit")
    fit = model.fit(data, draws=60, tune=40, chains=2, random_seed=0, progressbar=False)
    return model, data, fit


@NOT_CONVERGED
def test_learning_holds_out_a_share_and_is_reproducible(small):
    model, data, _ = small
    kwargs = {"draws": 60, "tune": 40, "chains": 2, "progressbar": False}
    a = learn_choice_calibration(model, data, 0.25, random_seed=5, **kwargs)
    b = learn_choice_calibration(model, data, 0.25, random_seed=5, **kwargs)
    np.testing.assert_array_equal(a.knots, b.knots)
    np.testing.assert_array_equal(a.values, b.values)
    assert a.info["holdout"] == 0.25 and "verdict" in a.info
    assert a.info["n_choices"] == round(0.25 * data.n_ratings)
    assert np.all(np.diff(a.values) >= 0)


@NOT_CONVERGED
def test_p_chosen_within_lists_every_unchosen_item_and_sums_to_the_horizon(small):
    _, data, fit = small
    users = data.users.classes[:3].tolist()
    out = p_chosen_within(fit, 2.0, users)
    assert list(out.columns) == ["user", "item", "p_chosen", "p_within"]
    for u, rows in out.groupby("user", sort=False):
        chosen = set(data.items.to_raw(data.item_idx[data.user_idx == data.users.to_index([u])[0]]).tolist())
        assert set(rows["item"].tolist()) == set(data.items.classes.tolist()) - chosen
        assert rows["p_within"].is_monotonic_decreasing
        if rows["p_within"].max() < 1:
            assert rows["p_within"].sum() == pytest.approx(2.0)
    g = isotonic_calibrator([0.0, 1.0], [0, 1])  # the identity: the same numbers
    pd.testing.assert_frame_equal(p_chosen_within(fit, 2.0, users, g), out)
    # one horizon per user; a top-k cut keeps the probabilities spread over every item
    per_user = p_chosen_within(fit, {users[0]: 2.0, users[1]: 4.0}, users[:2], top=3)
    assert per_user.groupby("user").size().tolist() == [3, 3]
    first = out[out["user"] == users[0]].head(3).reset_index(drop=True)
    pd.testing.assert_frame_equal(per_user[per_user["user"] == users[0]].reset_index(drop=True), first)
    second = p_chosen_within(fit, 4.0, users[1]).head(3)  # a single id
    np.testing.assert_allclose(per_user[per_user["user"] == users[1]]["p_within"], second["p_within"])
    with pytest.raises(ValueError, match="n_next must be a finite number > 0, got 0"):
        p_chosen_within(fit, 0, users)
    with pytest.raises(ValueError, match=r"no horizon for user\(s\)"):
        p_chosen_within(fit, {users[0]: 2.0}, users[:2])
    with pytest.raises(ValueError, match=r"n_next\[.*\] must be a finite number > 0, got nan"):
        p_chosen_within(fit, pd.Series({users[0]: np.nan}), users[:1])
    with pytest.raises(ValueError, match="top"):
        p_chosen_within(fit, 2.0, users, top=0)
    with pytest.raises(KeyError):
        p_chosen_within(fit, 2.0, ["no such user"])
    with pytest.raises(ValueError, match="implicit-feedback fit"):
        p_chosen_within(fake_result(), 2.0)
