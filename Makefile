# logq: `make run` starts a standalone broker, `make test` runs lint, types and the whole suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run cluster cluster-stop test lint typecheck unit bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/logq broker start

# Cluster mode (preview): ZooKeeper and three brokers on 127.0.0.1 (scripts/cluster.sh; data in ./cluster-data).
cluster: $(STAMP)
	scripts/cluster.sh start

cluster-stop:
	scripts/cluster.sh stop

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/python -m pytest

test: lint typecheck unit

# The broker benchmark compares with Redis Streams (apt-get install redis-server) in the same run.
bench: $(STAMP)
	$(BIN)/python benchmarks/storage_bench.py
	$(BIN)/python benchmarks/broker_bench.py $(if $(wildcard ../shared/bench/peers),--peers ../shared/bench/peers)
	$(BIN)/python benchmarks/client_bench.py
	$(BIN)/python benchmarks/cluster_bench.py
	$(BIN)/python benchmarks/partitions_bench.py

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache .hypothesis
