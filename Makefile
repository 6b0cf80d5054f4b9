# Two entry points, both idempotent: `make demo` and `make test`.
# The virtualenv is rebuilt only when pyproject.toml or this Makefile changes (stamp files).
#
# torch: CPU machines get torch==2.13.0 by default. On a GPU machine choose a CUDA build, e.g.
#   make test TORCH_SPEC="torch==2.9.1" TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cu128"
# or install torch into .venv yourself first and pass TORCH_SPEC="" to leave it alone.

PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
TORCH_PIP_ARGS ?=
PIP := $(VENV)/bin/python -m pip
PYTEST_ARGS ?= -n 2

.PHONY: demo test test-real lint install install-dev clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.stamp-base: $(VENV)/bin/python pyproject.toml Makefile
	@if [ -n "$(TORCH_SPEC)" ]; then $(PIP) install --quiet "$(TORCH_SPEC)" $(TORCH_PIP_ARGS); fi
	$(PIP) install --quiet -e .
	@touch $@

$(VENV)/.stamp-dev: $(VENV)/.stamp-base
	$(PIP) install --quiet -e ".[dev]"
	@touch $@

install: $(VENV)/.stamp-base
install-dev: $(VENV)/.stamp-dev

demo: $(VENV)/.stamp-base
	$(VENV)/bin/eat demo

lint: $(VENV)/.stamp-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# Unit tests on tiny models in parallel, then the real-model tier (`-m real`, one process: one 2.4 GB model
# loaded once). The real tier skips with the command that makes the models when they are missing, and fails
# instead under EAT_REQUIRE_REAL_MODELS=1 (.ci/run).
test: lint
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS) -m "not real"
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-2} $(VENV)/bin/python -m pytest -m "real and not slow" -p no:xdist

test-real: $(VENV)/.stamp-dev
	$(VENV)/bin/python -m pytest -m real -p no:xdist

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
