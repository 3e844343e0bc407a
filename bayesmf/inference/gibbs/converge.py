r"""Run the Gibbs chains until the identified quantities converge, or a budget runs out.

The rule (`StoppingRule`): after the burn-in, look at the kept draws at a geometric schedule
of checkpoints, :math:`n_k = \lceil n_0 g^k \rceil` draws per chain (``first_check``
:math:`n_0`, ``growth`` :math:`g`), and stop at the first checkpoint where every monitored
quantity passes `bayesmf.diagnostics.mcmc_problems` (R-hat :math:`\le` ``rhat_max``, bulk and
tail ESS :math:`\ge` ``ess_min``): the checks `diagnose` makes, on the same quantities
(`bayesmf.inference.gibbs.monitor`). Every draw after the burn-in is kept; nothing is
discarded on the way, and the chains are not restarted.

Why this schedule: the checks are few (about :math:`\log(n / n_0) / \log g`), so the chance
of stopping on a momentary agreement of chains that have not mixed stays small, and at most a
fraction :math:`g - 1` more draws are made than the first passing checkpoint needed. A
look judges first the quantities that failed the look before, and everything only when those
pass (`Monitor.check`): the same decisions, at a fraction of the cost on small problems. Runs
stopped this way still calibrate: the simulation-based calibration in
``tests/test_gibbs_converge.py`` fits prior-drawn data sets with the rule and finds the ranks
of the truths among the draws uniform.

A budget stops the run before it converges: ``max_sweeps`` (per chain, burn-in included; the
last checkpoint is cut to fit it) or ``max_seconds`` (wall time of sampling). The result says
which stopped it, and a budget stop warns with the last verdict.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from bayesmf._validate import validate_positive, validate_positive_int
from bayesmf.exceptions import ConvergenceWarning
from bayesmf.inference.gibbs.monitor import Check, Monitor
from bayesmf.inference.gibbs.runner import ChainPool, RunReport

__all__ = ["DEFAULT_MAX_SWEEPS", "FIXED_RUN_THIN", "Outcome", "StoppingRule", "judge", "progress_text", "run_until_converged", "sample", "stopping_rule"]

#: sweeps per chain after the burn-in a run until convergence may make, unless ``max_sweeps`` says otherwise
DEFAULT_MAX_SWEEPS = 10_000
#: ``thin`` of a run of fixed length when none is given (a run until convergence keeps every sweep)
FIXED_RUN_THIN = 5
#: each look at the draws comes at this many times the draws of the previous one
GROWTH = 1.5


@dataclass(frozen=True)
class StoppingRule:
    """When to look at the draws, what passes, and the budget (draws per chain)."""

    rhat_max: float = 1.01
    ess_min: float = 400.0
    first_check: int = 100
    growth: float = 1.5
    max_draws: int = 2000

    def checkpoints(self) -> Iterator[int]:
        """Draws per chain at each look: ``first_check * growth**k``, the last one ``max_draws``."""
        n, k = min(self.first_check, self.max_draws), 0
        while n < self.max_draws:
            yield n
            k += 1
            n = max(n + 1, math.ceil(self.first_check * self.growth**k))
        yield self.max_draws


@dataclass
class Outcome:
    """How the run ended: the last `RunReport`, every check, and what stopped it.

    ``stopped_by``: ``"converged"``, ``"max_sweeps"``, ``"max_seconds"``, ``"interrupted"`` or
    ``"error"``.
    """

    report: RunReport
    stopped_by: str
    checks: list[Check] = field(default_factory=list)


def run_until_converged(
    pool: ChainPool,
    monitor: Monitor,
    rule: StoppingRule,
    grow: Callable[[int], None],
    deadline: float | None = None,
) -> Outcome:
    """Advance ``pool`` from checkpoint to checkpoint until the draws pass or a budget ends.

    ``grow(n)``: make the sinks (and ``monitor``) hold ``n`` draws per chain, called before
    each stage. ``deadline``: a `time.perf_counter` value (``max_seconds``). A Ctrl-C while
    the draws are being checked stops the run as one during sampling does.
    """
    checks: list[Check] = []
    chains = len(pool.states)
    report = RunReport(chains=pool.runs, interrupted=False, error=None)
    for target in rule.checkpoints():
        grow(target)
        pool.extend_bar(chains * pool.schedule.sweeps_for(target))
        report = pool.advance(target, deadline)
        if report.error is not None:
            return Outcome(report, "error", checks)
        if report.interrupted:
            return Outcome(report, "interrupted", checks)
        if report.timed_out:
            return Outcome(report, "max_seconds", checks)
        try:
            # the draws the posterior holds (every draw, or fewer, evenly spaced: factor_draws)
            focus = checks[-1].failing if checks else ()
            check = monitor.check(min(monitor.stored), rule.rhat_max, rule.ess_min, focus)
            if not check.complete and (target == rule.max_draws or _past(deadline)):
                check = monitor.check(check.draws, rule.rhat_max, rule.ess_min)  # the last look: the full verdict
        except KeyboardInterrupt:
            pool.interrupted = True
            report = RunReport(chains=pool.runs, interrupted=True, error=None)
            return Outcome(report, "interrupted", checks)
        checks.append(check)
        pool.bar.set_postfix_str(progress_text(check), refresh=True)
        if check.ok:
            return Outcome(report, "converged", checks)
        if _past(deadline):
            return Outcome(report, "max_seconds", checks)
    return Outcome(report, "max_sweeps", checks)


def progress_text(check: Check) -> str:
    """Word a look for the progress bar: its worst R-hat, smallest ESS and how many quantities fail."""
    failing = f"{len(check.failing)} of {check.total} failing" if check.complete else f"{len(check.failing)} still failing"
    return f"R-hat {check.max_r_hat:.3f}, ESS {min(check.min_ess_bulk, check.min_ess_tail):.0f}, {failing}"


def _past(deadline: float | None) -> bool:
    """Whether the wall-time budget (a `time.perf_counter` value) has run out."""
    return deadline is not None and time.perf_counter() > deadline


def stopping_rule(
    draws: int | None,
    tune: int,
    thin: int,
    max_sweeps: Any,
    rhat_max: Any,
    ess_min: Any,
    min_draws: Any,
) -> StoppingRule | None:
    """Check the options of a run until convergence (`fit_gibbs`); None for a run of fixed length.

    Raises
    ------
    TypeError, ValueError
        A bad option, named with its value; ``max_sweeps`` with a fixed ``draws``.
    """
    rhat_max = validate_positive("rhat_max", rhat_max)
    if rhat_max < 1.0:  # type: ignore[operator]
        raise ValueError(f"rhat_max must be >= 1, got {rhat_max!r}")
    ess_min = validate_positive("ess_min", ess_min)
    min_draws = validate_positive_int("min_draws", min_draws)
    if draws is not None:
        if max_sweeps is not None:
            raise ValueError(
                f"max_sweeps={max_sweeps!r} is the budget of a run until convergence (draws=None); "
                f"with draws={draws} the run has a fixed length: drop one of them"
            )
        return None
    max_draws = max(DEFAULT_MAX_SWEEPS // thin, 1)
    if max_sweeps is not None:
        max_sweeps = validate_positive_int("max_sweeps", max_sweeps)
        max_draws = (max_sweeps - tune) // thin
        if max_draws < 1:
            raise ValueError(
                f"max_sweeps={max_sweeps} leaves no draw to keep after tune={tune} burn-in sweeps "
                f"(thin={thin}); it must be at least tune + thin = {tune + thin}"
            )
    return StoppingRule(float(rhat_max), float(ess_min), min_draws, GROWTH, max_draws)  # type: ignore[arg-type]


def sample(
    pool: ChainPool,
    rule: StoppingRule | None,
    monitor: Monitor | None,
    grow: Callable[[int], None],
    deadline: float | None,
) -> Outcome:
    """Run the chains to the fixed length of ``pool``'s schedule, or until ``rule`` says stop."""
    if rule is None or monitor is None:
        report = pool.advance(pool.schedule.draws, deadline)
        stopped = "interrupted" if report.interrupted else "max_seconds" if report.timed_out else "draws"
        return Outcome(report, "error" if report.error is not None else stopped)
    return run_until_converged(pool, monitor, rule, grow, deadline)


def judge(info: dict[str, Any], outcome: Outcome, n: int) -> None:
    """Put the verdict of a run until convergence into ``info``; warn when a budget stopped it."""
    info["checks"] = [c.as_dict() for c in outcome.checks]
    info["converged"] = outcome.stopped_by == "converged"
    if outcome.stopped_by not in ("max_sweeps", "max_seconds"):
        return
    last = outcome.checks[-1] if outcome.checks else None
    verdict = " ".join(last.problems) if last is not None and last.draws == n else "no check on the draws kept"
    warnings.warn(
        f"Gibbs sampling stopped by its budget ({outcome.stopped_by}) after {n} draws per chain, "
        f"before the identified quantities converged: {verdict} Raise max_sweeps or max_seconds, "
        "or check the model; fit.diagnose() gives the full verdict.",
        ConvergenceWarning,
        stacklevel=3,
    )
