"""Execute the course notebooks in a real Jupyter kernel and time them.

Used by the test suite (``tests/test_notebooks.py``, FAST mode) and by instructors:

    python -m course_lib.notebook_runner            # every notebook, FAST mode, a time table
    python -m course_lib.notebook_runner --full 01  # notebook 01 at full size
    python -m course_lib.notebook_runner --html out # also export executed HTML (static figures)

Nothing runs on import.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"

# Wall-time targets on a 2-core CPU (seconds), from the course's promises: (FAST, full).
# Reported next to each measured time; never asserted in tests.
BUDGETS = {
    "00_r1_in_numbers": (60, 60),
    "01_mixture_of_experts": (60, 300),
    "02_multi_head_latent_attention": (60, 300),
    "03_distillation": (60, 300),
    "04_grpo": (90, 360),
    "05_real_r1_distill": (90, None),
}


@dataclass
class RunResult:
    name: str
    seconds: float
    fast: bool
    attempts: int = 1

    @property
    def budget(self) -> int | None:
        fast_b, full_b = BUDGETS.get(self.name, (None, None))
        return fast_b if self.fast else full_b


def notebook_paths(selection: list[str] | None = None) -> list[Path]:
    """All notebooks in order, or those whose name starts with one of ``selection``."""
    paths = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    if selection:
        paths = [p for p in paths if any(p.stem.startswith(s) for s in selection)]
    return paths


def execute(
    path: Path, fast: bool = True, timeout: int = 900, static_html: bool = False, retries: int = 1
):
    """Run one notebook top to bottom in a fresh kernel; return (notebook, seconds, attempts).

    The kernel sees ``COURSE_FAST`` and a ``PYTHONPATH`` that puts this checkout's ``course_lib``
    first. With ``static_html=True`` plotly figures are also stored as self-contained HTML, so an
    exported page shows them without a kernel. Raises ``nbclient.exceptions.CellExecutionError``
    on the first failing cell.

    ``timeout`` is per cell. A cell that times out starts the notebook over in a fresh kernel, up
    to ``retries`` times: on a busy machine nbclient and the kernel have been seen, rarely, to wait
    on each other with both idle (a lost message, not a slow cell). An error in a cell is never
    retried, and a cell that is really too slow times out again and fails.
    """
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError

    env_before = {k: os.environ.get(k) for k in ("COURSE_FAST", "PYTHONPATH", "PLOTLY_RENDERER")}
    os.environ["COURSE_FAST"] = "1" if fast else "0"
    if static_html:
        # JupyterLab draws the plotly mimetype; nbconvert's HTML needs the figure as HTML too.
        os.environ["PLOTLY_RENDERER"] = "plotly_mimetype+notebook"
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT)] + ([env_before["PYTHONPATH"]] if env_before["PYTHONPATH"] else [])
    )
    try:
        for attempt in range(1, retries + 2):
            nb = nbformat.read(path, as_version=4)
            client = NotebookClient(
                nb,
                timeout=timeout,
                kernel_name="python3",
                resources={"metadata": {"path": str(path.parent)}},
            )
            start = time.perf_counter()
            try:
                client.execute()
                return nb, time.perf_counter() - start, attempt
            except CellTimeoutError:
                if attempt > retries:
                    raise
                print(f"{path.stem}: a cell timed out after {timeout} s; starting over", flush=True)
    finally:
        for key, value in env_before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    raise AssertionError("unreachable")


def format_table(results: list[RunResult]) -> str:
    """A plain-text table of notebook wall times against the course's budgets."""
    lines = [f"{'notebook':<34} {'mode':<5} {'wall s':>7} {'budget s':>9}  within  attempts"]
    for r in results:
        budget = "-" if r.budget is None else str(r.budget)
        within = "-" if r.budget is None else ("yes" if r.seconds <= r.budget else "NO")
        mode = "fast" if r.fast else "full"
        lines.append(
            f"{r.name:<34} {mode:<5} {r.seconds:>7.1f} {budget:>9}  {within:<6}  {r.attempts}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("select", nargs="*", help="notebook name prefixes, e.g. 00 01")
    parser.add_argument("--full", action="store_true", help="full size instead of FAST mode")
    parser.add_argument("--html", type=Path, help="folder for executed HTML exports")
    args = parser.parse_args(argv)
    paths = notebook_paths(args.select)
    if not paths:
        parser.error(f"no notebook matches {args.select}; names look like 00_r1_in_numbers")
    results = []
    for path in paths:
        nb, seconds, attempts = execute(path, fast=not args.full, static_html=args.html is not None)
        results.append(RunResult(path.stem, seconds, fast=not args.full, attempts=attempts))
        print(f"{path.stem}: {seconds:.1f} s", flush=True)
        if args.html:
            from nbconvert import HTMLExporter

            args.html.mkdir(parents=True, exist_ok=True)
            # Without saved widget state nbconvert shows each dashboard's own static copy.
            nb.metadata.pop("widgets", None)
            body, _ = HTMLExporter().from_notebook_node(nb)
            (args.html / f"{path.stem}.html").write_text(body, encoding="utf-8")
    print(format_table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
