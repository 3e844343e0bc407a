"""Pinned Gibbs draws: the same seed gives the same draws across refactors of the sampler.

``python tests/pin_gibbs.py`` rewrites ``tests/data/gibbs_pinned.npz`` from the current
sampler; do that only when a change is meant to alter the draws, and say so in the commit.
`tests/test_gibbs_pinned.py` compares a fresh run of every variant with the stored draws.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from bayesmf import PMF
from bayesmf.datasets import simulate
from bayesmf.inference.gibbs import fit_gibbs

PINNED = Path(__file__).parent / "data" / "gibbs_pinned.npz"

#: name -> (spec options, fit_gibbs options); covers every prior variant with and without
#: biases, both inits, plain Gibbs (overrelaxation 0) and the warm-up group; every prior is
#: named (the default, ``factor_prior="auto"``, is one of them: "per_side_per_factor")
VARIANTS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "fixed": ({"priors": "fixed"}, {}),
    "fixed_nobias": ({"priors": "fixed", "biases": False}, {}),
    "shared": ({"factor_prior": "shared"}, {}),
    "shared_nobias": ({"factor_prior": "shared", "biases": False}, {}),
    "shared_prior_init": ({"factor_prior": "shared"}, {"init": "prior", "overrelaxation": 0.0}),
    "per_factor": ({"factor_prior": "shared", "per_factor_scales": True}, {}),
    "per_factor_nobias": ({"factor_prior": "shared", "per_factor_scales": True, "biases": False}, {}),
    "per_side": ({"factor_prior": "per_side"}, {}),
    "per_side_nobias": ({"factor_prior": "per_side", "biases": False}, {}),
    "per_side_per_factor": ({"factor_prior": "per_side", "per_factor_scales": True}, {}),
    "per_side_prior_init": ({"factor_prior": "per_side", "per_factor_scales": True}, {"init": "prior"}),
    "warmup": ({"factor_prior": "shared"}, {"keep_warmup": True}),
}


def run_variant(name: str) -> dict[str, np.ndarray]:
    """Draws of one variant, flattened to ``{group/variable: array}``."""
    spec_kw, fit_kw = VARIANTS[name]
    # sparse enough that some rows have <= 10 ratings (the sparse-row scale moves run)
    sim = simulate(n_users=40, n_items=30, n_factors=2, density=0.25, seed=3)
    options = {"draws": 6, "tune": 4, "chains": 2, "thin": 2, "random_seed": 11,
               "progressbar": False, "cores": 1} | fit_kw
    fit = fit_gibbs(PMF(n_factors=2, **spec_kw), sim.data, **options)
    out = {}
    for group in ("posterior", "sample_stats", "warmup_posterior", "warmup_sample_stats"):
        if group in fit.idata.children:
            for var, values in fit.idata[group].to_dataset().data_vars.items():
                out[f"{name}/{group}/{var}"] = np.asarray(values)
    return out


def main() -> None:
    arrays: dict[str, np.ndarray] = {}
    for name in VARIANTS:
        arrays |= run_variant(name)
    PINNED.parent.mkdir(exist_ok=True)
    np.savez_compressed(PINNED, **arrays)
    print(f"wrote {len(arrays)} arrays to {PINNED}")


if __name__ == "__main__":
    main()
