"""Hierarchical Poisson factorization (Gopalan, Hofman & Blei 2015) by Gibbs sampling: a benchmark peer.

The model (their Figure 1)::

    xi_u    ~ Gamma(a', rate a'/b')        eta_i    ~ Gamma(c', rate c'/d')
    theta_uk ~ Gamma(a, rate xi_u)         beta_ik  ~ Gamma(c, rate eta_i)
    y_ui    ~ Poisson(theta_u . beta_i)    for every (user, item) pair

Hyperparameters (`Prior`): a = a' = c = c' = 0.3 and b' = d' = 1, i.e. every Gamma shape and
the rates a'/b', c'/d' at 0.3, the settings of the paper's experiments (also hpfrec's defaults).

Gibbs (one sweep, O(nnz k + (users + items) k)): the auxiliary counts
z_ui. ~ Multinomial(y_ui, theta_uk beta_ik / sum_k theta_uk beta_ik) over the observed
(nonzero) pairs only (`allocate`, numba); then the conjugate draws

    theta_uk ~ Gamma(a + sum_i z_uik, rate xi_u + sum_i beta_ik)
    xi_u     ~ Gamma(a' + K a, rate a'/b' + sum_k theta_uk)
    beta_ik  ~ Gamma(c + sum_u z_uik, rate eta_i + sum_u theta_uk)
    eta_i    ~ Gamma(c' + K c, rate c'/d' + sum_k beta_ik)

where the sums over all items (users) of beta (theta) are computed once per half-sweep.
Every random number comes from the chain's `numpy.random.Generator` (uniforms for the
multinomials, gammas for the rest), so a seed reproduces the run.

The ranking score of a pair is the posterior mean of the rate, E[theta_u . beta_i],
averaged over the kept draws of every chain (`HPFFit.scores`). Convergence (`HPFFit.check`)
follows `bayesmf.diagnostics.diagnose`: rank-normalized split R-hat <= 1.01 and bulk and tail
ESS >= 400 for the Poisson log-likelihood of the data and the rates of randomly chosen pairs.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field

import numba
import numpy as np
import pandas as pd

__all__ = ["HPFFit", "Prior", "allocate", "draw_factors", "draw_scales", "fit_hpf", "poisson_loglik"]


@dataclass(frozen=True)
class Prior:
    """HPF's hyperparameters: shapes ``a``, ``a_prime``, ``c``, ``c_prime``; prior means ``b_prime``, ``d_prime`` of xi, eta."""

    a: float = 0.3
    a_prime: float = 0.3
    b_prime: float = 1.0
    c: float = 0.3
    c_prime: float = 0.3
    d_prime: float = 1.0


# -- the sampler's blocks ------------------------------------------------------------------------
@numba.njit(cache=True)
def allocate(users: np.ndarray, items: np.ndarray, counts: np.ndarray, theta: np.ndarray, beta: np.ndarray,
             uniforms: np.ndarray, z_user: np.ndarray, z_item: np.ndarray) -> float:  # pragma: no cover (numba)
    """Draw z_ui. ~ Multinomial(y_ui, theta_uk beta_ik / rate) for every observed pair; add into the sums.

    ``uniforms`` holds one U(0, 1) per count (``counts.sum()``); ``z_user`` (users x K) and
    ``z_item`` (items x K) receive sum_i z_uik and sum_u z_uik (the caller zeroes them).
    Returns sum over the pairs of y log(rate) - log(y!), the observed part of the Poisson
    log-likelihood at (theta, beta).
    """
    rank = theta.shape[1]
    cum = np.empty(rank)
    pos = 0
    out = 0.0
    for n in range(users.shape[0]):
        u, i, y = users[n], items[n], counts[n]
        total = 0.0
        for k in range(rank):
            total += theta[u, k] * beta[i, k]
            cum[k] = total
        out += y * math.log(total) - math.lgamma(y + 1.0)
        for _ in range(y):
            t = uniforms[pos] * total
            pos += 1
            k = 0
            while k < rank - 1 and cum[k] <= t:
                k += 1
            z_user[u, k] += 1.0
            z_item[i, k] += 1.0
    return out


@numba.njit(cache=True)
def poisson_loglik(users: np.ndarray, items: np.ndarray, counts: np.ndarray, theta: np.ndarray,
                   beta: np.ndarray) -> float:  # pragma: no cover (numba)
    """log p(y | theta, beta) of the whole matrix: observed terms minus sum_k (sum_u theta_uk)(sum_i beta_ik)."""
    out = 0.0
    for n in range(users.shape[0]):
        rate = 0.0
        for k in range(theta.shape[1]):
            rate += theta[users[n], k] * beta[items[n], k]
        out += counts[n] * math.log(rate) - math.lgamma(counts[n] + 1.0)
    total = 0.0
    for k in range(theta.shape[1]):
        total += theta[:, k].sum() * beta[:, k].sum()
    return out - total


