# Quick start: `make demo` runs the main job on an embedded SQLite file; `make test` runs everything.
# Both install what they need into .venv/ first (from uv.lock) and are quick on a second run.
SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.8
VENV := .venv
TOOLS := .tools
UV := $(TOOLS)/bin/uv
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)
# Precompiled bytecode: read-only commands answer in about a second even where PYTHONDONTWRITEBYTECODE is set.
export UV_COMPILE_BYTECODE := 1

.PHONY: install demo test lint typecheck unit bench clean

$(UV):
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is needed"'
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --quiet --python $(PYTHON)
	@touch $@

install: $(VENV)/.synced

demo: install
	$(VENV)/bin/iasu demo

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: install
	$(VENV)/bin/mypy .

test: install lint typecheck
	@bash tests/ensure_postgres.sh
	@# A module's tests on one worker: routing's and scheduling's simulated weeks are built once per database, not once per worker.
	$(VENV)/bin/pytest -n 2 --dist loadscope --no-loadscope-reorder

bench: install
	@bash tests/ensure_postgres.sh
	$(VENV)/bin/python -m benchmarks.run --readme

unit: install
	$(VENV)/bin/pytest tests/unit

clean:
	rm -rf $(VENV) $(TOOLS) var
