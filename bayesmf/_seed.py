"""One seed policy for every route and every downstream function.

A ``random_seed`` is an int >= 0, a `numpy.random.Generator`, or None (fresh entropy).
An int gives the same numbers on every call; a Generator is advanced by the call, so a
sequence of calls driven by one Generator is reproducible as a whole. Anything else is a
``TypeError`` naming the value.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["SeedLike", "base_seed", "check_seed", "generator", "seed_sequence"]

SeedLike = int | np.integer | np.random.Generator | None

_MAX_SEED = 2**63


def check_seed(random_seed: Any, name: str = "random_seed") -> SeedLike:
    """Return ``random_seed`` if it is an int >= 0, a numpy Generator or None; else raise."""
    if random_seed is None or isinstance(random_seed, np.random.Generator):
        return random_seed
    if isinstance(random_seed, bool) or not isinstance(random_seed, (int, np.integer)):
        raise TypeError(
            f"{name} must be an int >= 0, a numpy.random.Generator or None, got {random_seed!r}"
        )
    if random_seed < 0:
        raise ValueError(f"{name} must be >= 0, got {random_seed!r}")
    return int(random_seed)


def generator(random_seed: Any, name: str = "random_seed") -> np.random.Generator:
    """Return a Generator: ``default_rng(seed)`` for an int or None, the Generator itself if given one."""
    seed = check_seed(random_seed, name)
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


def seed_sequence(random_seed: Any, name: str = "random_seed") -> np.random.SeedSequence:
    """Return a `numpy.random.SeedSequence` (to ``spawn`` per-chain streams from).

    An int ``s`` gives ``SeedSequence(s)``; a Generator gives a sequence seeded by one
    63-bit integer drawn from it; None, fresh entropy (``int(seq.entropy)`` repeats it).
    """
    seed = check_seed(random_seed, name)
    if isinstance(seed, np.random.Generator):
        return np.random.SeedSequence(int(seed.integers(_MAX_SEED)))
    return np.random.SeedSequence(seed)


def base_seed(random_seed: Any, name: str = "random_seed") -> int:
    """Return a 63-bit integer seed: the int itself, one drawn from a Generator, or fresh entropy."""
    seed = check_seed(random_seed, name)
    if isinstance(seed, np.random.Generator):
        return int(seed.integers(_MAX_SEED))
    if seed is None:
        return int(np.random.SeedSequence().generate_state(2, np.uint64)[0] >> np.uint64(1))
    return int(seed)
