"""Layer 4: notebooks are committed clean and follow the course's first-cell conventions."""

from __future__ import annotations

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
        assert "google.colab" in text and "pip install" in text, "cell 2 installs on Colab"
        assert f"github.com/{course_lib.REPO}" in text
        assert "course_lib" in text and "doctor(" in text, "cell 2 imports and checks"

    def test_parameters_cell(self, path):
        cell = _load(path)["cells"][2]
        assert cell["cell_type"] == "code"
        assert "parameters" in cell.get("metadata", {}).get("tags", [])
        assert "fast_mode()" in _src(cell)

    def test_valid_nbformat(self, path):
        import nbformat

        nbformat.validate(nbformat.read(path, as_version=4))
