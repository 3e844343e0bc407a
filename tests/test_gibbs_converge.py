"""The Gibbs sampler's run until converged (`bayesmf.inference.gibbs.converge`).

The rule, its budgets and their errors; that a run in stages makes the draws of a run of
fixed length; that its verdict is `diagnose`'s; store-backed runs; and (slow) simulation-based
calibration of runs stopped by the rule.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from bayesmf import PMF, IdEncoder, RatingsData, simulate
from bayesmf.diagnostics import summary_table
from bayesmf.exceptions import ConvergenceWarning
from bayesmf.identified import identified_quantities
from bayesmf.inference.gibbs import fit_gibbs
from bayesmf.inference.gibbs.converge import StoppingRule
from bayesmf.inference.gibbs.monitor import Monitor
from bayesmf.posterior import variable_shapes
from bayesmf.results import FitResult

QUIET = {"progressbar": False}


@pytest.fixture(scope="module")
def sim():
    return simulate(n_users=40, n_items=30, n_factors=2, density=0.3, seed=1)


@pytest.fixture(scope="module")
def converged(sim):
    # the shared prior stops before the posterior's factor draws are thinned (the per-side
    # default needs ~3,800 sweeps here), so a run of fixed length can make the same draws
    return fit_gibbs(PMF(n_factors=2, factor_prior="shared"), sim.data, random_seed=3, **QUIET)


def test_checkpoints_are_geometric_and_end_at_the_budget():
    rule = StoppingRule(first_check=100, growth=1.5, max_draws=1000)
    assert list(rule.checkpoints()) == [100, 150, 225, 338, 507, 760, 1000]
    assert list(StoppingRule(first_check=10, growth=1.5, max_draws=10).checkpoints()) == [10]
    assert list(StoppingRule(first_check=50, growth=1.5, max_draws=20).checkpoints()) == [20]
    # a growth so small that rounding would repeat a checkpoint still moves on
    assert list(StoppingRule(first_check=2, growth=1.01, max_draws=5).checkpoints()) == [2, 3, 4, 5]


def test_runs_until_the_verdict_passes(converged):
    info = converged.info
    assert info["stopped_by"] == "converged" and info["converged"] is True
    checks = info["checks"]
    assert checks[-1]["ok"] and not any(c["ok"] for c in checks[:-1])
    assert [c["draws"] for c in checks] == list(StoppingRule(max_draws=10**6).checkpoints())[: len(checks)]
    assert converged.n_draws == checks[-1]["draws"] == info["draws"]
    # the verdict of the last look is diagnose()'s on the returned fit
    diagnosis = converged.diagnose()
    assert diagnosis.ok
    assert diagnosis.table["r_hat"].max() == checks[-1]["max_r_hat"]
    assert diagnosis.table["ess_bulk"].min() == checks[-1]["min_ess_bulk"]


def test_a_run_in_stages_makes_the_draws_of_a_fixed_run(sim, converged):
    fixed = fit_gibbs(converged.spec, sim.data, draws=converged.n_draws, thin=converged.info["thin"], random_seed=3, **QUIET)
    assert fixed.info["stopped_by"] == "draws" and "checks" not in fixed.info
    for name in ("U", "V", "sigma", "user_bias"):
        np.testing.assert_array_equal(converged.posterior[name].values, fixed.posterior[name].values)


def test_monitor_table_is_arviz_summary(sim, converged):
    """The stopping rule's fast table has az.summary's labels and numbers (to rounding: sums in another order)."""
    spec, post = converged.spec, converged.posterior
    shapes = variable_shapes(spec, sim.data.n_users, sim.data.n_items)
    chains, draws = converged.n_chains, converged.n_draws
    monitor = Monitor(spec, sim.data, shapes, chains, 10)
    monitor.grow(draws)  # recorded draws survive growing, too
    for c in range(chains):
        for d in range(draws):
            monitor.record(c, d, {k: post[k].values[c, d] for k in post.data_vars}, {})
    fast = monitor.table(draws)
    slow = summary_table(identified_quantities(converged))
    assert list(fast.index) == list(slow.index)
    for column in ("r_hat", "ess_bulk", "ess_tail"):
        np.testing.assert_allclose(fast[column].to_numpy(), slow[column].to_numpy(), rtol=1e-12, atol=0)


def _recorded_monitor(sim, fit):
    """A `Monitor` holding every draw of ``fit``."""
    shapes = variable_shapes(fit.spec, sim.data.n_users, sim.data.n_items)
    post = fit.posterior
    monitor = Monitor(fit.spec, sim.data, shapes, fit.n_chains, fit.n_draws)
    for c in range(fit.n_chains):
        for d in range(fit.n_draws):
            monitor.record(c, d, {k: post[k].values[c, d] for k in post.data_vars}, {})
    return monitor


def test_a_look_judges_the_quantities_that_failed_before_first(sim, converged):
    monitor = _recorded_monitor(sim, converged)
    early = monitor.check(30, 1.01, 100.0)  # too few draws: fails
    assert early.complete and not early.ok and early.failing and early.judged == early.total > len(early.failing)
    table = monitor.table(30)
    bad = (table["r_hat"] > 1.01) | (table[["ess_bulk", "ess_tail"]].min(axis=1) < 100.0)
    assert early.failing == tuple(table.index[bad])
    # the quantities that failed still fail: only they are judged, and the look fails
    again = monitor.check(45, 1.01, 100.0, focus=early.failing)
    assert not again.ok and not again.complete and again.judged == len(early.failing)
    assert set(again.failing) <= set(early.failing)
    full = monitor.table(45)
    np.testing.assert_array_equal(monitor.table(45, early.failing)["r_hat"], full.loc[list(early.failing), "r_hat"])
    assert again.max_r_hat == full.loc[list(early.failing), "r_hat"].max()
    # once they pass, every quantity is judged: the look is the one made without a focus
    n = converged.n_draws
    passing = tuple(monitor.table(n).index[:3])
    assert monitor.check(n, 1.01, 400.0, focus=passing) == monitor.check(n, 1.01, 400.0)
    assert monitor.check(n, 1.01, 400.0).ok


def test_the_progress_bar_says_how_many_quantities_fail(sim, converged):
    from bayesmf.inference.gibbs.converge import progress_text

    monitor = _recorded_monitor(sim, converged)
    early = monitor.check(30, 1.01, 100.0)
    text = progress_text(early)
    assert text.startswith(f"R-hat {early.max_r_hat:.3f}, ESS ") and text.endswith(f", {len(early.failing)} of {early.total} failing")
    assert progress_text(monitor.check(45, 1.01, 100.0, focus=early.failing)).endswith(" still failing")


def test_looks_with_a_focus_stop_where_full_looks_stop(sim, converged, monkeypatch):
    """The same draws and the same stopping point as looks that judge everything every time."""
    looks = converged.info["checks"]
    assert any(c["judged"] < c["total"] for c in looks) and looks[-1]["judged"] == looks[-1]["total"]
    full_check = Monitor.check
    monkeypatch.setattr(Monitor, "check", lambda self, n, r, e, focus=(): full_check(self, n, r, e))
    everything = fit_gibbs(converged.spec, sim.data, random_seed=3, **QUIET)
    assert all(c["judged"] == c["total"] for c in everything.info["checks"])
    assert [c["draws"] for c in everything.info["checks"]] == [c["draws"] for c in looks]
    np.testing.assert_array_equal(everything.posterior["sigma"].values, converged.posterior["sigma"].values)
    # a budget stop's last look is complete (its verdict is diagnose()'s) even where the looks
    # before were not: the run above cut at its last failing look (which judged only the
    # quantities that had failed before it, where that run went on)
    monkeypatch.setattr(Monitor, "check", full_check)
    assert len(looks) >= 3 and looks[-2]["judged"] < looks[-2]["total"]
    tune = converged.info["tune"]
    with pytest.warns(ConvergenceWarning, match="max_sweeps"):
        budget = fit_gibbs(converged.spec, sim.data, max_sweeps=tune + looks[-2]["draws"], random_seed=3, **QUIET)
    cut = budget.info["checks"]
    assert [c["draws"] for c in cut] == [c["draws"] for c in looks[:-1]]
    assert cut[-1]["judged"] == cut[-1]["total"] and not cut[-1]["ok"]
    assert budget.info["verdict"] == budget.diagnose(warn=False).verdict


def test_monitor_batches_give_the_quantities_of_single_draws(sim, converged, monkeypatch):
    """Draws computed a batch at a time (here 3 per chain) hold the values of draws computed one by one.

    Chains record in turn, in stages (`Monitor.grow` between them), and one `Monitor.compact`
    and `Monitor.keep` come while draws wait in a batch: each must compute them first.
    """
    from bayesmf.inference.gibbs import monitor as monitor_module

    spec, post = converged.spec, converged.posterior
    shapes = variable_shapes(spec, sim.data.n_users, sim.data.n_items)
    chains, draws = converged.n_chains, 40

    def recorded(batch_draws: int, compact_at: int | None) -> Monitor:
        monkeypatch.setattr(monitor_module, "BATCH_DRAWS", batch_draws)
        monitor = Monitor(spec, sim.data, shapes, chains, 10)
        for d in range(draws):
            if d % 10 == 0:
                monitor.grow(d + 10)
            if compact_at is not None and d == compact_at:
                monitor.compact(2)
            for c in range(chains):
                if compact_at is None or d < compact_at or d % 2 == 0:
                    slot = d if compact_at is None or d < compact_at else d // 2
                    monitor.record(c, slot, {k: post[k].values[c, d] for k in post.data_vars}, {})
        return monitor

    assert monitor_module.batch_size(shapes) == monitor_module.BATCH_DRAWS  # small draws: the full batch
    for compact_at in (None, 22):
        one = recorded(1, compact_at)
        three = recorded(3, compact_at)
        assert three.stored == one.stored
        n = min(one.stored)
        for name, values in one.tree(n)["posterior"].data_vars.items():
            np.testing.assert_allclose(three.tree(n)["posterior"][name].values, values.values, rtol=1e-13, atol=1e-15)
    three.keep([2, 0], 5)
    np.testing.assert_allclose(three.values["sigma"], one.values["sigma"][[2, 0], :5])


def test_monitor_batch_fits_its_byte_budget():
    from bayesmf.inference.gibbs.monitor import BATCH_BYTES, BATCH_DRAWS, batch_size

    f64 = np.dtype(np.float64)
    assert batch_size({"U": ((10, 2), f64)}) == BATCH_DRAWS
    assert batch_size({"U": ((BATCH_BYTES // 8 // 4,), f64)}) == 4
    assert batch_size({"U": ((BATCH_BYTES,), f64)}) == 1  # a draw above the budget: one at a time


def test_budget_stop_warns_and_says_so(sim):
    with pytest.warns(ConvergenceWarning, match=r"stopped by its budget \(max_sweeps\) after 20 draws"):
        fit = fit_gibbs(PMF(n_factors=2), sim.data, max_sweeps=300, thin=5, min_draws=10, random_seed=0, **QUIET)
    assert fit.info["stopped_by"] == "max_sweeps" and fit.info["converged"] is False
    assert fit.n_draws == (300 - 200) // 5
    assert [c["draws"] for c in fit.info["checks"]] == [10, 15, 20]
    # the default thin of a run until convergence is 1: the budget is in sweeps all the same
    with pytest.warns(ConvergenceWarning, match=r"after 100 draws"):
        every = fit_gibbs(PMF(n_factors=2), sim.data, max_sweeps=300, min_draws=10, random_seed=0, **QUIET)
    assert every.info["thin"] == 1 and every.n_draws == 300 - 200
    assert not fit.diagnose(warn=False).ok


def test_time_budget_stops_the_chains(sim):
    with pytest.warns(ConvergenceWarning, match="max_seconds"):
        fit = fit_gibbs(
            PMF(n_factors=2), sim.data, max_seconds=0.2, tune=0, thin=1, min_draws=20_000,
            random_seed=0, **QUIET,
        )  # fmt: skip
    assert fit.info["stopped_by"] == "max_seconds"
    assert 1 <= fit.n_draws < 20_000 and fit.info["checks"] == []
    assert fit.n_draws == fit.info["draws"]  # no unwritten draw of the grown sink is kept
    assert np.isfinite(fit.posterior["sigma"].values).all() and (fit.posterior["sigma"].values > 0).all()
    # a fixed-length run stops on its time budget too, with the draws it made
    with pytest.warns(UserWarning, match=r"stopped by max_seconds at sweep \d+ of 20000; keeping the first"):
        fixed = fit_gibbs(PMF(n_factors=2), sim.data, draws=20_000, tune=0, thin=1, max_seconds=0.2, random_seed=0, **QUIET)
    assert fixed.info["stopped_by"] == "max_seconds" and 1 <= fixed.n_draws < 20_000


def test_time_budget_keeps_every_chain_when_chains_exceed_cores(sim):
    """Chains queued behind the running ones would get no sweep before the budget ends."""
    with pytest.warns(ConvergenceWarning, match="max_seconds"):
        fit = fit_gibbs(
            PMF(n_factors=2), sim.data, chains=4, cores=1, tune=0, thin=1, min_draws=20_000,
            max_seconds=0.5, random_seed=0, **QUIET,
        )  # fmt: skip
    assert fit.n_chains == 4 and fit.n_draws >= 1
    assert all(s > 0 for s in fit.info["chain_sweeps"])


def test_time_budget_within_the_burn_in_is_a_clear_error(sim, tmp_path):
    store = tmp_path / "post.zarr"
    with pytest.raises(TimeoutError, match=r"max_seconds=0.05 ran out at sweep \d+, before the 100000 burn-in"):
        fit_gibbs(PMF(n_factors=2), sim.data, tune=100_000, max_seconds=0.05, store=store, random_seed=0, **QUIET)
    assert not store.exists()  # the store this call made held nothing


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"max_sweeps": 0}, ValueError, "max_sweeps"),
        ({"max_sweeps": -5}, ValueError, "max_sweeps"),
        ({"max_sweeps": 2.5}, TypeError, "max_sweeps"),
        ({"max_sweeps": "100"}, TypeError, "max_sweeps"),
        ({"max_sweeps": 200, "tune": 200}, ValueError, r"max_sweeps=200 leaves no draw"),
        ({"max_sweeps": 1000, "draws": 10}, ValueError, "max_sweeps=1000 is the budget"),
        ({"max_seconds": 0}, ValueError, "max_seconds"),
        ({"max_seconds": -1.0}, ValueError, "max_seconds"),
        ({"max_seconds": math.nan}, ValueError, "max_seconds"),
        ({"max_seconds": math.inf}, ValueError, "max_seconds"),
        ({"max_seconds": "60"}, TypeError, "max_seconds"),
        ({"max_seconds": True}, TypeError, "max_seconds"),
        ({"rhat_max": 0.99}, ValueError, "rhat_max"),
        ({"ess_min": 0}, ValueError, "ess_min"),
        ({"min_draws": 0}, ValueError, "min_draws"),
        ({"draws": None, "min_draws": None}, TypeError, "min_draws"),
    ],
)
def test_bad_budgets_are_named(sim, kwargs, error, match):
    with pytest.raises(error, match=match):
        fit_gibbs(PMF(n_factors=2), sim.data, **QUIET, **kwargs)


def test_store_backed_run_until_converged(sim, converged, tmp_path):
    """The store grows with the run and holds the draws the in-memory run keeps."""
    fit = fit_gibbs(converged.spec, sim.data, random_seed=3, store=tmp_path / "post.zarr", **QUIET)
    assert fit.info["stopped_by"] == "converged" and fit.n_draws == converged.n_draws
    for name in ("U", "sigma", "item_bias"):
        np.testing.assert_array_equal(fit.posterior[name].values, converged.posterior[name].values)
    np.testing.assert_array_equal(fit.posterior["draw"].values, np.arange(fit.n_draws))


# --- simulation-based calibration of runs stopped by the rule ------------------------------


#: the prior of the stopping rule's SBC: the shared one, whose scale is identified (the
#: per-side default's blocks have their own SBC in test_gibbs; the rule does not depend on them)
SBC_SPEC = PMF(n_factors=2, factor_prior="shared")


def _prior_draw(rng, n_users, n_items, scale):
    """Parameters from SBC_SPEC's hierarchical prior (as in test_gibbs)."""
    from test_gibbs import _prior_draw as draw

    return draw(rng, SBC_SPEC, n_users, n_items, scale)


