# Two commands on a fresh clone:  `make demo`  and  `make test`.
PYTHON ?= python3.12
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO_ARGS ?=
PYTEST_ARGS ?=

.PHONY: demo test test-fast lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

## demo: fit MAP and the full posterior on the bundled ratings and write a report to demo-report/
demo: $(STAMP)
	$(BIN)/bayesmf demo --out demo-report $(DEMO_ARGS)

## test: lint, type-check, then the whole test suite (slow statistical tests and notebooks included)
test: $(STAMP) lint
	$(BIN)/python -m pytest --run-slow -n auto --dist worksteal --durations=40 $(PYTEST_ARGS)

## test-fast: the default tier only (a few minutes)
test-fast: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check bayesmf tests benchmarks notebooks
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) demo-report .pytest_cache .mypy_cache .ruff_cache
