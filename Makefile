# The project's vocabulary: run, test, check, lint, migration, bench. `make help` lists them.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Serving needs the runtime only; testing and linting add the dev tools on top.
RUNTIME := $(VENV)/.installed-runtime
DEV := $(VENV)/.installed-dev
# Where `make run` listens: `make run PORT=8001 HOST=0.0.0.0`. Given on the command line
# only: shells export HOST as the machine's name, and platforms set PORT for their own use.
HOST := 127.0.0.1
PORT := 8000

.DEFAULT_GOAL := help
.PHONY: help run test test-cluster check lint format migration bench fuzz clean

help: ## list the targets
	@echo "Bazaar: make TARGET [VARIABLE=value ...]"
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  %-13s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# The pip a venv starts with can be years old: a current one installs from its cache faster.
$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit("Bazaar needs Python 3.11 or newer" if sys.version_info < (3, 11) else 0)'
	@echo "make: creating the virtual environment in $(VENV)"
	@$(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip

# --no-compile: Python compiles what it imports on first use; compiling every module of
# every package at install took 20 of the install's 30 s on this machine.
$(RUNTIME): $(BIN)/python pyproject.toml constraints.txt
	@echo "make: installing Bazaar and what it needs to serve into $(VENV) (about a minute the first time)"
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-compile -c constraints.txt -e .
	@touch $(RUNTIME)

$(DEV): $(RUNTIME)
	@echo "make: installing the test and lint tools into $(VENV) (pytest, ruff, mypy, Playwright, Schemathesis)"
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-compile -c constraints.txt -e '.[dev]'
	@touch $(DEV)

run: $(RUNTIME) ## migrate, then serve on http://127.0.0.1:8000 (make run PORT=8001 HOST=0.0.0.0)
	@echo "make: starting Bazaar on http://$(HOST):$(PORT) (the API's docs at /docs; Ctrl-C stops)"
	$(BIN)/bazaar serve --host $(HOST) --port $(PORT)

# Tests run in a process per core (pytest-xdist): a module with slow tests, and each folder
# whose tests share servers (tests/faults, tests/cluster), stays in one (tests/conftest.py).
# TEST_WORKERS=0 runs them all in one.
TEST_WORKERS ?= auto
XDIST = -n $(TEST_WORKERS) --dist loadgroup

# COVERAGE=1 (as CI runs it) measures coverage, of the `bazaar` subprocesses too, and
# reports it: tracing every line takes about half as long again (4 min, 6 with it).
COVERAGE ?=
COVERAGE_ARGS = $(if $(filter 1,$(COVERAGE)),--cov --cov-report=term)

test: $(DEV) ## the whole test suite (COVERAGE=1 measures coverage; PYTEST_ARGS="-x tests/items")
	$(BIN)/pytest $(XDIST) $(COVERAGE_ARGS) $(PYTEST_ARGS)

check: lint ## lint, then the fast tests (not those marked slow): the edit-test loop
	$(BIN)/pytest $(XDIST) -q -m "not slow" --no-cov $(PYTEST_ARGS)

# Only the cluster tests (also part of `make test`): HAProxy, three hosts, a PostgreSQL
# primary and replica, Redis; a few minutes. Needs haproxy (.ci/install-haproxy.sh).
test-cluster: $(DEV) ## only the cluster tests: HAProxy, three hosts, primary and replica
	$(BIN)/pytest tests/cluster -p no:cacheprovider $(PYTEST_ARGS)

lint: $(DEV) ## ruff check, ruff format --check, mypy --strict
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy src tests bench

format: $(DEV) ## ruff check --fix and ruff format
	$(BIN)/ruff check --fix src tests bench
	$(BIN)/ruff format src tests bench

migration: $(DEV) ## autogenerate an Alembic revision (make migration m="add a column")
	$(BIN)/bazaar migrate
	$(BIN)/alembic -c alembic.ini revision --autogenerate -m "$(m)"

clean: ## remove the virtual environment and the tools' caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage

# Bazaar beside its Starlette + asyncpg floor, on a throwaway PostgreSQL database;
# writes bench/results/<date>-<commit>.md. Needs wrk (apt-get install wrk).
bench: $(DEV) ## Bazaar beside its floor on PostgreSQL (make bench BENCH_ARGS="--rounds 5 --duration 15")
	$(BIN)/python bench/run.py $(BENCH_ARGS)

# Schemathesis on every operation and link, with many more examples than `make test` and its
# coverage phase (boundary values), on SQLite and, given BAZAAR_TEST_POSTGRES_URL, PostgreSQL.
FUZZ_EXAMPLES ?= 300
FUZZ_SEED ?= 20261126
fuzz: $(DEV) ## Schemathesis with many examples (make fuzz FUZZ_EXAMPLES=2000 FUZZ_SEED=7)
	BAZAAR_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) BAZAAR_FUZZ_SEED=$(FUZZ_SEED) BAZAAR_FUZZ_COVERAGE_PHASE=1 \
		$(BIN)/pytest tests/robustness/test_fuzz.py -s $(PYTEST_ARGS)