def draw_factors(rng: np.random.Generator, shape: float, z: np.ndarray, scale_rate: np.ndarray,
                 other_sums: np.ndarray) -> np.ndarray:
    """theta_uk ~ Gamma(shape + z_uk, rate scale_rate_u + other_sums_k) (and the same for beta)."""
    return rng.gamma(shape + z) / (scale_rate[:, None] + other_sums[None, :])


def draw_scales(rng: np.random.Generator, shape: float, rate: float, rank: int, prior_shape: float,
                factors: np.ndarray) -> np.ndarray:
    """xi_u ~ Gamma(shape + K prior_shape, rate + sum_k theta_uk) (and the same for eta)."""
    return rng.gamma(shape + rank * prior_shape, size=factors.shape[0]) / (rate + factors.sum(axis=1))


# -- the fit -------------------------------------------------------------------------------------
@dataclass
class HPFFit:
    """A Gibbs fit of HPF: the posterior-mean rates and what its convergence check needs.

    ``scores``: users x items, E[theta_u . beta_i] over the kept draws of every chain;
    ``loglik``: chains x kept, log p(y | theta, beta) of each kept draw; ``rates``: chains x
    kept x monitored pairs, theta_u . beta_i of ``pairs`` (users, items); ``seconds``: wall
    time of the whole fit (every chain, one after the other, one thread).
    """

    scores: np.ndarray
    loglik: np.ndarray
    rates: np.ndarray
    pairs: tuple[np.ndarray, np.ndarray]
    seconds: float
    settings: dict[str, object] = field(default_factory=dict)

    def summary(self) -> pd.DataFrame:
        """ArviZ's R-hat and bulk / tail ESS of the log-likelihood and each monitored rate."""
        import arviz as az

        tree = az.from_dict({"posterior": {"loglik": self.loglik, "rate": self.rates}})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            table = pd.DataFrame(az.summary(tree, round_to="none"))
        return table[["r_hat", "ess_bulk", "ess_tail"]]

    def check(self, rhat_max: float = 1.01, ess_min: float = 400.0) -> dict[str, object]:
        """``verdict`` ("pass" / "FAIL"), ``max_rhat``, ``min_ess`` over the monitored scalars."""
        table = self.summary()
        max_rhat = float(table["r_hat"].max())
        min_ess = float(table[["ess_bulk", "ess_tail"]].min().min())
        ok = self.loglik.shape[0] > 1 and max_rhat <= rhat_max and min_ess >= ess_min
        return {"verdict": "pass" if ok else "FAIL", "max_rhat": max_rhat, "min_ess": min_ess,
                "loglik_rhat": float(table["r_hat"].to_numpy()[table.index.get_loc("loglik")])}


