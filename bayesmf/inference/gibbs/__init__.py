r"""Blocked conjugate Gibbs sampler for the normal-likelihood, identity-link PMF (BPMF-like).

Also implicit feedback (``likelihood="implicit"``, Hu, Koren & Volinsky 2008 in Bayesian
form: every pair of the matrix at response 1 or 0 with weight :math:`c_{ij}` or 1), by the
blocks of `implicit` with the same priors; and binary feedback (``likelihood="bernoulli"``,
probit link: :math:`y_{ij} = [z_{ij} > 0]`, :math:`z_{ij} \sim \mathcal N(\eta_{ij}, 1)`,
Albert & Chib 1993), by the block of `probit`, which redraws the latent :math:`z_{ij}` each
sweep and lets the Gaussian blocks run on them; and star ratings as ordered levels
(``likelihood="ordinal"``, ``link="probit"``: the ordered probit), by the block of
`ordinal`, which redraws the latent responses and the cutpoints the same way. Side
information (`bayesmf.data.RatingsData.with_features`, with ``factor_prior="per_side"``):
the prior block `priors.FeatureFactors` centres each row on
:math:`m + W^\top x` for its encoded features :math:`x` and draws the weights :math:`W`
and their precision; implicit sets (SVD++, `implicit_sets`) likewise.

The model (`bayesmf.spec.PMF` with ``link="identity"``, ``likelihood="normal"``):

.. math::

    r_{ij} \sim \mathcal N(\mu + b_i + c_j + U_i \cdot V_j,\ \sigma^2)

``priors="fixed"``: :math:`U_i \sim \mathcal N(0, \sigma_U^2 I)`,
:math:`V_j \sim \mathcal N(0, \sigma_V^2 I)`, :math:`b_i, c_j \sim \mathcal N(0, \sigma_b^2)`,
:math:`\mu` flat, :math:`\sigma` = ``spec.noise_sd(scale)``.

``priors="hierarchical"``: :math:`\sigma^2 \sim \mathrm{IG}(a_\sigma, b_\sigma)`; one factor
variance :math:`s^2 \sim \mathrm{IG}(a_f, b_f)` with :math:`U_i, V_j \sim \mathcal N(0, s^2 I)`
(or one :math:`s_k^2` per factor, shared by column k of U and V, with
``per_factor_scales``), or with ``factor_prior="per_side"`` each side's own factor means
and variance(s), :math:`m_k \mid v_k \sim \mathcal N(0, v_k/\kappa_0)`, rows
:math:`\sim \mathcal N(m, \mathrm{diag}(v))` (BPMF's hyperprior, diagonal); user- and
item-bias variances each :math:`\mathrm{IG}(a_b, b_b)`;
:math:`\mu \sim \mathcal N(\text{midpoint}, (\text{half-range})^2)` of the rating scale.
:math:`\mathrm{IG}(a, b)` has density :math:`\propto x^{-a-1} e^{-b/x}` (PyMC's
``InverseGamma(alpha=a, beta=b)``); the pairs are ``spec.hyper``.

A sweep is a list of blocks (`sweep`): the row updates, each row :math:`(b_i, U_i)` drawn
jointly from its :math:`(K+1)`-dimensional Gaussian conditional by a numba kernel
(`row_update`, overrelaxed by default); the likelihood (`likelihood`); the priors'
hyperparameter draws (`priors`); and extra moves along directions the likelihood cannot
see or where the priors mix slowly (`moves`). Modules by job:

==================  =========================================================
``fit``             `fit_gibbs`: options, seeds, the `FitResult`
``problem``         the data and configuration shared by the chains
``state``           one chain's current point
``variates``        the standard variates each sweep draws first
``block``           what blocks share: the problem, their kernel (typed once)
``likelihood``      the likelihood block (Gaussian) and the global mean
``implicit``        the implicit-feedback likelihood block (every pair counts)
``probit``          the binary likelihood block (latent responses, data augmentation)
``ordinal``         the ordered-probit likelihood block (latent responses, cutpoints)
``priors``          the prior blocks (fixed, shared scale(s), per side, with features)
``implicit_sets``   the implicit-set prior block (SVD++ and its "flipped" form)
``row_update``      the row-update block
``moves``           the extra moves
``sweep``           the sweep composed of blocks
``start``           initial points (``init="map"`` / ``"prior"``)
``runner``          chains on threads in stages, progress bar, kept draws into a sink, Ctrl-C
``recording``       where a run's draws go, wired once (sink, spacing, monitor, scalar trace)
``spacing``         at most ``factor_draws`` evenly spaced draws per chain in the posterior
``converge``        the stopping rule: run until converged, or to a budget
``monitor``         the identified quantities of each kept draw, and the check on them
``assemble``        from the sinks to the result (sizes, the tree, cutting stopped runs)
``sink``            where kept draws go: in memory
``zarr_sink``       where kept draws go: a zarr store on disk (``store=``)
``kernels``         the numba kernels (structured arguments)
==================  =========================================================

Each chain has its own ``numpy.random.Generator`` spawned from ``random_seed``
(`numpy.random.SeedSequence.spawn`) and every random number is drawn by it, so the same seed
gives the same draws however the chains are scheduled on threads. Chains run in parallel
threads (the kernels release the GIL).
"""

from __future__ import annotations

from bayesmf.inference.gibbs.fit import fit_gibbs

__all__ = ["fit_gibbs"]