def _stopped_ranks(n_reps: int, seed: int, n_keep: int = 99, biased_window: bool = False, **options):
    """Ranks of true sigma, factor scale, mu and two eta_ij among ``n_keep`` draws of a stopped run.

    Each data set is drawn from the prior; the fit runs until converged with looks from 20
    draws per chain, so runs stop at different lengths. The ranks use ``n_keep`` draws spread
    evenly over each run's kept draws (all chains): fewer than its ESS (>= 400 when it
    stops), so they are close to independent, as SBC needs. ``options`` replace the fit's;
    ``biased_window`` keeps only the draws whose sigma is below the run's median, a
    selection by value of the kind a biased rule makes: a deliberately broken variant that
    shows the test can fail.
    """
    rng = np.random.default_rng(seed)
    n_users, n_items, scale = 15, 12, (1.0, 5.0)
    observed = rng.random((n_users, n_items)) < 0.5
    observed[np.arange(n_users), np.arange(n_users) % n_items] = True
    observed[np.arange(n_items) % n_users, np.arange(n_items)] = True
    user_idx, item_idx = np.nonzero(observed)
    unrated = np.argwhere(~observed)[0]
    pairs = [(user_idx[0], item_idx[0]), tuple(unrated)]
    users, items = IdEncoder("user", np.arange(n_users)), IdEncoder("item", np.arange(n_items))
    ranks = np.empty((n_reps, 5), dtype=np.int64)
    stops = []
    for rep in range(n_reps):
        truth = _prior_draw(rng, n_users, n_items, scale)
        eta = truth["mu"] + truth["user_bias"][:, None] + truth["item_bias"][None, :] + truth["U"] @ truth["V"].T
        rating = eta[user_idx, item_idx] + rng.normal(0, truth["sigma"], len(user_idx))
        data = RatingsData(user_idx, item_idx, rating, scale, users, items)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            kwargs = {"tune": 100, "min_draws": 20, "random_seed": int(rng.integers(2**31))} | options
            fit = fit_gibbs(SBC_SPEC, data, **kwargs, **QUIET)
        stops.append((fit.info["stopped_by"], fit.n_draws))
        if biased_window:
            sigma = fit.posterior["sigma"].values[0]  # chain 0's draws below their median
            low = np.flatnonzero(sigma < np.median(sigma))
            cut = fit.idata.isel(chain=[0], draw=low)
            fit = FitResult(spec=fit.spec, idata=cut, method=fit.method, train=fit.train, info=fit.info)
        arr = fit.arrays()
        pick = np.linspace(0, len(arr.mu) - 1, n_keep).round().astype(int)
        draws = {
            "sigma": arr.sigma[pick],
            "sigma_factor": np.ravel(fit.posterior["sigma_factor"].values)[pick],
            "mu": arr.mu[pick],
        }
        for k, (i, j) in enumerate(pairs):
            draws[f"eta{k}"] = (
                arr.mu + arr.user_bias[:, i] + arr.item_bias[:, j]
                + np.einsum("sk,sk->s", arr.U[:, i].astype(float), arr.V[:, j].astype(float))
            )[pick]  # fmt: skip
        truths = [truth["sigma"], truth["sigma_factor"], truth["mu"], eta[pairs[0]], eta[pairs[1]]]
        for k, (values, true) in enumerate(zip(draws.values(), truths, strict=True)):
            ranks[rep, k] = np.sum(values < true)
    return ranks, n_keep + 1, stops


