"""Test tiers: the default run is fast; ``--run-slow`` adds long statistical checks."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")


PACKAGE = Path(__file__).resolve().parent.parent / "bayesmf"


def pytest_configure(config: pytest.Config) -> None:
    """Drop numba's on-disk kernels when any source of the package changed since they were made.

    numba checks a cached kernel against its own file only: a kernel that inlines a helper
    from another module (the row kernels and `bayesmf.inference._rows.gram_and_rhs`, say)
    keeps running the old helper after that module is edited, and the tests would pass on
    code that is no longer there. Run once, by the controller (not by xdist's workers, which
    load the kernels while it waits).
    """
    if hasattr(config, "workerinput"):
        return
    digest = hashlib.sha256()
    for path in sorted(PACKAGE.rglob("*.py")):
        digest.update(str(path.relative_to(PACKAGE)).encode() + b"\0" + path.read_bytes())
    stamp = PACKAGE / "__pycache__" / "numba-sources.sha256"
    if stamp.is_file() and stamp.read_text() == digest.hexdigest():
        return
    try:
        for cached in (*PACKAGE.rglob("*.nbi"), *PACKAGE.rglob("*.nbc")):
            cached.unlink(missing_ok=True)
        stamp.parent.mkdir(exist_ok=True)
        stamp.write_text(digest.hexdigest())
    except OSError:  # a read-only checkout: numba cannot have written there either
        pass


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--run-slow", action="store_true", default=False, help="also run tests marked slow"
    )


# The longest tests (minutes each; `make test` prints the slowest 40), started first under
# pytest-xdist so that none of them is left running alone at the end of the run.
LONGEST = (
    "test_runs_stopped_by_the_rule_calibrate",
    "test_simulation_based_calibration_per_side_prior",
    "test_simulation_based_calibration_with_some_rows_sparse",
    "test_notebook_runs",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("--run-slow"):
        skip = pytest.mark.skip(reason="slow: run with --run-slow")
        for item in items:
            if "slow" in item.keywords:
                item.add_marker(skip)
        return
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        items[:] = _long_first(items, workers)


def _long_first(items: list[pytest.Item], workers: int) -> list[pytest.Item]:
    """Order the items so that each xdist worker starts with its share of the slow tests.

    pytest-xdist's ``worksteal`` scheduler hands each worker an equal consecutive block of
    the collection and lets idle workers steal from the end of others' blocks. Dealing the
    slow tests (longest first) round-robin to the front of the blocks starts every long test
    early. Every worker collects the same items, so every worker computes the same order.
    """
    slow = [item for item in items if "slow" in item.keywords]
    fast = [item for item in items if "slow" not in item.keywords]
    slow.sort(key=lambda item: next((k for k, name in enumerate(LONGEST) if item.name.startswith(name)), len(LONGEST)))
    blocks: list[list[pytest.Item]] = [slow[w::workers] for w in range(workers)]
    for block, n in zip(blocks, _block_sizes(len(items), workers), strict=True):
        take = max(0, n - len(block))
        block.extend(fast[:take])
        del fast[:take]
    blocks[-1].extend(fast)
    return [item for block in blocks for item in block]


def _block_sizes(n: int, workers: int) -> list[int]:
    """Block sizes worksteal hands out: worker i gets ``remaining // workers_left``."""
    sizes = []
    for left in range(workers, 0, -1):
        sizes.append(n // left)
        n -= sizes[-1]
    return sizes


@pytest.fixture(scope="session")
def shared_data_dir() -> str | None:
    """Directory holding ml-100k (``$BAYESMF_DATA_DIR`` or ../shared/data), or None."""
    here = os.path.dirname(os.path.abspath(__file__))
    for candidate in (os.environ.get("BAYESMF_DATA_DIR"), os.path.join(here, "..", "..", "shared", "data")):
        if candidate and os.path.isfile(os.path.join(candidate, "ml-100k", "u.data")):
            return os.path.abspath(candidate)
    return None
