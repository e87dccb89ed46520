"""Execute the course notebooks in a real Jupyter kernel, time every cell, export HTML.

Run from the repository root:

    python -m tools.notebook_runner                       # every notebook, FAST mode, a time table
    python -m tools.notebook_runner --full 01             # notebook 01 at full size
    python -m tools.notebook_runner --full --html site/   # also export executed HTML (static figures)

The tests use it too (``tests/test_notebooks.py``). Nothing runs on import.

Why its times can be trusted
----------------------------
nbclient waits for a cell's ``execute_reply`` by polling the shell channel's ``zmq.asyncio``
socket. When the cell writes into an ``ipywidgets.Output`` (``interactive``, ``interactive_output``,
``with out:``), nbclient, like a browser front end, sends the widget's new outputs back to the
kernel *on that same socket* while it is still waiting for the reply. jupyter_client's
``Session.send`` writes through a plain synchronous shadow of the socket. libzmq signals "a message
is waiting" once, through an edge-triggered file descriptor, and a send on the socket consumes that
signal; done behind zmq.asyncio's back, nobody tells the waiting poll, which sleeps until its
timeout, then finds the reply and reports the cell as a success. The race needs the reply to land
while nbclient is still handling the widget's output, so it bites with big outputs (a few MB, such
as plotly.js inlined by ``--html``: most times) and on busy machines (small outputs: now and then):
cells that take the full per-cell timeout and then pass. ``_ShellChannel`` asks the asyncio socket
for its events after each send, which makes pyzmq look again and wake the poll. (The symptom is
jupyter/nbclient#312, open upstream; ``tests/test_notebook_runner.py`` reproduces the cause.)

And so that no wait like this can hide again, every cell's wall time is compared with the kernel's
own time stamps: a cell that waits more than ``max_wait`` seconds beyond them (for the kernel to
start it, or for its reply after the kernel went idle) is a stall, raised as
:class:`CellStallError`, never counted as a slow success.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import nbformat
import zmq
from jupyter_client import AsyncKernelManager
from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.channels import AsyncZMQSocketChannel
from nbclient import NotebookClient
from traitlets import Float, Type

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
    "06_r1_pipeline": (90, 480),
}

# A cell normally waits a few milliseconds beyond the kernel's own time for it; 10 s is a stall.
MAX_WAIT = 10.0


class CellStallError(RuntimeError):
    """A cell waited far beyond the kernel's own time for it (e.g. a lost wake-up)."""


@dataclass
class CellTime:
    """One code cell: how long the kernel worked on it, and how long the runner waited beyond that."""

    index: int
    kernel_s: float  # kernel busy -> idle, from the kernel's own message time stamps
    start_s: float  # runner sends the request -> kernel starts it (after any earlier messages)
    lag_s: float  # kernel idle (or its reply, if later) -> the runner has the reply

    @property
    def wait_s(self) -> float:
        """Wall time beyond the kernel's own: ``start_s + lag_s``."""
        return self.start_s + self.lag_s


@dataclass
class RunResult:
    name: str
    seconds: float
    fast: bool
    cells: list[CellTime] = field(default_factory=list)

    @property
    def budget(self) -> int | None:
        fast_b, full_b = BUDGETS.get(self.name, (None, None))
        return fast_b if self.fast else full_b

    @property
    def slowest(self) -> CellTime | None:
        """The cell the kernel spent longest on."""
        return max(self.cells, key=lambda c: c.kernel_s, default=None)

    @property
    def max_wait(self) -> float:
        """The longest any cell waited beyond the kernel's own time for it (seconds)."""
        return max((c.wait_s for c in self.cells), default=0.0)


def notebook_paths(selection: list[str] | None = None) -> list[Path]:
    """All notebooks in order, or those whose name starts with one of ``selection``."""
    paths = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    if selection:
        paths = [p for p in paths if any(p.stem.startswith(s) for s in selection)]
    return paths


def _parse_time(stamp: str) -> datetime:
    # nbclient stores the kernel's header dates as ISO strings ending in "Z" (UTC).
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


class _ShellChannel(AsyncZMQSocketChannel):
    """The shell channel, safe to send on while a reply is awaited (see the module docstring)."""

    def send(self, msg) -> None:
        super().send(msg)  # through a synchronous shadow socket, unseen by zmq.asyncio ...
        self.socket.get(zmq.EVENTS)  # ... so make zmq.asyncio look at the socket again


class _KernelClient(AsyncKernelClient):
    shell_channel_class = Type(_ShellChannel)


class KernelManager(AsyncKernelManager):
    """jupyter_client's kernel manager with the re-arming shell channel; pass it to nbclient or
    papermill as ``kernel_manager_class=KernelManager`` to run notebooks without the stall."""

    client_factory = Type(_KernelClient, klass=AsyncKernelClient)


