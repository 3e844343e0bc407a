"""Numba kernels of the Gibbs sampler, apart from the Python orchestration.

Each takes structured arguments (`structs`: NamedTuples of arrays and scalars), mapped to
the public names of `bayesmf.posterior`:

- a `structs.Side` per side: ``P`` (n_rows, kp), row ``i`` is :math:`(b_i, U_i)` with
  biases (``kp = K + 1``), :math:`U_i` without; ``prec`` (kp,) the prior precisions of one
  row (bias first); ``mean`` its prior mean;
- ``scalars``: ``[mu, sigma2, user_bias_var, item_bias_var]`` (the bias variances are the
  squares of ``sigma_user_bias``, ``sigma_item_bias``); ``factor_var`` (K,): the prior
  variance of factor ``k`` of U and V (``sigma_factor**2``).

Every random number comes in as an argument (standard normals, standard gammas, uniforms
drawn from the chain's numpy ``Generator`` in the caller, the sweep's standard variates by
`variates`, which numba runs on that generator with NumPy's algorithms), so a chain is a
deterministic function of its generator whatever thread runs it. The kernels release the GIL (``nogil=True``) so chains
run in parallel threads, and are cached on disk (``cache=True``). numba checks a cached
kernel against its own file only: a kernel that inlines a function or reads a constant of
another module (`implicit_rows` uses `rows.draw_batch` and `rows.ROW_BATCH`) keeps the old
version until its own file changes. After editing such a shared piece, delete the
``__pycache__`` folders under ``bayesmf/`` before timing or testing (a fresh install has none).

Modules: `rows` (row updates, residuals), `hypers` (conjugate hyperparameter draws),
`shifts` (shift moves), `slice_sampler` (the one slice sampler), `bias_var` (collapsed
bias variance), `scale_moves` (sparse-row scale moves), `variates` (a sweep's standard
normals and gammas from the chain's generator), `typed` (calling a kernel with
the argument types of its first call, skipping numba's per-call typing of NamedTuples).
"""
