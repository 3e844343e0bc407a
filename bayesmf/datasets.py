"""Where ratings come from: simulated from the PMF model, bundled, or downloaded.

- `simulate` draws ratings from the PMF generative model itself, with the truth kept
  so that fits can be checked against it (`bayesmf.simulation`).
- `load_movielens` loads MovieLens: ``"ml-latest-small"`` ships with the package;
  ``"ml-100k"``, ``"ml-1m"``, ``"ml-10m"``, ``"ml-20m"`` and ``"ml-25m"`` (whose licenses
  forbid redistribution) are found on disk or downloaded once into a cache and checked
  against SHA-256 sums (`bayesmf.movielens`); `movielens_features` gives their users' and
  items' features (`bayesmf.RatingsData.with_features`).

This module gathers them under one name; each is defined in the module named above.
"""

from __future__ import annotations

from bayesmf._movielens_archives import ARCHIVES as ARCHIVES
from bayesmf._movielens_files import ML100K_SHA256 as ML100K_SHA256
from bayesmf._movielens_files import ML100K_URL as ML100K_URL
from bayesmf._movielens_files import ML100K_ZIP_SHA256 as ML100K_ZIP_SHA256
from bayesmf._movielens_files import ML_LATEST_SMALL_SHA256 as ML_LATEST_SMALL_SHA256
from bayesmf.movielens import DATASETS as DATASETS
from bayesmf.movielens import ML100K_SPLITS as ML100K_SPLITS
from bayesmf.movielens import cache_dir as cache_dir
from bayesmf.movielens import download_ml100k as download_ml100k
from bayesmf.movielens import download_movielens as download_movielens
from bayesmf.movielens import load_movielens, movielens_features, movielens_items
from bayesmf.simulation import Simulation, simulate

__all__ = ["Simulation", "load_movielens", "movielens_features", "movielens_items", "simulate"]