class TimedClient(NotebookClient):
    """nbclient's client that times each cell against the kernel's stamps and refuses stalls."""

    max_wait = Float(MAX_WAIT, help="seconds a cell may wait beyond the kernel's time for it")

    def __init__(self, nb, **kw):
        kw.setdefault("kernel_manager_class", KernelManager)
        super().__init__(nb, record_timing=True, **kw)
        self.cell_times: list[CellTime] = []

    async def async_execute_cell(self, cell, cell_index, execution_count=None, **kw):
        sent = datetime.now(timezone.utc)
        cell = await super().async_execute_cell(cell, cell_index, execution_count, **kw)
        done = datetime.now(timezone.utc)
        stamps = cell.get("metadata", {}).get("execution", {})
        ends = [stamps[k] for k in ("shell.execute_reply", "iopub.status.idle") if k in stamps]
        if cell.cell_type != "code" or not ends or "iopub.status.busy" not in stamps:
            return cell  # skipped (markdown, empty): nothing ran
        busy, idle = _parse_time(stamps["iopub.status.busy"]), max(map(_parse_time, ends))
        t = CellTime(
            cell_index,
            kernel_s=(idle - busy).total_seconds(),
            start_s=max(0.0, (busy - sent).total_seconds()),
            lag_s=max(0.0, (done - idle).total_seconds()),
        )
        self.cell_times.append(t)
        if t.wait_s > self.max_wait:
            raise CellStallError(
                f"cell {cell_index}: the kernel worked on it {t.kernel_s:.1f} s, but the cell took "
                f"{t.wait_s:.1f} s more (limit {self.max_wait:g} s): the kernel started it "
                f"{t.start_s:.1f} s after it was sent, and its reply reached the runner "
                f"{t.lag_s:.1f} s after the kernel went idle. A late reply is a lost wake-up "
                "between nbclient and the kernel, not a slow cell; see the docstring of "
                "tools/notebook_runner.py."
            )
        return cell


def execute(
    path: Path,
    fast: bool = True,
    timeout: int = 900,
    static_html: bool = False,
    max_wait: float = MAX_WAIT,
    kernel_name: str = "python3",
    checkout_first: bool = True,
):
    """Run one notebook top to bottom in a fresh kernel; return ``(notebook, RunResult)``.

    The kernel sees ``COURSE_FAST`` and (``checkout_first``) a ``PYTHONPATH`` that puts this
    checkout's ``course_lib`` first; ``checkout_first=False`` leaves the kernel with whatever
    ``course_lib`` its own environment installed (``kernel_name`` picks that kernel). With
    ``static_html=True`` plotly figures are also stored as self-contained HTML, so an exported page
    shows them without a kernel. ``timeout`` is per cell (nbclient's
    ``CellTimeoutError``). Raises nbclient's ``CellExecutionError`` on the first failing cell and
    :class:`CellStallError` on a cell that waited over ``max_wait`` s beyond the kernel's own time.
    """
    env_before = {k: os.environ.get(k) for k in ("COURSE_FAST", "PYTHONPATH", "PLOTLY_RENDERER")}
    os.environ["COURSE_FAST"] = "1" if fast else "0"
    if static_html:
        # JupyterLab draws the plotly mimetype; nbconvert's HTML needs the figure as HTML too.
        os.environ["PLOTLY_RENDERER"] = "plotly_mimetype+notebook"
    if checkout_first:
        os.environ["PYTHONPATH"] = os.pathsep.join(
            [str(ROOT)] + ([env_before["PYTHONPATH"]] if env_before["PYTHONPATH"] else [])
        )
    else:
        os.environ.pop("PYTHONPATH", None)
    try:
        nb = nbformat.read(path, as_version=4)
        client = TimedClient(
            nb,
            timeout=timeout,
            max_wait=max_wait,
            kernel_name=kernel_name,
            resources={"metadata": {"path": str(path.parent)}},
        )
        start = time.perf_counter()
        client.execute()
        seconds = time.perf_counter() - start
    finally:
        for key, value in env_before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return nb, RunResult(path.stem, seconds, fast, client.cell_times)


def format_table(results: list[RunResult]) -> str:
    """A plain-text table of notebook wall times against the course's budgets, with the slowest
    cell (kernel time) and the longest any cell waited beyond the kernel's own time."""
    lines = [
        f"{'notebook':<34} {'mode':<5} {'wall s':>7} {'budget s':>9}  within  "
        f"{'slowest cell':>14}  {'max wait s':>10}"
    ]
    for r in results:
        budget = "-" if r.budget is None else str(r.budget)
        within = "-" if r.budget is None else ("yes" if r.seconds <= r.budget else "NO")
        mode = "fast" if r.fast else "full"
        slow = "-" if r.slowest is None else f"{r.slowest.index}: {r.slowest.kernel_s:.1f} s"
        lines.append(
            f"{r.name:<34} {mode:<5} {r.seconds:>7.1f} {budget:>9}  {within:<6}  "
            f"{slow:>14}  {r.max_wait:>10.2f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("select", nargs="*", help="notebook name prefixes, e.g. 00 01")
    parser.add_argument("--full", action="store_true", help="full size instead of FAST mode")
    parser.add_argument("--html", type=Path, help="folder for executed HTML exports")
    parser.add_argument(
        "--cells", action="store_true", help="also print every cell's kernel time and waits"
    )
    args = parser.parse_args(argv)
    paths = notebook_paths(args.select)
    if not paths:
        parser.error(f"no notebook matches {args.select}; names look like 00_r1_in_numbers")
    results = []
    for path in paths:
        nb, result = execute(path, fast=not args.full, static_html=args.html is not None)
        results.append(result)
        print(f"{path.stem}: {result.seconds:.1f} s", flush=True)
        if args.cells:
            for c in result.cells:
                print(
                    f"  cell {c.index:>3}: kernel {c.kernel_s:7.2f} s  "
                    f"start {c.start_s:5.2f} s  lag {c.lag_s:5.2f} s"
                )
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
