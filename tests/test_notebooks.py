"""Layer 3: every notebook runs top to bottom in a real Jupyter kernel under COURSE_FAST=1."""

from __future__ import annotations

import pytest

from course_lib.notebook_runner import RunResult, execute, notebook_paths
from tests.conftest import NOTEBOOK_RESULTS

PATHS = notebook_paths()


def test_there_are_notebooks():
    assert PATHS, "notebooks/ holds no NN_name.ipynb files"


@pytest.mark.notebook
@pytest.mark.timeout(900)
@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_notebook_runs(path):
    # FAST notebooks take about a minute in all; a cell still running after 240 s is a hang.
    _, seconds, attempts = execute(path, fast=True, timeout=240, retries=1)
    NOTEBOOK_RESULTS.append(RunResult(path.stem, seconds, fast=True, attempts=attempts))
