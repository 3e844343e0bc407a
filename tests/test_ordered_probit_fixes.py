"""The ordered probit outside the sampler: the joint recommender's level probabilities and the MAP start."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from bayesmf import PMF
from bayesmf.inference.starts import map_start
from bayesmf.joint import recommend_joint
from bayesmf.link import initial_cutpoints, level_codes
from bayesmf.predict import predict
from tests.helpers import fake_result, fake_train
from tests.test_joint import N_ITEMS, N_USERS, _choice, _eta, _unseen

PROBIT = PMF(n_factors=2, likelihood="ordinal", link="probit")


def test_joint_scores_of_an_ordered_probit_fit_use_probit_level_probabilities() -> None:
    """P(r >= 4) of the rating fit is 1 - Phi(c_3 - eta) per draw (levels 1..5), as `predict` gives.

    The ordered logistic's 1 - logistic(c_3 - eta) differs by more than 0.05 for some item,
    so the check fails if the link is dropped.
    """
    train = fake_train(N_USERS, N_ITEMS, density=0.25, seed=5)
    rating = fake_result(PROBIT, train=train, n_chains=2, n_draws=40, seed=6)
    choice = _choice(train)
    out = recommend_joint(choice, rating, [100, 101], n=4, threshold=4.0, random_seed=0)
    np.testing.assert_allclose(out["p_at_least"], predict(rating, out[["user", "item"]], threshold=4.0)["p_at_least"],
                               rtol=1e-10)
    items = _unseen(rating, 0)
    a = rating.arrays()
    eta = a.user_bias[:, [0]] + a.item_bias[:, items] + np.einsum(
        "sjk,sk->sj", a.V[:, items].astype(float), a.U[:, 0].astype(float))
    probit = stats.norm.sf(a.cutpoints[:, [2]] - eta)
    logistic = stats.logistic.sf(a.cutpoints[:, [2]] - eta)
    assert np.max(np.abs(probit.mean(axis=0) - logistic.mean(axis=0))) > 0.05
    joint = np.clip(_eta(choice, 0, items), 0, 1) * probit  # equal draw counts: draw s with draw s
    np.testing.assert_allclose(out["mean"][:4], np.sort(joint.mean(axis=0))[::-1][:4])


@pytest.mark.parametrize("seed", [0, 1])
def test_the_map_start_of_an_ordered_probit_is_on_the_probit_scale(seed: int) -> None:
    """Cutpoints at the probit quantiles of the level frequencies; factors and offsets scaled by 1/sd(r).

    The same ALS fit carried to the ordered logistic is scaled by (pi / sqrt 3) / sd(r): the
    ratio of the two starts is sqrt(3) / pi for the offsets, its square root for the factors.
    """
    train = fake_train(N_USERS, N_ITEMS, density=0.4, seed=seed)
    probit = map_start(PROBIT, train, random_seed=seed)
    logit = map_start(PMF(n_factors=2, likelihood="ordinal"), train, random_seed=seed)
    codes = level_codes(np.asarray(train.rating), train.levels)
    np.testing.assert_allclose(probit["cutpoints"], initial_cutpoints(codes, len(train.levels), "probit"))
    assert not np.allclose(probit["cutpoints"], logit["cutpoints"])
    ratio = np.sqrt(3.0) / np.pi
    np.testing.assert_allclose(probit["item_bias"], ratio * logit["item_bias"], rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(probit["U"], np.sqrt(ratio) * logit["U"], rtol=1e-6, atol=1e-12)
