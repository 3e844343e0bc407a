"""Context managers shared by the PyMC-backed routes (NUTS, ADVI): quiet logs, BLAS threads."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from threadpoolctl import threadpool_limits

__all__ = ["blas_limit", "quiet_pymc"]


@contextmanager
def blas_limit(threads: int | None) -> Iterator[None]:
    """Limit BLAS threads inside the block (None: leave them as they are).

    On small machines the BLAS threads of parallel chains fight over the cores; one BLAS
    thread per sampling thread avoids that.
    """
    if threads is None:
        yield
        return
    with threadpool_limits(limits=threads):
        yield


@contextmanager
def quiet_pymc(quiet: bool) -> Iterator[None]:
    """Silence PyMC's INFO log lines ("Finished...", "Sequential sampling...") in the block.

    bayesmf never prints; with ``progressbar=False`` the user asked for silence too.
    """
    if not quiet:
        yield
        return
    logger = logging.getLogger("pymc")
    level = logger.level
    logger.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        logger.setLevel(level)
