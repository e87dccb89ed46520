"""Layer 4: notebooks are committed clean and follow the course's first-cell conventions.

The parameters cell follows papermill's: literal defaults only (`FAST = None` follows `COURSE_FAST`),
resolved and derived in the next code cell, each read later and never assigned again, so that an
override (`papermill -p NAME value`, injected right after the parameters cell) reaches the run.
"""

from __future__ import annotations

import ast
import json

import pytest

import course_lib
from tools.notebook_runner import notebook_paths

PATHS = notebook_paths()
MAX_BYTES = 200_000


def _load(path):
    return json.loads(path.read_text(encoding="utf-8"))


def _src(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _code(cell) -> str:
    """A code cell as Python: each IPython magic or shell line becomes ``pass``."""
    lines = _src(cell).splitlines()
    return "\n".join(
        ln[: len(ln) - len(ln.lstrip())] + "pass" if ln.lstrip().startswith(("%", "!")) else ln
        for ln in lines
    )


def _parameters(cell) -> dict:
    """The parameters cell's names and values; fails unless each statement is NAME = literal."""
    params = {}
    for node in ast.parse(_code(cell)).body:
        ok = (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
        )
        assert ok, f"parameters cell: `{ast.unparse(node)}` is not NAME = literal"
        try:
            params[node.targets[0].id] = ast.literal_eval(node.value)
        except ValueError:
            raise AssertionError(
                f"parameters cell: `{ast.unparse(node)}` is not a literal; compute it in the next cell"
            ) from None
    return params


@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
class TestNotebookHygiene:
    def test_no_stored_outputs(self, path):
        nb = _load(path)
        dirty = [
            i
            for i, c in enumerate(nb["cells"])
            if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count"))
        ]
        assert not dirty, f"{path.name}: cells {dirty} hold outputs; clear them before committing"

    def test_size_cap(self, path):
        assert path.stat().st_size <= MAX_BYTES, f"{path.name} is over {MAX_BYTES} bytes"

    def test_first_cell_has_title_and_colab_badge(self, path):
        cell = _load(path)["cells"][0]
        text = _src(cell)
        assert cell["cell_type"] == "markdown"
        assert text.lstrip().startswith("# "), "cell 1 starts with the notebook's title"
        badge = (
            f"https://colab.research.google.com/github/{course_lib.REPO}/blob/"
            f"{course_lib.REF}/notebooks/{path.name}"
        )
        assert badge in text, f"cell 1 needs an Open-in-Colab badge linking {badge}"
        assert "colab-badge.svg" in text

    def test_setup_cell(self, path):
        cell = _load(path)["cells"][1]
        text = _src(cell)
        assert cell["cell_type"] == "code"
        assert "google.colab" in text, "cell 2 installs on Colab only"
        installs = [ln.strip() for ln in text.splitlines() if "pip install" in ln]
        # One install line, built from the one documented constant (course_lib.REPO / REF): the
        # course's runtime packages only, no Jupyter server or kernel (Colab has its own).
        assert installs == [f'%pip install -q "{course_lib.pip_spec()}"'], (
            f"cell 2 installs {installs}; expected exactly "
            f'%pip install -q "{course_lib.pip_spec()}" (course_lib.pip_spec())'
        )
        comment = " ".join(ln for ln in text.splitlines() if ln.lstrip().startswith("#"))
        assert "course_lib.REF" in comment and f'"{course_lib.REF}"' in comment, (
            "cell 2's comment says which ref it installs (course_lib.REF and its value)"
        )
        assert "pinned ref" not in comment or course_lib.REF != "main"
        assert "course_lib" in text and "doctor(" in text, "cell 2 imports and checks"

    def test_parameters_cell_holds_only_literals(self, path):
        # papermill's convention: it injects its values in a cell right after this one, so this
        # cell may hold only literal defaults, one name per line; anything computed from them
        # belongs to the next code cell (or an override would not reach it).
        cell = _load(path)["cells"][2]
        assert cell["cell_type"] == "code"
        assert "parameters" in cell.get("metadata", {}).get("tags", [])
        params = _parameters(cell)
        assert params.get("FAST", "missing") is None, (
            "the parameters cell says FAST = None (the next cell reads COURSE_FAST)"
        )

    def test_papermill_sees_every_parameter(self, path):
        import papermill

        names = set(_parameters(_load(path)["cells"][2]))
        assert set(papermill.inspect_notebook(str(path))) == names

    def test_next_code_cell_resolves_fast(self, path):
        cells = _load(path)["cells"]
        derived = next(c for c in cells[3:] if c["cell_type"] == "code")
        resolve = [
            node
            for node in ast.parse(_code(derived)).body
            if isinstance(node, ast.If) and ast.unparse(node.test) == "FAST is None"
        ]
        assert resolve and "FAST = runtime.fast_mode()" in ast.unparse(resolve[0]), (
            "the cell after the parameters resolves FAST: `if FAST is None: FAST = runtime.fast_mode()`"
        )

    def test_every_parameter_is_used_and_never_reassigned(self, path):
        cells = _load(path)["cells"]
        params = set(_parameters(cells[2]))
        later = [ast.parse(_code(c)) for c in cells[3:] if c["cell_type"] == "code"]
        read = {
            n.id
            for tree in later
            for n in ast.walk(tree)
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)
        }
        assert params <= read, (
            f"parameters nothing reads (an override would change nothing): {params - read}"
        )
        derived, rest = later[0], later[1:]
        fast_resolution = {
            id(n)
            for node in derived.body
            if isinstance(node, ast.If) and ast.unparse(node.test) == "FAST is None"
            for n in ast.walk(node)
        }
        stored = [
            n.id
            for tree in [derived, *rest]
            for n in ast.walk(tree)
            if isinstance(n, ast.Name)
            and isinstance(n.ctx, ast.Store)
            and n.id in params
            and id(n) not in fast_resolution
        ]
        assert not stored, f"parameters assigned again after the parameters cell: {stored}"

    def test_valid_nbformat(self, path):
        import nbformat

        nbformat.validate(nbformat.read(path, as_version=4))
