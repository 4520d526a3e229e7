# The project's commands. `make demo` and `make test` each work alone on a fresh machine.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
ENV := eval "$$(dev/services env)"

.PHONY: setup services-up services-down demo test lint unit bench bench-dlt soak image clean

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
	$(ENV) && { code=0; $(VENV)/bin/idsync run --no-log-ids || code=$$?; \
	  echo "(exit code $$code; run 'make demo' again: it inserts 0)"; \
	  echo "(the time line: 'source wait' is FerretDB decoding each whole ~2 KB cluster to answer"; \
	  echo " a scan of _id, about 1,000 a second here; the rest is idsync. bench/README.md measures"; \
	  echo " a source that streams ids: 100,000 synced in about a second)"; \
	  $(VENV)/bin/idsync status --limit 5; exit $$code; }

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

# idsync against the job it replaces and against what the servers allow (bench/README.md): about
# 35 minutes on 2 cores (33 min measured for results.json); writes bench/results/results.md, results.json and wall_vs_n.png.
# BENCH_ARGS passes flags to bench.run, e.g. BENCH_ARGS="--sources mongo-java --repeat 5".
BENCH_ARGS ?=
bench: setup
	$(PY) -c 'import matplotlib, psutil, pyinstrument, dlt' 2>/dev/null || $(PY) -m pip install -q -e '.[bench]'
	dev/services up mariadb ferretdb mongo-java
	$(ENV) && $(PY) -m bench.run --out bench/results $(BENCH_ARGS)

# idsync beside dlt, the pipeline library a Python team would pick instead (bench/README.md, "idsync
# beside dlt"): mongo-java-server, scenarios (a)-(c), 10k and 100k clusters and a million {_id}
# documents, and dlt's whole-document variant at 10k once; about 35 minutes on 2 cores. Measures
# into bench/out/dlt, publishes bench/results/dlt.md and dlt.json.
DLT_RUN := $(PY) -m bench.run --sources mongo-java --scenarios abc --out bench/out/dlt
bench-dlt: setup
	$(PY) -c 'import matplotlib, psutil, pyinstrument, dlt; assert dlt.__version__ == "1.31.0"' 2>/dev/null || $(PY) -m pip install -q -e '.[bench]'
	dev/services up mariadb mongo-java
	$(ENV) && $(DLT_RUN) --sizes 10k,100k --contenders idsync,original,floor,dlt
	$(ENV) && $(DLT_RUN) --sizes 10k --contenders dlt-docs --repeat 1 --settle 10 --merge
	$(ENV) && $(DLT_RUN) --docs ids --sizes 1m --contenders idsync,floor,dlt --merge
	$(PY) -m bench.dlt_report bench/out/dlt

# A thousand faults (SIGKILL, SIGTERM, killed sessions, link resets, cuts and silences, server
# restarts), each followed by a run that must end exact, on private servers of its own; about an
# hour on 2 cores. Writes bench/results/soak.md. SOAK_ARGS passes flags, e.g. "--faults 100".
SOAK_ARGS ?=
soak: setup
	dev/services up all
	$(PY) -m tests.soak $(SOAK_ARGS)

# The container image localhost/idsync:<version>, built with buildah from a Debian base made
# locally (dev/image; root, buildah and debootstrap needed).
image:
	dev/image build

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

# `idsync watch` keeping a table complete live: by change stream (mongo-java-server), then by
# polling (FerretDB); inserts one by one and in a burst, shows /healthz, /metrics, SIGTERM.
.PHONY: demo-watch
demo-watch: setup
	dev/services up all
	$(ENV) && $(PY) dev/watch_demo.py
