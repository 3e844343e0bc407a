"""bayesmf: Bayesian probabilistic matrix factorization on PyMC.

Fit ``PMF`` models to ratings by MAP (find_MAP, ALS, SGD) or the full posterior (Gibbs,
NUTS, ADVI), and get recommendations with posterior-predictive intervals.
"""

from __future__ import annotations

import logging
from importlib.metadata import PackageNotFoundError, version

from bayesmf.binary import binarize
from bayesmf.choice_calibration import choice_reliability
from bayesmf.choice_horizon import ChoiceCalibrator, learn_choice_calibration, p_chosen_within
from bayesmf.data import IdEncoder, RatingsData
from bayesmf.datasets import (
    Simulation,
    load_movielens,
    movielens_features,
    movielens_items,
    simulate,
)
from bayesmf.exceptions import CollapsedFactorsWarning, ConvergenceWarning
from bayesmf.features import Features
from bayesmf.implicit_sets import with_implicit_pairs
from bayesmf.interactions import as_implicit, interactions_from_dataframe
from bayesmf.io import load
from bayesmf.joint import joint_scores, recommend_joint
from bayesmf.objective import objective
from bayesmf.options import PredictOptions
from bayesmf.replay import Replay, replay
from bayesmf.replay_choice import replay_choice
from bayesmf.results import FitResult
from bayesmf.spec import PMF
from bayesmf.split import ColdSplit, Split, cold_split, kfold, train_test_split

try:
    __version__ = version("bayesmf")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

logging.getLogger("bayesmf").addHandler(logging.NullHandler())

__all__ = [
    "PMF",
    "ChoiceCalibrator",
    "ColdSplit",
    "CollapsedFactorsWarning",
    "ConvergenceWarning",
    "Features",
    "FitResult",
    "IdEncoder",
    "PredictOptions",
    "RatingsData",
    "Replay",
    "Simulation",
    "Split",
    "__version__",
    "as_implicit",
    "binarize",
    "choice_reliability",
    "cold_split",
    "interactions_from_dataframe",
    "joint_scores",
    "kfold",
    "learn_choice_calibration",
    "load",
    "load_movielens",
    "movielens_features",
    "movielens_items",
    "objective",
    "p_chosen_within",
    "recommend_joint",
    "replay",
    "replay_choice",
    "simulate",
    "train_test_split",
    "with_implicit_pairs",
]
