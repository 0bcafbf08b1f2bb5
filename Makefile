# `make demo` and `make test` install what is missing into .venv, then run.
# Use an existing environment instead: make test VENV=/path/to/venv
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.sctnet-installed
PYTEST_ARGS ?=

.PHONY: install test demo clean-demo

$(STAMP): requirements.txt setup.py
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	@touch $(STAMP)

install: $(STAMP)

test: install
	$(PY) -m pytest -q $(PYTEST_ARGS) tests

demo: install
	$(PY) tools/demo.py $(DEMO_ARGS)

clean-demo:
	rm -rf demo_output
