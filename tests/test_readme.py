"""The README's promises hold: two Quickstart commands, and a file tree that matches the repository."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _tree_paths() -> set[str]:
    block = README.split("## What is in the repository", 1)[1].split("```", 2)[1]
    return {line.split()[0] for line in block.splitlines() if line.strip()}


def _tracked_files() -> set[str]:
    try:
        out = subprocess.run(
            ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return {line for line in out.splitlines() if line}


def test_quickstart_has_exactly_the_two_commands():
    quick = README.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", quick, re.S).group(1)
    assert [line for line in block.splitlines() if line.strip()] == ["make lab", "make test"]


def test_every_file_in_the_tree_exists():
    missing = sorted(p for p in _tree_paths() if not (ROOT / p).exists())
    assert not missing, f"README lists files that do not exist: {missing}"


def test_every_tracked_file_is_in_the_tree():
    tree = _tree_paths()
    skip = ("docs/benchmarks_data/",)
    untold = sorted(f for f in _tracked_files() if f not in tree and not f.startswith(skip))
    assert not untold, f"README's file tree misses: {untold}"
