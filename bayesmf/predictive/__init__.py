"""The machinery behind `bayesmf.predict`, `bayesmf.recommend` and `bayesmf.evaluation`.

=================  ====================================================================
module             job
=================  ====================================================================
``view``           what the computations need from a `FitResult`, read once per call
``pairs``          raw (user, item) ids -> indices, codes of unknown ids, flags; output frame
``components``     latent scores per chunk (posterior draws; prior draws for unknown ids),
                   per-pair seeds, chunking
``cold``           unknown ids of a side with features: their feature rows, or an error
``summary``        per-pair mean, sd, quantiles, P(r >= t) and HDI
``draws``          per-pair predictive draws and rating-level probabilities
``lazy``           a posterior on disk (zarr store): pairs in groups, draws read a block
                   at a time into the rows each group needs
=================  ====================================================================

Nothing here is public API; the public functions validate their options once
(`bayesmf.options.PredictOptions`) and pass plain values down.
"""
