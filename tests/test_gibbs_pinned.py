"""Same seed, same draws: every Gibbs variant against draws pinned before the sampler's restructuring.

The pinned file was written by ``tests/pin_gibbs.py`` from the monolithic sampler (commit
33ede0a). On the machine that wrote it the restructured sampler reproduces it bit for bit;
the tolerance below only absorbs what a different CPU may change in the Gram sums' rounding
(`bayesmf.inference` compiles them with ``fastmath`` reassociation), far below what any
change in the order of random numbers or updates would move (order 1).
"""

from __future__ import annotations

import numpy as np
import pytest
from pin_gibbs import PINNED, VARIANTS, run_variant


@pytest.mark.parametrize("name", list(VARIANTS))
def test_gibbs_draws_match_pinned(name: str) -> None:
    pinned = np.load(PINNED)
    expected = {key: pinned[key] for key in pinned.files if key.startswith(f"{name}/")}
    got = run_variant(name)
    assert sorted(got) == sorted(expected)
    for key, value in got.items():
        np.testing.assert_allclose(value, expected[key], rtol=1e-8, atol=1e-10, err_msg=key)
