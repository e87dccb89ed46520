# Inside DeepSeek-R1: two commands.
#   make lab   create .venv if missing, install the course with its `lab` extra (JupyterLab and the
#              kernel), open JupyterLab on notebooks/
#   make test  create/reuse .venv, install the course with its lab and test extras, run every test
#              (with CI=true, then also `make test-lowest`: the lowest allowed versions)
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
# The lowest-versions run: a fresh venv with the LOWER bound of every range in pyproject.toml.
LOWEST_PYTHON ?= python3.11
LOWEST_VENV ?= .venv-lowest

.PHONY: lab test test-lowest lint shots install install-test clean help

help:
	@echo "make lab    open the course in JupyterLab (installs into $(VENV) on first run)"
	@echo "make test   run the whole test suite, notebooks and browser included"
	@echo "make test-lowest  the same tests with the lowest versions pyproject.toml allows"
	@echo "make shots  screenshots of every notebook in JupyterLab and a contact sheet (build/shots/)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[lab,rl]"
	@touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[lab,test,rl]"
	@touch $(VENV)/.installed $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

lab: | $(BIN)/python
	@$(BIN)/python -c "import course_lib, jupyterlab, ipykernel" 2>/dev/null || $(MAKE) --no-print-directory install
	$(BIN)/python -m jupyter lab --ServerApp.root_dir=notebooks --ServerApp.ip=127.0.0.1 $(ROOT_FLAG) $(LAB_ARGS)

lint: $(VENV)/.installed-test
	$(BIN)/python -m ruff check course_lib tools tests benchmarks notebooks

# In CI (CI=true) the lowest-versions run follows, so a lower bound that stops working fails CI.
test: lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)
ifeq ($(CI),true)
	$(MAKE) --no-print-directory test-lowest
endif

# Proves the lower bounds: installs exactly the lowest version of every dependency range (and
# extra) of pyproject.toml into a fresh $(LOWEST_VENV), checks that is what got installed, then runs
# the unit tests and the FAST notebooks (not the lint: old ruff releases read code differently; not
# the browser layer, which checks the page with today's JupyterLab and runs once, in `make test`).
test-lowest:
	rm -rf $(LOWEST_VENV)
	$(LOWEST_PYTHON) -m venv $(LOWEST_VENV)
	$(LOWEST_VENV)/bin/python -m pip install --quiet --upgrade pip packaging
	$(LOWEST_VENV)/bin/python tools/lowest_requirements.py > $(LOWEST_VENV)/lowest.txt
	$(LOWEST_VENV)/bin/python -m pip install --quiet -r $(LOWEST_VENV)/lowest.txt
	$(LOWEST_VENV)/bin/python -m pip install --quiet --no-deps -e .
	$(LOWEST_VENV)/bin/python -m pip check
	$(LOWEST_VENV)/bin/python tools/lowest_requirements.py --check
	$(LOWEST_VENV)/bin/python -m pytest -p no:cacheprovider -m "not browser" $(PYTEST_ARGS)

# The browser tests alone: every notebook run in JupyterLab in headless Chromium, every control
# moved; screenshots and a contact sheet go to $COURSE_SHOTS (default build/shots/index.html).
shots: $(VENV)/.installed-test
	$(BIN)/python -m pytest tests/browser $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) $(LOWEST_VENV) .pytest_cache .ruff_cache course_lib.egg-info *.egg-info
