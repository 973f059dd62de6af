# crossmatch: the two commands are `make demo` and `make test`.
# Everything here runs offline with telemetry off; the settings are exported
# so every child process (dvc, prefect, python) sees them.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.installed

export PATH := $(BIN):$(PATH)
export OMP_NUM_THREADS := 1
export MKL_NUM_THREADS := 1
export PREFECT_HOME := $(CURDIR)/.prefect
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS := 90
export PREFECT_LOGGING_LEVEL := WARNING
export DO_NOT_TRACK := 1
export DVC_NO_ANALYTICS := 1
export PYTHONHASHSEED := 0

.PHONY: setup lock demo test lint bench serve concurrency clean

setup: $(STAMP) .dvc/config
	@$(BIN)/dvc config core.analytics false

# Every dependency at the exact version of requirements.lock (torch: the local CPU wheel 2.13.0+cpu),
# then the project itself without resolving anything again; pip check fails on a broken lock.
$(STAMP): pyproject.toml constraints.txt requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	$(BIN)/pip check
	touch $(STAMP)

# Regenerate requirements.lock from pyproject.toml (extras dev, dask) under constraints.txt. Existing
# pins are kept where they still satisfy the specs; `make lock LOCK_ARGS=--upgrade` moves every pin
# to the newest allowed release, `LOCK_ARGS='-P highspy'` only that package.
LOCK_ARGS ?=
lock:
	$(BIN)/pip-compile --quiet --extra dev --extra dask -c constraints.txt --strip-extras --allow-unsafe \
	  --no-emit-index-url --no-emit-find-links --no-emit-trusted-host $(LOCK_ARGS) -o requirements.lock pyproject.toml

.dvc/config:
	$(BIN)/dvc init --quiet
	$(BIN)/dvc config core.analytics false

# Command 1: set up, then run the default pipeline end to end through the Prefect flow.
demo: setup
	$(BIN)/crossmatch run

# Command 2: set up, lint and type-check (the lint target), then run the whole test suite.
# pytest's exit code 5 ("no tests collected") is turned into a failure so an empty run never passes.
# Two pytest-xdist workers, one test file each at a time (module fixtures are built once): on 2 cores
# the suite takes ~11 min instead of ~19 serially; TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= 2
test: setup lint
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile --durations=20; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi; exit $$rc

# ruff on the whole tree and mypy on crossmatch/, stages/, flows/, benchmarks/ (both configured in pyproject.toml).
lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: setup
	@for b in benchmarks/bench_*.py; do m=$$(basename $$b .py); echo "== benchmarks.$$m"; $(BIN)/python -m benchmarks.$$m || exit 1; done

# Tag concurrency limits on the Prefect server in use (dvc = 1; gpu = CUDA devices, or CPU cores without CUDA).
concurrency: setup
	$(BIN)/crossmatch concurrency

clean:
	rm -rf $(VENV) .prefect
