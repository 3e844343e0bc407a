"""Tests of FitResult's forwarded methods (real signatures and docstrings) and import direction."""

from __future__ import annotations

import ast
import importlib
import inspect

import pytest
from helpers import fake_result

from bayesmf.results import FitResult
from bayesmf.spec import PMF

FORWARDED = {
    "predict": "bayesmf.predict",
    "predict_draws": "bayesmf.predict",
    "predict_proba": "bayesmf.predict",
    "recommend": "bayesmf.recommend",
    "fold_in": "bayesmf.recommend",
    "diagnose": "bayesmf.diagnostics",
    "save": "bayesmf.io",
    "thin": "bayesmf.thinning",
}


@pytest.mark.parametrize("name", sorted(FORWARDED))
def test_methods_show_the_functions_signature_and_docstring(name):
    func = getattr(importlib.import_module(FORWARDED[name]), name)
    method = getattr(FitResult, name)
    target = list(inspect.signature(func).parameters.values())
    params = list(inspect.signature(method).parameters.values())
    assert params[0].name == "self"
    assert params[1:] == target[1:]
    assert inspect.signature(method).return_annotation == inspect.signature(func).return_annotation
    assert method.__doc__ == func.__doc__ and method.__doc__
    assert method.__qualname__ == f"FitResult.{name}"
    bound = getattr(fake_result(PMF(n_factors=2), n_users=4, n_items=3), name)
    assert list(inspect.signature(bound).parameters.values()) == target[1:]


def test_method_calls_the_function():
    from bayesmf.predict import predict

    result = fake_result(PMF(n_factors=2), n_users=6, n_items=5, seed=2)
    a = result.predict(result.train, prob=0.8, interval="hdi", random_seed=1)
    b = predict(result, result.train, prob=0.8, interval="hdi", random_seed=1)
    assert a.equals(b)
    assert "prob" in inspect.signature(result.predict).parameters


def _imported(module: str) -> set[str]:
    """Every bayesmf module ``module`` imports, at the top or inside functions."""
    tree = ast.parse(inspect.getsource(importlib.import_module(module)))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
    return {m for m in out if m.startswith("bayesmf")}


def test_io_results_storage_import_one_way():
    """io -> results -> storage: no module imports one that imports it back."""
    assert "bayesmf.results" in _imported("bayesmf.io")
    assert not _imported("bayesmf.results") & {"bayesmf.io", "bayesmf.predict", "bayesmf.recommend", "bayesmf.storage"}
    assert not _imported("bayesmf.storage") & {"bayesmf.io", "bayesmf.results", "bayesmf"}
