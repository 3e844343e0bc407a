"""Test tiers: the default run is fast; ``--run-slow`` adds long statistical checks."""

from __future__ import annotations

import os

import matplotlib
import pytest

matplotlib.use("Agg")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--run-slow", action="store_true", default=False, help="also run tests marked slow"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def shared_data_dir() -> str | None:
    """Directory holding ml-100k (``$BAYESMF_DATA_DIR`` or ../shared/data), or None."""
    here = os.path.dirname(os.path.abspath(__file__))
    for candidate in (os.environ.get("BAYESMF_DATA_DIR"), os.path.join(here, "..", "..", "shared", "data")):
        if candidate and os.path.isfile(os.path.join(candidate, "ml-100k", "u.data")):
            return os.path.abspath(candidate)
    return None
