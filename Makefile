# The two set-up commands of the README: `make serve` and `make test`.
# Both create .venv and install the project into it on first use.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
export FIELDLEDGER_TEST_DATABASE_URL ?= postgresql://postgres@127.0.0.1:5432/test
# Parallel test workers (pytest-xdist); 2 cores here.
WORKERS ?= 2

.PHONY: serve test test-unit test-integration test-e2e lint bench

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

# `make serve HOST=0.0.0.0 PORT=8080`: where it listens (default 127.0.0.1:8000).
HOST ?= 127.0.0.1
PORT ?= 8000

serve: $(VENV)/.installed
	$(VENV)/bin/fieldledger serve --host $(HOST) --port $(PORT)

test: $(VENV)/.installed
	bash .ci/ensure-postgres
	$(PY) -m pytest -n $(WORKERS) -q tests
	$(MAKE) --no-print-directory lint

test-unit: $(VENV)/.installed
	$(PY) -m pytest -q tests/unit

test-integration: $(VENV)/.installed
	bash .ci/ensure-postgres
	$(PY) -m pytest -n $(WORKERS) -q tests/integration

test-e2e: $(VENV)/.installed
	bash .ci/ensure-postgres
	$(PY) -m pytest -n $(WORKERS) -q tests/e2e

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check src tests bench
	bash .ci/mypy
