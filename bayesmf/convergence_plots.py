"""Trace and rank plots of the identified quantities of a fit: drawing only.

`plot_diagnostics` gets its draws from the compute function
`bayesmf.identified.identified_quantities` and draws them with arviz_plots. Re-exported by
`bayesmf.plots` (with the other plots) and `bayesmf.diagnostics` (with the checks).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from bayesmf._validate import validate_choice
from bayesmf.identified import identified_quantities

if TYPE_CHECKING:
    from bayesmf.data import RatingsData
    from bayesmf.results import FitResult

__all__ = ["plot_diagnostics"]


def plot_diagnostics(
    result: FitResult,
    kind: Literal["trace", "rank"] = "trace",
    *,
    var_names: Sequence[str] | None = None,
    n_pairs: int = 3,
    test: RatingsData | None = None,
    seed: int = 0,
    **plot_kwargs: Any,
) -> Any:
    """Trace or rank plots of the identified quantities (`identified_quantities`).

    Parameters
    ----------
    result : FitResult
        A sampled fit (a MAP estimate has no trace to plot).
    kind : {"trace", "rank"}
        ``"trace"``: `arviz_plots.plot_trace_dist` (densities and traces per chain);
        ``"rank"``: `arviz_plots.plot_rank` (rank ECDFs per chain; uniform when chains agree).
    var_names : sequence of str, optional
        Quantities to plot (default: all, with ``n_pairs`` predicted ratings of each kind).
    n_pairs : int
        Predicted ratings of training and held-out/unrated pairs shown.
    test, seed
        See `identified_quantities`.
    **plot_kwargs
        Passed to the arviz_plots function (``backend``, ``figure_kwargs``, ...).

    Returns
    -------
    arviz_plots.PlotCollection
        With a legend of the chains' colours when there are several. Save with
        ``.savefig(path)``.
    """
    import arviz_plots as azp

    validate_choice("kind", kind, ("trace", "rank"))
    if result.n_chains * result.n_draws <= 1:
        raise ValueError(f"method={result.method!r} gave a point estimate (one draw): nothing to plot")
    tree = identified_quantities(result, n_pairs=n_pairs, test=test, seed=seed)
    names = list(tree["posterior"].data_vars)
    if var_names is not None:
        unknown = [v for v in var_names if v not in names]
        if unknown:
            raise ValueError(f"unknown quantities {unknown}; available: {names}")
        names = list(var_names)
    draw = azp.plot_trace_dist if kind == "trace" else azp.plot_rank
    pc = draw(tree, var_names=names, **plot_kwargs)
    if result.n_chains > 1:  # which colour is which chain
        pc.add_legend("chain")
    return pc
