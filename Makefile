# The project's vocabulary: run, test, lint, migration, bench.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-cluster lint format migration bench fuzz clean

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit("Bazaar needs Python 3.11 or newer" if sys.version_info < (3, 11) else 0)'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/bazaar serve

test: $(STAMP)
	$(BIN)/pytest --cov --cov-report=term $(PYTEST_ARGS)

# Only the cluster tests (also part of `make test`): HAProxy, three hosts, a PostgreSQL
# primary and replica, Redis; a few minutes. Needs haproxy (.ci/install-haproxy.sh).
test-cluster: $(STAMP)
	$(BIN)/pytest tests/cluster -p no:cacheprovider $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy src tests

format: $(STAMP)
	$(BIN)/ruff check --fix src tests bench
	$(BIN)/ruff format src tests bench

# make migration m="add a column"
migration: $(STAMP)
	$(BIN)/bazaar migrate
	$(BIN)/alembic -c alembic.ini revision --autogenerate -m "$(m)"

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage

# Bazaar beside its Starlette + asyncpg floor, on a throwaway PostgreSQL database;
# writes bench/results/<date>-<commit>.md. Needs wrk (apt-get install wrk).
# make bench BENCH_ARGS="--rounds 5 --duration 15"
bench: $(STAMP)
	$(BIN)/python bench/run.py $(BENCH_ARGS)

# Schemathesis on every operation and link, with many more examples than `make test`, on
# SQLite and, given BAZAAR_TEST_POSTGRES_URL, PostgreSQL.
# make fuzz FUZZ_EXAMPLES=2000 FUZZ_SEED=7
FUZZ_EXAMPLES ?= 300
FUZZ_SEED ?= 20261126
fuzz: $(STAMP)
	BAZAAR_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) BAZAAR_FUZZ_SEED=$(FUZZ_SEED) \
		$(BIN)/pytest tests/robustness/test_fuzz.py -s $(PYTEST_ARGS)
