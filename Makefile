# Inside DeepSeek-R1: two commands.
#   make lab   create .venv if missing, install the course, open JupyterLab on notebooks/
#   make test  create/reuse .venv, install the course with its test extras, run every test
# Everything else here serves those two.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch goes in first, pinned, so pip never swaps in a different build behind your back.
# A range 2.13 satisfies is in pyproject.toml; override e.g. `make lab TORCH=torch==2.12.0`.
TORCH ?= torch==2.13.0
# Extra flags for JupyterLab, e.g. `make lab LAB_ARGS="--no-browser --ServerApp.port=9999"`.
LAB_ARGS ?=
# Jupyter refuses to run as root (containers, CI) unless told to.
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root)
PYTEST_ARGS ?=

.PHONY: lab test lint install install-test clean help

help:
	@echo "make lab    open the course in JupyterLab (installs into $(VENV) on first run)"
	@echo "make test   run the whole test suite, notebooks included"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[rl]"
	@touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[test,rl]"
	@touch $(VENV)/.installed $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

lab: | $(BIN)/python
	@$(BIN)/python -c "import course_lib, jupyterlab" 2>/dev/null || $(MAKE) --no-print-directory install
	$(BIN)/python -m jupyter lab --ServerApp.root_dir=notebooks --ServerApp.ip=127.0.0.1 $(ROOT_FLAG) $(LAB_ARGS)

lint: $(VENV)/.installed-test
	$(BIN)/python -m ruff check course_lib tools tests benchmarks notebooks

test: lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache course_lib.egg-info *.egg-info
