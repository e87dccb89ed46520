"""Layer 3: every notebook runs top to bottom in a real Jupyter kernel under COURSE_FAST=1."""

from __future__ import annotations

import pytest

from tests.conftest import NOTEBOOK_RESULTS
from tools.notebook_runner import execute, notebook_paths

PATHS = notebook_paths()


def test_there_are_notebooks():
    assert PATHS, "notebooks/ holds no NN_name.ipynb files"


@pytest.mark.notebook
@pytest.mark.timeout(900)
@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_notebook_runs(path):
    # FAST notebooks take about a minute in all; a cell still running after 240 s is a hang, and
    # a cell whose reply comes long after the kernel finished it is a stall (both fail the test).
    _, result = execute(path, fast=True, timeout=240)
    NOTEBOOK_RESULTS.append(result)
