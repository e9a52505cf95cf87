# fairrec: `make demo` and `make test` are the whole quick start.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: install demo test test-all bench docs clean

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test,spark,docs]'
	@touch $(STAMP)

install: $(STAMP)

## Train and evaluate the quickstart candidates on built-in synthetic data, log to MLflow, print results.
demo: install
	$(VENV)/bin/fairrec run configs/quickstart.yaml --out runs/quickstart

## The default test suite (slow tests excluded; `make test-all` runs everything).
test: install
	$(PY) -m pytest

test-all: install
	$(PY) -m pytest -m ""

bench: install
	$(PY) benchmarks/scale.py

## The API reference, generated from the docstrings with pdoc (offline), into docs/api/.
docs: install
	$(PY) docs/build_api.py docs/api

clean:
	rm -rf runs mlruns mlartifacts mlflow.db .pytest_cache docs/api
