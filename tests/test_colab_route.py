"""The Colab route: the course's runtime dependencies alone run the notebooks.

On Colab, a notebook's second cell runs ``%pip install "<course_lib.pip_spec()>"`` in a runtime that
already has torch, a Jupyter server and a kernel of its own. This test rebuilds that situation from
nothing: a fresh venv; torch (Colab has it; here the Makefile's pin, as `make` installs it first);
then the course from a copy of this checkout, *without* the ``lab`` extra, exactly as the install
cell asks for it. It checks that this brought no Jupyter server and no kernel package, then adds the
kernel Colab would bring (ipykernel, in the range the ``lab`` extra pins: this course does not
choose Colab's kernel, so this stands in for it) and runs notebooks 05 and 00 in FAST mode in that
kernel, with ``course_lib`` imported from the venv, never from this checkout.

pip reads this machine's configuration (its local wheel store, then PyPI); nothing is downloaded
that ``make install`` would not download too. It takes about two to three minutes.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

import course_lib
from tools.notebook_runner import NOTEBOOKS, execute

ROOT = Path(__file__).resolve().parent.parent
# What a runtime's own Jupyter brings, and what the course must therefore not install on Colab.
JUPYTER_SERVER_DISTS = ("jupyterlab", "jupyter-server", "notebook", "ipykernel")
KERNEL_REQUIREMENT = "ipykernel>=6.29,<7"  # the lab extra's range (pyproject.toml)


def _run(cmd: list[str], **kw) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if proc.returncode != 0:
        pytest.fail(
            f"{' '.join(map(str, cmd))} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    return proc.stdout


def _torch_pin() -> str:
    match = re.search(r"^TORCH \?= (\S+)$", (ROOT / "Makefile").read_text(), re.M)
    assert match, "the Makefile names the torch pin as `TORCH ?= torch==X`"
    return match.group(1)


def _copy_checkout(dest: Path) -> Path:
    """The files a `git+https` install would see: tracked and new (not ignored) files."""
    listing = _run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT
    )
    for name in filter(None, listing.split("\0")):
        src = ROOT / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    return dest


def _installed(python: Path) -> set[str]:
    out = _run([str(python), "-m", "pip", "list", "--format=json"])
    return {d["name"].lower().replace("_", "-") for d in json.loads(out)}


@pytest.mark.notebook
@pytest.mark.timeout(1200)
def test_runtime_dependencies_alone_run_notebooks_05_and_00(tmp_path, monkeypatch):
    timings: dict[str, float] = {}
    start = time.perf_counter()
    venv = tmp_path / "colab-venv"
    base = getattr(sys, "_base_executable", sys.executable)
    _run([base, "-m", "venv", str(venv)])
    python = venv / "bin" / "python"
    _run([str(python), "-m", "pip", "install", "--quiet", _torch_pin()])
    timings["venv + torch"] = time.perf_counter() - start

    # The install cell's requirement, with the GitHub URL replaced by a copy of this checkout.
    spec = course_lib.pip_spec()
    assert spec.startswith(f"{course_lib.DISTRIBUTION} @ git+https://github.com/")
    src = _copy_checkout(tmp_path / "src")
    t = time.perf_counter()
    _run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            f"{course_lib.DISTRIBUTION} @ {src.as_uri()}",
        ]
    )
    timings["the course, runtime dependencies only"] = time.perf_counter() - t
    installed = _installed(python)
    assert course_lib.DISTRIBUTION in installed
    brought = sorted(set(JUPYTER_SERVER_DISTS) & installed)
    assert not brought, f"the Colab install would change the runtime's own Jupyter: {brought}"

    # Colab's own kernel (not ours to choose): a kernelspec for the venv's python.
    t = time.perf_counter()
    _run([str(python), "-m", "pip", "install", "--quiet", KERNEL_REQUIREMENT])
    timings["the runtime's kernel"] = time.perf_counter() - t
    spec_dir = tmp_path / "jupyter" / "kernels" / "colab-route"
    spec_dir.mkdir(parents=True)
    argv = [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec_dir / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "colab route", "language": "python"})
    )
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))

    probe = "import sys, course_lib\nprint(sys.executable)\nprint(course_lib.__file__)"
    for name in ("05_real_r1_distill", "00_r1_in_numbers"):
        nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
        nb.cells.append(nbformat.v4.new_code_cell(probe))
        copy = tmp_path / "notebooks" / f"{name}.ipynb"
        copy.parent.mkdir(exist_ok=True)
        nbformat.write(nb, copy)
        t = time.perf_counter()
        ran, _ = execute(
            copy, fast=True, timeout=300, kernel_name="colab-route", checkout_first=False
        )
        timings[f"notebook {name} (FAST)"] = time.perf_counter() - t
        exe, where = ran.cells[-1].outputs[0]["text"].split()
        assert Path(exe).parent == venv / "bin", f"{name} ran in {exe}, not the venv's kernel"
        assert str(venv) in where and str(ROOT) not in where, f"course_lib came from {where}"
    timings["total"] = time.perf_counter() - start
    print("\nColab route timings (s): " + ", ".join(f"{k} {v:.0f}" for k, v in timings.items()))
