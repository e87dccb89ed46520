"""The notebook runner starts over once on a timed-out cell, never on an error, and reports it."""

from __future__ import annotations

import nbformat
import pytest
from nbclient.exceptions import CellExecutionError, CellTimeoutError

from course_lib.notebook_runner import RunResult, execute, format_table


def _notebook(tmp_path, source: str):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source)]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    return path


@pytest.mark.timeout(120)
def test_a_cell_that_hangs_once_is_run_again(tmp_path):
    marker = tmp_path / "first_attempt_done"
    path = _notebook(
        tmp_path,
        f"import pathlib, time\nm = pathlib.Path({str(marker)!r})\n"
        "if not m.exists():\n    m.touch()\n    time.sleep(30)\nprint('ok')",
    )
    nb, seconds, attempts = execute(path, timeout=5, retries=1)
    assert attempts == 2 and seconds < 30
    assert nb.cells[0].outputs[0]["text"] == "ok\n"


@pytest.mark.timeout(120)
def test_a_cell_that_always_hangs_fails(tmp_path):
    path = _notebook(tmp_path, "import time\ntime.sleep(30)")
    with pytest.raises(CellTimeoutError):
        execute(path, timeout=3, retries=1)


@pytest.mark.timeout(120)
def test_an_error_is_never_retried(tmp_path):
    marker = tmp_path / "runs"
    path = _notebook(
        tmp_path,
        f"with open({str(marker)!r}, 'a') as f:\n    f.write('x')\nraise ValueError('boom')",
    )
    with pytest.raises(CellExecutionError, match="boom"):
        execute(path, timeout=30, retries=1)
    assert marker.read_text() == "x"


def test_time_table_shows_budget_and_attempts():
    table = format_table(
        [RunResult("01_mixture_of_experts", 70.0, fast=False), RunResult("04_grpo", 95.0, True, 2)]
    )
    rows = table.splitlines()
    assert rows[1].split() == ["01_mixture_of_experts", "full", "70.0", "300", "yes", "1"]
    assert rows[2].split() == ["04_grpo", "fast", "95.0", "90", "NO", "2"]
