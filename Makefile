# Everything a fresh machine needs: Python 3.11+, make and a C compiler.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install test lint run sim demo bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(PY) -m ruff check bridge tests bench
	$(PY) -m ruff format --check bridge tests bench
	$(PY) -m mypy bridge

run: $(STAMP)
	$(VENV)/bin/bridge run --config config/bridge.example.toml

demo: $(STAMP)
	$(VENV)/bin/bridge demo

sim: $(STAMP)
	$(VENV)/bin/bridge sim --listen 127.0.0.1:8900

bench: $(STAMP)
	$(PY) bench/poll_throughput.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
