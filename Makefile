# Two commands on a fresh machine: `make run` (the product) and `make test` (the whole test suite).
# Both build the same virtual environment from the pinned requirements, once.
include .env

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

.PHONY: run test lint bench

# uv installs the same pinned versions as pip in about a third of the time (bench/RESULTS.md).
UV := $(VENV)/bin/uv pip install --quiet --python $(PY)

$(INSTALLED): requirements.txt requirements-nodeps.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet pip==26.3 uv==0.13.9
	$(UV) -r requirements.txt
	$(UV) --no-deps -r requirements-nodeps.txt
	$(UV) --no-deps -e .
	touch $@

# Trains a first model if models/$(MODEL_NAME) has none (MNIST_DIR=folder of IDX files to train
# without internet), then runs the local server and the client until Ctrl-C.
run: $(INSTALLED)
	@$(PY) scripts/start_server_and_app.py

test: $(INSTALLED)
	$(VENV)/bin/ruff check .
	$(PY) -m pytest

lint: $(INSTALLED)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
