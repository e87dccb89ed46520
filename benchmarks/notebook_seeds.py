"""Run a notebook at full size for several seeds and read its results out of the kernel.

The multi-seed benchmarks of notebooks 03 and 04 (``distill_seeds.py``, ``grpo_seeds.py``) use this:
each seed is papermill's ``-p SEED s`` on the notebook itself, so the numbers come from the very code a
learner runs, and one extra cell, the *probe*, prints a JSON summary of the notebook's variables. Also
what every multi-seed benchmark shares (01's ``moe_balance.py`` and 02's ``mla_quality.py`` too): the
few statistics their tables show (mean, sample standard deviation, range) and ``merge``, which adds
new seeds to a recorded result. Running a notebook needs the test extras (papermill); nothing runs on
import.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_seed(notebook: Path, seed: int, probe: str, timeout: int = 1800) -> dict:
    """Execute ``notebook`` at full size with ``SEED = seed``, then ``probe``; return what the
    probe printed on its last line, parsed as JSON."""
    import nbformat
    import papermill

    from tools.notebook_runner import KernelManager

    nb = nbformat.read(notebook, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(probe))
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT)] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])
    )
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "in.ipynb", Path(tmp) / "out.ipynb"
        nbformat.write(nb, src)
        done = papermill.execute_notebook(
            str(src), str(out), parameters={"FAST": False, "SEED": seed}, kernel_name="python3",
            cwd=str(notebook.parent), progress_bar=False, execution_timeout=timeout,
            kernel_manager_class=KernelManager,  # the runner's fix for stalls behind widgets
        )  # fmt: skip
    text = "".join(o.get("text", "") for o in done.cells[-1].outputs)
    return json.loads(text.strip().splitlines()[-1])


def code_sha256(notebook: Path) -> str:
    """A hash of the notebook's code cells: which version of the code the recorded seeds ran."""
    import hashlib

    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    code = "\n# cell\n".join(c.source for c in nb.cells if c.cell_type == "code")
    return hashlib.sha256(code.encode()).hexdigest()


def run_seeds(notebook: Path, seeds: Sequence[int], probe: str, out: Path) -> dict:
    """Run every seed in turn (one at a time: each notebook uses one CPU thread) and write ``out``."""
    sha = code_sha256(notebook)
    runs = []
    for seed in seeds:
        start = time.perf_counter()
        runs.append(run_seed(notebook, seed, probe) | {"seconds": time.perf_counter() - start})
        print(f"{notebook.stem}, seed {seed}: {runs[-1]['seconds']:.0f} s", flush=True)
    machine = f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} when the last seed ended"
    result = {"notebook": notebook.name, "code_sha256": sha, "machine": machine, "seeds": runs}
    out.write_text(json.dumps(result, indent=1) + "\n")
    return result


def stats(values: Sequence[float]) -> tuple[float, float, float, float]:
    """(mean, sample standard deviation, min, max) of ``values``."""
    n = len(values)
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return mean, sd, min(values), max(values)


def spread(values: Sequence[float], scale: float = 1.0, digits: int = 1) -> str:
    """``mean ± sd (min … max)``, each value times ``scale`` (100 for percentages)."""
    mean, sd, lo, hi = (scale * v for v in stats(values))
    return f"{mean:.{digits}f} ± {sd:.{digits}f} ({lo:.{digits}f} … {hi:.{digits}f})"


def timing(result: dict) -> str:
    """One sentence on how long the seeds took, and on what machine."""
    secs = [s["seconds"] for s in result["seeds"]]
    return (
        f"Each seed took {min(secs):.0f}-{max(secs):.0f} s ({result['machine']}; a shared machine, "
        "so these times say little about the notebook's own speed)."
    )


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def mean_sd(values: Sequence[float], fmt: str = ".3f") -> str:
    """'mean ± sd' (sample sd over seeds), e.g. mean_sd([1, 2, 3], ".1f") == '2.0 ± 1.0'."""
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):{fmt}} ± {sd:{fmt.lstrip('+')}}"


def merge(old: dict, new: dict) -> dict:
    """``old`` extended by the runs of ``new``'s seeds (same settings; the seeds must be new)."""
    same = ("steps", "lr") + (("variants",) if "variants" in old else ("batch", "n_train"))
    if any(old[k] != new[k] for k in same) or set(old["seeds"]) & set(new["seeds"]):
        raise ValueError("merge needs the same settings and only new seeds.")
    return old | dict(seeds=old["seeds"] + new["seeds"], runs=old["runs"] + new["runs"],
                      total_seconds=old["total_seconds"] + new["total_seconds"])  # fmt: skip


def claims_footer(result: dict, claims: Mapping[str, bool]) -> list[str]:
    """The lines each notebook's seed tables end with: the run's timing, then every claim of the
    notebook's text and whether it held on the recorded seeds."""
    return [
        "",
        timing(result),
        "",
        "What the notebook's text says, checked on these seeds (`claims()`; tests/test_benchmarks.py):",
        "",
    ] + [f"- {text}: {'yes' if ok else 'NO'}" for text, ok in claims.items()]


def main(notebook: Path, probe: str, data: Path, render: Callable[[dict], str]) -> None:
    """The scripts' command line: ``--render`` prints the tables of the recorded JSON; otherwise
    the seeds given (default 0-4) are run and recorded."""
    if sys.argv[1:] == ["--render"]:
        print(render(json.loads(data.read_text())), end="")
    else:
        run_seeds(notebook, [int(a) for a in sys.argv[1:]] or [0, 1, 2, 3, 4], probe, data)