def _pairs(user_idx: np.ndarray, item_idx: np.ndarray, counts: np.ndarray, n_users: int,
           n_items: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Checked (users, items, counts) arrays, duplicate pairs summed, zero counts dropped."""
    u, i = np.asarray(user_idx, dtype=np.int64), np.asarray(item_idx, dtype=np.int64)
    y = np.asarray(counts, dtype=np.float64)
    if not (u.shape == i.shape == y.shape and u.ndim == 1):
        raise ValueError("user_idx, item_idx and counts must be 1-d arrays of one length")
    if len(u) and (u.min() < 0 or u.max() >= n_users or i.min() < 0 or i.max() >= n_items):
        raise ValueError("an index is out of range of n_users / n_items")
    if not np.all(np.isfinite(y)) or np.any(y < 0) or np.any(y != np.round(y)):
        raise ValueError("counts must be non-negative whole numbers")
    frame = pd.DataFrame({"u": u, "i": i, "y": y}).groupby(["u", "i"], sort=True, as_index=False)["y"].sum()
    frame = frame[frame["y"] > 0]
    return frame["u"].to_numpy(np.int64), frame["i"].to_numpy(np.int64), frame["y"].to_numpy(np.int64)


class _Chain:
    """One chain's generator and state (theta, xi, beta, eta), started from a draw of the prior."""

    def __init__(self, stream: np.random.SeedSequence, n_users: int, n_items: int, rank: int, prior: Prior) -> None:
        p = prior
        self.rng = rng = np.random.default_rng(stream)
        self.xi = rng.gamma(p.a_prime, p.b_prime / p.a_prime, size=n_users)
        self.eta = rng.gamma(p.c_prime, p.d_prime / p.c_prime, size=n_items)
        self.theta = rng.gamma(p.a, size=(n_users, rank)) / self.xi[:, None]
        self.beta = rng.gamma(p.c, size=(n_items, rank)) / self.eta[:, None]
        self.z_user, self.z_item = np.zeros((n_users, rank)), np.zeros((n_items, rank))

    def sweep(self, data: tuple[np.ndarray, np.ndarray, np.ndarray], p: Prior) -> None:
        """One Gibbs sweep: z | theta, beta; theta | z, xi, beta; xi | theta; beta | z, eta, theta; eta | beta."""
        users, items, y = data
        rng, rank = self.rng, self.theta.shape[1]
        self.z_user[:] = 0.0
        self.z_item[:] = 0.0
        allocate(users, items, y, self.theta, self.beta, rng.random(int(y.sum())), self.z_user, self.z_item)
        self.theta = draw_factors(rng, p.a, self.z_user, self.xi, self.beta.sum(axis=0))
        self.xi = draw_scales(rng, p.a_prime, p.a_prime / p.b_prime, rank, p.a, self.theta)
        self.beta = draw_factors(rng, p.c, self.z_item, self.eta, self.theta.sum(axis=0))
        self.eta = draw_scales(rng, p.c_prime, p.c_prime / p.d_prime, rank, p.c, self.beta)

    def run(self, data: tuple[np.ndarray, np.ndarray, np.ndarray], p: Prior, sweeps: int, thin: int,
            pairs: tuple[np.ndarray, np.ndarray], scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``sweeps`` sweeps keeping every ``thin``-th: adds theta beta^T into ``scores``; (loglik, rates) of the kept."""
        loglik, rates = [], []
        for sweep in range(sweeps):
            self.sweep(data, p)
            if sweep % thin == thin - 1:
                scores += self.theta @ self.beta.T
                loglik.append(poisson_loglik(*data, self.theta, self.beta))
                rates.append(np.einsum("nk,nk->n", self.theta[pairs[0]], self.beta[pairs[1]]))
        return np.asarray(loglik), np.asarray(rates).reshape(len(loglik), len(pairs[0]))


def fit_hpf(user_idx: np.ndarray, item_idx: np.ndarray, counts: np.ndarray, n_users: int, n_items: int,
            rank: int, sweeps: int = 2000, burn: int = 1000, thin: int = 5, seed: int = 0, chains: int = 4,
            prior: Prior = Prior(), n_monitor: int = 50, extensions: int = 0) -> HPFFit:
    """Fit HPF by Gibbs: ``chains`` chains of ``sweeps`` sweeps, the first ``burn`` dropped, every ``thin``-th kept.

    Parameters
    ----------
    user_idx, item_idx, counts : numpy.ndarray
        The observed pairs and their counts (whole numbers >= 0; a pair given twice counts
        the sum; zero counts are dropped, as every unlisted pair is a zero).
    n_users, n_items : int
        The matrix's shape.
    rank : int
        Number of factors K.
    sweeps, burn, thin : int
        Sweeps per chain, sweeps dropped at its start, the thinning of the rest.
    seed : int
        Seeds every chain (`numpy.random.SeedSequence` children) and the monitored pairs.
    chains : int
        Independent chains, each started from a draw of the prior.
    prior : Prior
        The hyperparameters.
    n_monitor : int
        Pairs drawn at random over the whole matrix whose rates `HPFFit.check` monitors.
    extensions : int
        While `HPFFit.check` fails, up to this many times, run every chain another
        ``sweeps - burn`` sweeps and keep their draws too (0: a fixed budget).

    Returns
    -------
    HPFFit
        ``settings["sweeps_run"]``: the sweeps each chain ran.
    """
    if min(rank, sweeps, thin, chains) < 1 or not 0 <= burn < sweeps or extensions < 0:
        raise ValueError(f"need rank, sweeps, thin, chains >= 1, 0 <= burn < sweeps, extensions >= 0, got "
                         f"rank={rank}, sweeps={sweeps}, burn={burn}, thin={thin}, chains={chains}, "
                         f"extensions={extensions}")
    if burn + thin > sweeps:
        raise ValueError(f"no draw is kept: burn={burn} + thin={thin} > sweeps={sweeps}")
    data = _pairs(user_idx, item_idx, counts, n_users, n_items)
    streams = np.random.SeedSequence(seed).spawn(chains + 1)
    pick = np.random.default_rng(streams[-1])
    pairs = (pick.integers(n_users, size=n_monitor), pick.integers(n_items, size=n_monitor))
    scores = np.zeros((n_users, n_items))
    start = time.perf_counter()
    state = [_Chain(streams[c], n_users, n_items, rank, prior) for c in range(chains)]
    for chain in state:
        for _ in range(burn):
            chain.sweep(data, prior)
    runs = [[chain.run(data, prior, sweeps - burn, thin, pairs, scores) for chain in state]]
    while True:
        loglik = np.concatenate([np.stack([r[c][0] for c in range(chains)]) for r in runs], axis=1)
        rates = np.concatenate([np.stack([r[c][1] for c in range(chains)]) for r in runs], axis=1)
        settings: dict[str, object] = {
            "rank": rank, "sweeps": sweeps, "burn": burn, "thin": thin, "chains": chains, "seed": seed,
            "prior": prior, "n_pairs": len(data[0]), "total_count": int(data[2].sum()),
            "sweeps_run": burn + len(runs) * (sweeps - burn)}
        fit = HPFFit(scores / loglik.size, loglik, rates, pairs, time.perf_counter() - start, settings)
        if len(runs) > extensions or fit.check()["verdict"] == "pass":
            return fit
        runs.append([chain.run(data, prior, sweeps - burn, thin, pairs, scores) for chain in state])
