# The project's commands. `make demo` and `make test` each work alone on a fresh machine.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
ENV := eval "$$(dev/services env)"

.PHONY: setup services-up services-down demo test lint unit bench clean

setup: $(STAMP)

# Debian packages for the MySQL driver's build, then the package (editable) with its dev tools.
$(STAMP): pyproject.toml
	dev/services deps
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

services-up:
	dev/services up

services-down:
	dev/services down

# Start the servers, load a realistic sample, pre-fill part of the table, sync, show the report.
demo: setup services-up
	$(ENV) && $(VENV)/bin/idsync init
	$(ENV) && $(PY) -m bench.datagen --n 30000 --prefill 0.6
	$(ENV) && $(VENV)/bin/idsync run --no-log-ids; code=$$?; \
	  echo "(exit code $$code; run 'make demo' again: it inserts 0)"; exit $$code

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

unit: setup
	$(PY) -m pytest tests/unit -q

# The whole suite against the local servers (or IDSYNC_TEST_MONGO_URI / IDSYNC_TEST_MYSQL_URL).
test: setup lint
	dev/services up all
	$(PY) -m pytest

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
