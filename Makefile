# polarmap-search: `make demo` and `make test` set everything up on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Rebuilt only when the dependency declarations change, so a second `make setup` does nothing.
STAMP := $(VENV)/.installed

.PHONY: setup test lint format demo clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Two test processes, each test file whole in one (its module fixtures run once): the
# suite waits on Ray and subprocesses much of the time, so two fit on 2 cores. Tests
# marked `alone` (timing-sensitive) run afterwards in one process with nothing beside them.
TEST_WORKERS ?= 2

test: lint
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile -m "not alone"
	$(BIN)/python -m pytest -m alone

demo: setup
	$(BIN)/polarmap demo --out demo-run

clean:
	rm -rf $(VENV) demo-run .pytest_cache .ruff_cache *.egg-info
