# Everything a fresh machine needs: Python 3.11+, make and a C compiler.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
CHAOS_STAMP := $(VENV)/.chaos-installed
CHAOS_FUZZ_S ?= 60
FAULT_TESTS := tests/e2e/test_redis_faults.py tests/e2e/test_process_lifecycle.py \
	tests/e2e/test_clock_skew.py tests/e2e/test_delivery_crash.py tests/unit/test_api_hostile.py \
	tests/unit/test_poller_hostile.py tests/unit/test_deliverer_faults.py \
	tests/unit/test_store_faults.py tests/e2e/test_sentinel_failover.py tests/e2e/test_cluster.py

.PHONY: install test lint run sim demo bench chaos mutate clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

$(CHAOS_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e '.[dev,chaos]'
	@touch $(CHAOS_STAMP)

# Real-process fault runs: three replicas under kill -9 with a Redis restart, Redis
# restarted empty, start-up failures, SIGTERM under load, a skewed replica, hostile
# upstreams, receivers and requests; then schemathesis against /openapi.json.
chaos: $(CHAOS_STAMP)
	$(PY) -m pytest -p no:cacheprovider -m chaos tests/chaos
	$(PY) -m pytest -p no:cacheprovider $(FAULT_TESTS)
	$(PY) tests/chaos/fuzz_api.py --max-time $(CHAOS_FUZZ_S)

lint: $(STAMP)
	$(PY) -m ruff check bridge tests bench
	$(PY) -m ruff format --check bridge tests bench
	$(PY) -m mypy bridge

run: $(STAMP)
	$(VENV)/bin/import-bridge run --config config/bridge.example.toml

demo: $(STAMP)
	$(VENV)/bin/import-bridge demo

sim: $(STAMP)
	$(VENV)/bin/import-bridge sim --listen 127.0.0.1:8900

bench: $(STAMP)
	$(PY) bench/poll_throughput.py

# Mutation testing of the pure policies and the SSRF guard (bench/README.md: about
# 20 minutes on 2 cores; not part of CI). Fails below 90 % of mutants killed.
mutate: $(STAMP)
	$(PY) bench/mutate.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
