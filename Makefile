# `make test` and `make lab` install what they need into .venv first; a fresh
# machine needs only python3, pip, make and gcc.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=
# two workers: PoCL already spreads each kernel over the cores, the second hides compile latency
PYTEST_WORKERS ?= 2

.PHONY: install install-lab test lab bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $@

$(VENV)/.lab: pyproject.toml $(VENV)/.dev
	$(BIN)/python -m pip install -q -e ".[dev,lab]"
	touch $@

install: $(VENV)/.dev

install-lab: $(VENV)/.lab

test: $(VENV)/.dev
	$(BIN)/python -m pytest -q -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

lab: $(VENV)/.lab
	$(BIN)/python -m kernel_ext install --sys-prefix
	$(BIN)/jupyter lab --notebook-dir=notebooks

bench: $(VENV)/.dev
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) .pytest_cache
