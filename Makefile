# logq: `make run` starts a standalone broker, `make test` runs lint, types and the whole suite.
# Needs only python3 (3.11+) with venv, and make. `make test` also installs, with apt-get when run as
# root, the Debian packages its tests drive: kcat, zookeeper (with Java), e2fsprogs and prometheus.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
RUN_STAMP := $(VENV)/.installed-run
TEST_STAMP := $(VENV)/.installed-test
TEST_DEBS := kcat zookeeper e2fsprogs prometheus

.PHONY: run cluster cluster-stop test test-deps lint typecheck unit bench clean

# A fresh Debian has python3 but often not its venv module (package python3-venv): say so in one line.
$(VENV)/bin/python:
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null || \
		{ echo "logq needs Python 3.11 or newer as '$(PYTHON)' (set PYTHON=...)"; exit 1; }
	@$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || \
		{ echo "Python's venv module is missing: apt-get install python3-venv (then run make again)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Running needs the package alone; the test extras (clients, linters) are installed by `make test` only.
# The install also compiles the record codec (setup.py): a changed C file is built again.
CODEC_SOURCES := setup.py logq/client/_records.c
$(RUN_STAMP): pyproject.toml $(CODEC_SOURCES) | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(TEST_STAMP): pyproject.toml $(CODEC_SOURCES) | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(RUN_STAMP)

run: $(RUN_STAMP)
	$(BIN)/logq broker start

# Cluster mode: ZooKeeper and three brokers on 127.0.0.1 (scripts/cluster.sh; data in ./cluster-data).
cluster: $(RUN_STAMP)
	scripts/cluster.sh start

cluster-stop:
	scripts/cluster.sh stop

# kcat (a real Kafka client), ZooKeeper (the cluster tests' server) and e2fsprogs (mkfs.ext4 for the
# full-disk tests' small file systems) and prometheus (promtool checks configs/prometheus/, the server runs
# the dashboard's queries): installed when missing if we may, otherwise one line says what to install
# (their tests then skip, with the reason, outside CI).
test-deps:
	@scripts/test-deps.sh $(TEST_DEBS)

lint: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# cli/ is installed as logq_cli: give mypy that name through a link (pyproject.toml's mypy_path).
typecheck: $(TEST_STAMP)
	@mkdir -p build/typecheck && ln -sfn ../../cli build/typecheck/logq_cli
	$(BIN)/mypy

# Three worker processes (pytest-xdist), each test file on one of them: most tests wait on broker
# processes, clients and ZooKeeper rather than compute, so three share this 2-core machine well.
unit: $(TEST_STAMP) test-deps
	$(BIN)/python -m pytest -n 3 --dist loadfile

test: lint typecheck unit

# The broker benchmark compares with Redis Streams (apt-get install redis-server) in the same run;
# PEERS=DIR adds a directory of peer benchmark scripts (its redis_streams_bench.py) to that comparison.
PEERS ?=
bench: $(TEST_STAMP)
	$(BIN)/python benchmarks/storage_bench.py
	$(BIN)/python benchmarks/broker_bench.py $(if $(PEERS),--peers $(PEERS))
	$(BIN)/python benchmarks/latency_bench.py
	$(BIN)/python benchmarks/small_requests_bench.py
	$(BIN)/python benchmarks/client_bench.py
	$(BIN)/python benchmarks/cluster_bench.py
	$(BIN)/python benchmarks/partitions_bench.py
	$(BIN)/python benchmarks/security_bench.py
	$(BIN)/python benchmarks/tls_costs.py
	$(BIN)/python benchmarks/recompression_bench.py
	$(BIN)/python benchmarks/compaction_bench.py

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache .hypothesis logq/client/*.so
