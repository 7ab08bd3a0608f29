# Two commands on a fresh machine: `make run` (the product) and `make test` (the whole test suite).
# Both build the same virtual environment from the pinned requirements, once.
include .env

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

.PHONY: run test lint bench

$(INSTALLED): requirements.txt requirements-nodeps.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet pip==26.3
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -r requirements-nodeps.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

# Trains a first model if models/$(MODEL_NAME) has none (MNIST_DIR=folder of IDX files to train
# without internet), then runs the local server and the client until Ctrl-C.
run: $(INSTALLED)
	$(PY) scripts/start_server_and_app.py

test: $(INSTALLED)
	$(VENV)/bin/ruff check .
	$(PY) -m pytest

lint: $(INSTALLED)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
