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
def test_notebook_runs(path, tmp_path, monkeypatch):
    # The kernel gets its own temporary folder, which must be empty again once it has stopped:
    # notebooks clean up what they write there (04's Llama copy, 05's stand-in model).
    scratch = tmp_path / "kernel_tmp"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    # FAST notebooks take about a minute in all; a cell still running after 240 s is a hang, and
    # a cell whose reply comes long after the kernel finished it is a stall (both fail the test).
    _, result = execute(path, fast=True, timeout=240)
    NOTEBOOK_RESULTS.append(result)
    # torch keeps its compile cache in the temporary folder on purpose (torchinductor_<user>).
    left = sorted(p.name for p in scratch.iterdir() if not p.name.startswith("torchinductor_"))
    assert not left, f"{path.name} left these in the temporary folder: {left}"


@pytest.mark.notebook
@pytest.mark.timeout(300)
def test_papermill_overrides_reach_the_run(tmp_path, monkeypatch):
    """`papermill -p FAST True` (and any other parameter) changes the run: the parameters cell
    holds literals only and everything derived from them is computed after papermill's cell."""
    import json

    import nbformat
    import papermill

    from course_lib import published
    from tools.notebook_runner import NOTEBOOKS, ROOT, KernelManager

    source = NOTEBOOKS / "00_r1_in_numbers.ipynb"
    nb = nbformat.read(source, as_version=4)
    probe = "import json\nprint(json.dumps(dict(FAST=FAST, N_CONTEXT_POINTS=N_CONTEXT_POINTS)))"
    nb.cells.append(nbformat.v4.new_code_cell(probe))
    copy = tmp_path / source.name
    nbformat.write(nb, copy)
    monkeypatch.delenv("COURSE_FAST", raising=False)  # unset: FAST would default to the full run
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    out = papermill.execute_notebook(
        str(copy),
        str(tmp_path / "out.ipynb"),
        parameters={"FAST": True, "PRICE_PER_GPU_HOUR": 3.0},
        kernel_name="python3",
        cwd=str(NOTEBOOKS),
        progress_bar=False,
        execution_timeout=240,
        kernel_manager_class=KernelManager,  # nbclient's stall fix (tools/notebook_runner.py)
    )
    assert json.loads(out.cells[-1].outputs[0]["text"]) == {"FAST": True, "N_CONTEXT_POINTS": 6}
    printed = "".join(
        o.get("text", "") for c in out.cells if c.cell_type == "code" for o in c.get("outputs", [])
    )
    total_cost = sum(published.V3_TRAINING_GPU_HOURS.values()) * 3.0
    assert f"${total_cost:>12,.0f}" in printed, "the overridden price reached the cost cell"
