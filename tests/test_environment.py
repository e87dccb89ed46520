"""The conda route installs exactly what pip does: environment.yml agrees with pyproject.toml."""

from __future__ import annotations

import re
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent


def _norm(req: str) -> str:
    return re.sub(r"\s+", "", req).lower().replace("_", "-")


def _pyproject_requirements() -> set[str]:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(meta["dependencies"])
    for extra in meta["optional-dependencies"].values():
        reqs += extra
    return {_norm(r) for r in reqs}


def _conda_pip_requirements() -> set[str]:
    lines = (ROOT / "environment.yml").read_text().splitlines()
    start = lines.index("  - pip:")
    reqs = set()
    for line in lines[start + 1 :]:
        m = re.match(r"^\s{6}- (.+)$", line)
        if not m:
            break
        if not m.group(1).startswith("-e"):
            reqs.add(_norm(m.group(1)))
    return reqs


def test_environment_yml_lists_the_same_packages_as_pyproject():
    py, conda = _pyproject_requirements(), _conda_pip_requirements()
    assert py == conda, f"only in pyproject: {py - conda}; only in environment.yml: {conda - py}"


def test_environment_yml_installs_the_course_itself():
    assert "      - -e ." in (ROOT / "environment.yml").read_text().splitlines()


def test_torch_range_admits_2_13():
    from packaging.requirements import Requirement

    reqs = [
        Requirement(r)
        for r in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    ]
    torch_req = next(r for r in reqs if r.name == "torch")
    assert torch_req.specifier.contains("2.13.0")


def test_ci_calls_make_test():
    text = (ROOT / ".ci" / "run").read_text()
    assert "make test" in text


def test_notebook_04_installs_trl_through_the_rl_extra():
    """Colab gets TRL from the course's `rl` extra, so its floor lives in one place (pyproject.toml:
    the first TRL with every GRPOConfig argument notebook 04 passes), not in a second pin."""
    import json

    nb = json.loads((ROOT / "notebooks" / "04_grpo.ipynb").read_text())
    pips = [
        line
        for cell in nb["cells"]
        if cell["cell_type"] == "code"
        for line in "".join(cell["source"]).splitlines()
        if "%pip install" in line
    ]
    trl_lines = [line for line in pips if "[rl]" in line or "trl" in line]
    assert trl_lines and all("inside-deepseek-r1[rl]" in line for line in trl_lines), trl_lines
    floors = [r.split(">=")[1] for r in _pyproject_requirements() if r.startswith("trl>=")]
    text = "".join(
        c for cell in nb["cells"] if cell["cell_type"] == "markdown" for c in cell["source"]
    )
    # 0.26: every GRPOConfig argument the notebook passes; the floor may be higher, never lower
    assert floors and tuple(map(int, floors[0].split(".")[:2])) >= (0, 26), floors
    short = ".".join(floors[0].split(".")[:2])
    assert f"TRL ≥ {short}" in text, f"notebook 04 should state the rl extra's floor, TRL ≥ {short}"