@pytest.mark.slow
def test_runs_stopped_by_the_rule_calibrate():
    """Talts et al. (2018) SBC, with each fit stopped by the convergence rule.

    A rule that biased the posterior would show as non-uniform ranks. The fits run at the
    sampler's default ``thin`` (1 since 2026-12-02: every sweep kept). Measured at thin 5,
    the default before, with this test's 120 data sets (seed 7): the rule stopped at six
    different lengths, 152 to 1,154 draws per chain; all p >= 0.049 (with 200 data sets all
    p >= 0.19). Checked to fail on a
    deliberately biased selection (``biased_window``: the draws whose sigma is below the
    median): p = 1e-57 on sigma (2e-87 with 200). Subtler selections are below this test's
    power (measured with 200 data sets): cutting each run to its first 30 %, or ``tune=0``
    with a lax rule (R-hat 1.5, ESS 10, stopping after 20 draws), or keeping the quarter of
    the run with the smallest mean sigma all passed (p >= 0.06): their bias is small next to
    the posterior's spread, which is what SBC measures.
    """
    from tests.sbc_chain import uniformity_pvalues

    ranks, n_ranks, stops = _stopped_ranks(n_reps=120, seed=7)
    lengths = {n for _, n in stops}
    assert {s for s, _ in stops} == {"converged"}, stops
    assert len(lengths) >= 3, f"the rule must bind at different lengths to be tested: {sorted(lengths)}"
    pvalues = uniformity_pvalues(ranks, n_ranks)
    assert (pvalues > 0.001).all(), pvalues


def test_every_gibbs_fit_carries_its_verdict(sim, converged):
    assert converged.info["verdict_ok"] is True and converged.info["verdict"] == converged.diagnose().verdict
    assert converged.info["verdict"].endswith("All checks passed.")
    short = fit_gibbs(PMF(n_factors=2), sim.data, draws=20, tune=20, random_seed=0, **QUIET)
    diagnosis = short.diagnose(warn=False)
    assert short.info["verdict_ok"] is diagnosis.ok is False
    assert short.info["verdict"] == diagnosis.verdict
    with pytest.warns(ConvergenceWarning):
        budget = fit_gibbs(PMF(n_factors=2), sim.data, max_sweeps=300, min_draws=10, random_seed=0, **QUIET)
    assert budget.info["verdict_ok"] is False and "R-hat" in budget.info["verdict"]
