"""The HPF Gibbs sampler of ``benchmarks/_hpf.py`` and its benchmark ``benchmarks/bench_hpf.py``.

- planted truth: data simulated from HPF; the posterior-mean rates must track the true rates
  far better than the popularity (rank-1) fit does, and a sampler whose multinomial
  allocation ignores theta and beta (z spread uniformly over the factors) must miss the bound;
- simulation-based calibration of the user-side blocks (allocation, theta | z, xi and
  xi | theta) with the items' factors fixed; a wrong Gamma shape or rate must fail it;
- the benchmark's ``--quick`` run.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import numba
import numpy as np
import pytest
from scipy import stats

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))

import _hpf  # noqa: E402


# -- planted truth -------------------------------------------------------------------------------
def simulate(seed: int, n_users: int = 200, n_items: int = 150, rank: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """True rates and counts from HPF (a = c = 0.3; a' = c' = 3, b' = d' = 1: activity and popularity spread moderately)."""
    rng = np.random.default_rng(seed)
    xi = rng.gamma(3.0, 1 / 3.0, n_users)
    eta = rng.gamma(3.0, 1 / 3.0, n_items)
    theta = rng.gamma(0.3, size=(n_users, rank)) / xi[:, None]
    beta = rng.gamma(0.3, size=(n_items, rank)) / eta[:, None]
    rates = theta @ beta.T
    return rates, rng.poisson(rates)


def planted_correlations(seed: int) -> tuple[float, float]:
    """(HPF, popularity) Pearson correlations with the true rates over every pair of one simulated set."""
    rates, counts = simulate(seed)
    u, i = np.nonzero(counts)
    fit = _hpf.fit_hpf(u, i, counts[u, i], counts.shape[0], counts.shape[1], rank=3, sweeps=600, burn=300, thin=3, seed=seed, chains=1)
    popularity = np.outer(counts.sum(axis=1), counts.sum(axis=0)) / counts.sum()  # rank-1 Poisson fit
    return (float(np.corrcoef(fit.scores.ravel(), rates.ravel())[0, 1]),
            float(np.corrcoef(popularity.ravel(), rates.ravel())[0, 1]))


#: Over seeds 10-29 (development run), HPF's correlation ranged 0.991-0.999, the popularity
#: fit's and the uniform-allocation sampler's 0.75-0.95: the bound sits in the gap.
PLANTED_BOUND = 0.975


@numba.njit
def uniform_allocation(users: np.ndarray, items: np.ndarray, counts: np.ndarray, theta: np.ndarray,
                       beta: np.ndarray, uniforms: np.ndarray, z_user: np.ndarray,
                       z_item: np.ndarray) -> float:  # pragma: no cover (numba)
    """A broken `_hpf.allocate`: every count to a factor chosen uniformly, whatever theta and beta."""
    rank, pos = theta.shape[1], 0
    for n in range(users.shape[0]):
        for _ in range(counts[n]):
            k = min(int(uniforms[pos] * rank), rank - 1)
            pos += 1
            z_user[users[n], k] += 1.0
            z_item[items[n], k] += 1.0
    return 0.0


def test_planted_truth_rates_track_the_truth_beyond_popularity() -> None:
    hpf, popularity = planted_correlations(seed=11)
    assert popularity < PLANTED_BOUND  # the data has structure beyond activity x popularity
    assert hpf >= PLANTED_BOUND, (hpf, popularity)


def test_planted_truth_bound_rejects_a_sampler_that_ignores_the_factors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_hpf, "allocate", uniform_allocation)
    hpf, popularity = planted_correlations(seed=11)
    assert hpf < PLANTED_BOUND, (hpf, popularity)


# -- SBC of the user-side blocks -----------------------------------------------------------------
SBC_PRIOR = _hpf.Prior(a=0.5, a_prime=2.0, b_prime=1.0)  # any prior will do; this one keeps counts small
SBC_BINS = 10
#: family-wise false-alarm rate of the SBC check over its K + 1 uniformity tests
SBC_ALPHA = 1e-4


def sbc_statistics(seed: int, draw_factors: Callable[..., np.ndarray] = _hpf.draw_factors,
                   draw_scales: Callable[..., np.ndarray] = _hpf.draw_scales, n_users: int = 1000,
                   n_items: int = 20, rank: int = 3, burn: int = 100, draws: int = 99,
                   thin: int = 5) -> np.ndarray:
    """Chi-square statistics (one per theta_.k and for xi) of the SBC ranks of every simulated user.

    The items' factors are fixed and known, so users are independent: each row is one SBC
    replication with its own (xi_u, theta_u) drawn from the prior and its counts from the
    model. One Gibbs run of the user-side blocks (started from another prior draw) gives
    every user's posterior draws; the rank of the truth among ``draws`` thinned draws is
    uniform on 0..draws when the blocks are right.
    """
    p = SBC_PRIOR
    rng = np.random.default_rng(seed)
    beta = rng.gamma(1.0, 0.5, size=(n_items, rank))

    def prior_draw() -> tuple[np.ndarray, np.ndarray]:
        xi = rng.gamma(p.a_prime, p.b_prime / p.a_prime, n_users)
        return rng.gamma(p.a, size=(n_users, rank)) / xi[:, None], xi

    theta_true, xi_true = prior_draw()
    counts = rng.poisson(theta_true @ beta.T)
    u, i = np.nonzero(counts)
    y = counts[u, i].astype(np.int64)
    theta, xi = prior_draw()
    z_user, z_item = np.zeros((n_users, rank)), np.zeros((n_items, rank))
    below = np.zeros((n_users, rank + 1))
    for sweep in range(burn + draws * thin):
        z_user[:] = 0.0
        _hpf.allocate(u, i, y, theta, beta, rng.random(int(y.sum())), z_user, z_item)
        theta = draw_factors(rng, p.a, z_user, xi, beta.sum(axis=0))
        xi = draw_scales(rng, p.a_prime, p.a_prime / p.b_prime, rank, p.a, theta)
        if sweep >= burn and (sweep - burn) % thin == thin - 1:
            below += np.column_stack([theta < theta_true, xi < xi_true])
    bins = np.floor(below * SBC_BINS / (draws + 1)).astype(np.int64)
    expected = n_users / SBC_BINS
    return np.array([((np.bincount(bins[:, j], minlength=SBC_BINS) - expected) ** 2 / expected).sum()
                     for j in range(rank + 1)])


def sbc_bound(rank: int = 3) -> float:
    return float(stats.chi2.ppf(1 - SBC_ALPHA / (rank + 1), SBC_BINS - 1))


def test_sbc_user_blocks_are_calibrated() -> None:
    chi2 = sbc_statistics(seed=5)
    assert np.all(chi2 < sbc_bound()), chi2


def _shape_missing_k(rng: np.random.Generator, shape: float, rate: float, rank: int, prior_shape: float,
                     factors: np.ndarray) -> np.ndarray:
    """A broken `_hpf.draw_scales`: shape a' instead of a' + K a."""
    return rng.gamma(shape, size=factors.shape[0]) / (rate + factors.sum(axis=1))


def _rate_missing_sums(rng: np.random.Generator, shape: float, z: np.ndarray, scale_rate: np.ndarray,
                       other_sums: np.ndarray) -> np.ndarray:
    """A broken `_hpf.draw_factors`: rate xi_u + 0.8 sum_i beta_ik instead of xi_u + sum_i beta_ik."""
    return rng.gamma(shape + z) / (scale_rate[:, None] + 0.8 * other_sums[None, :])


@pytest.mark.parametrize("broken", ["scales", "factors"])
def test_sbc_fails_with_a_wrong_gamma_shape_or_rate(broken: str) -> None:
    kwargs = {"draw_scales": _shape_missing_k} if broken == "scales" else {"draw_factors": _rate_missing_sums}
    chi2 = sbc_statistics(seed=5, **kwargs)
    assert chi2.max() > sbc_bound(), chi2


def test_fit_is_reproducible_and_checks_its_input() -> None:
    _, counts = simulate(3, n_users=30, n_items=20, rank=2)
    u, i = np.nonzero(counts)
    one = _hpf.fit_hpf(u, i, counts[u, i], 30, 20, rank=2, sweeps=40, burn=20, thin=2, seed=4, chains=2, n_monitor=5)
    two = _hpf.fit_hpf(u, i, counts[u, i], 30, 20, rank=2, sweeps=40, burn=20, thin=2, seed=4, chains=2, n_monitor=5)
    np.testing.assert_array_equal(one.scores, two.scores)
    assert one.loglik.shape == (2, 10) and one.rates.shape == (2, 10, 5)
    assert one.check()["verdict"] in ("pass", "FAIL")
    longer = _hpf.fit_hpf(u, i, counts[u, i], 30, 20, rank=2, sweeps=40, burn=20, thin=2, seed=4, chains=2, n_monitor=5,
                          extensions=2)  # 10 kept draws per chain cannot reach ESS 400: extended twice
    assert longer.settings["sweeps_run"] == 20 + 3 * 20 and longer.loglik.shape == (2, 30)
    np.testing.assert_array_equal(longer.loglik[:, :10], one.loglik)  # the same chains, continued
    # a duplicated pair counts the sum: the same fit as the summed input
    dup = _hpf.fit_hpf(np.r_[u, u[:1]], np.r_[i, i[:1]], np.r_[counts[u, i] - np.eye(len(u))[0], 1], 30, 20, rank=2,
                       sweeps=40, burn=20, thin=2, seed=4, chains=2, n_monitor=5)
    np.testing.assert_array_equal(dup.scores, one.scores)
    with pytest.raises(ValueError, match="whole numbers"):
        _hpf.fit_hpf(u, i, counts[u, i] + 0.5, 30, 20, rank=2, sweeps=40, burn=20)
    with pytest.raises(ValueError, match="no draw is kept"):
        _hpf.fit_hpf(u, i, counts[u, i], 30, 20, rank=2, sweeps=40, burn=39, thin=2)


# -- the benchmark script ------------------------------------------------------------------------
@pytest.mark.slow  # ~4 s: warm-up plus two bayesmf Gibbs fits and four HPF fits
def test_bench_quick_prints_every_system_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    import bench_hpf

    results, out = tmp_path / "RESULTS.md", tmp_path / "out.json"
    assert bench_hpf.main(["--quick", "--results", str(results), "--json", str(out)]) == 0
    assert not results.exists()  # --quick never writes
    text = capsys.readouterr().out
    section = text.split("<!-- bench_hpf.py:begin -->", 1)[1].split("<!-- bench_hpf.py:end -->", 1)[0]
    assert "QUICK (tiny simulated set" in section
    records = json.loads(out.read_text())
    systems = ["popularity", "choice", "hpf-2", "hpf-4"]
    assert [r["system"] for r in records] == systems
    for rec in records:
        assert f"| tiny | k1 | {rec['system']} | {rec['n_users']} | " in section
        assert 0.0 <= rec["ndcg"][0] <= 1.0 and rec["diagnose"] in ("pass", "FAIL", "n/a")
    assert records[1]["d_ndcg"] == [0.0, 0.0]  # the choice model against itself
    assert all("max_rhat" in r for r in records[2:])


def test_bench_table_means_over_folds() -> None:
    import bench_hpf

    def rec(fold: str, system: str, ndcg: float, verdict: str) -> dict[str, object]:
        out = {"dataset": "ml-100k", "fold": fold, "system": system, "n_users": 10, "fit_s": 1.0, "diagnose": verdict,
               "ndcg": (ndcg, 0.01), "precision": (0.1, 0.01), "recall": (0.2, 0.01), "d_ndcg": (ndcg - 0.3, 0.01)}
        return out | ({"max_rhat": 1.0, "min_ess": 500.0, "sweeps_run": 3000} if system.startswith("hpf") else {})

    records = [rec("u1", "choice", 0.3, "pass"), rec("u1", "hpf-10", 0.4, "pass"),
               rec("u2", "choice", 0.3, "pass"), rec("u2", "hpf-10", 0.2, "FAIL")]
    lines = bench_hpf.table(records)
    mean = next(line for line in lines if "**mean** | hpf-10" in line)
    assert "| 0.3000 ± 0.1000 |" in mean and "| 1/2 pass |" in mean and "| 1.000 / 500 / 3000 |" in mean
    assert "| 0.0000 ± 0.1000 |" in mean  # ΔNDCG: mean of the fold deltas ± their sd / sqrt(2)
