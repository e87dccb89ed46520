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
def test_notebook_runs(path, tmp_path, monkeypatch):
    # The kernel gets its own temporary folder, which must be empty again once it has stopped:
    # notebooks clean up what they write there (04's Llama copy, 05's stand-in model).
    scratch = tmp_path / "kernel_tmp"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    # FAST notebooks take about a minute in all; a cell still running after 240 s is a hang.
    _, seconds, attempts = execute(path, fast=True, timeout=240, retries=1)
    NOTEBOOK_RESULTS.append(RunResult(path.stem, seconds, fast=True, attempts=attempts))
    # torch keeps its compile cache in the temporary folder on purpose (torchinductor_<user>).
    left = sorted(p.name for p in scratch.iterdir() if not p.name.startswith("torchinductor_"))
    assert not left, f"{path.name} left these in the temporary folder: {left}"
