"""Runtime helpers: FAST mode, seeding, Colab detection and an environment doctor.

Every notebook starts with ``runtime.doctor(brief=True)``; its ``parameters`` cell says
``FAST = None`` and the next cell resolves it with :func:`fast_mode` (``COURSE_FAST``); every size
and step count in a notebook derives from ``FAST``.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import os
import platform
import random
import sys
from dataclasses import dataclass, field

import numpy as np
import torch

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


def fast_mode(default: bool = False) -> bool:
    """Read ``COURSE_FAST`` from the environment: ``1``/``true`` makes every notebook small and quick.

    The test suite sets ``COURSE_FAST=1`` so each notebook runs in about a minute on a 2-core CPU.
    """
    raw = os.environ.get("COURSE_FAST")
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(
        f"COURSE_FAST={raw!r} is not understood; set it to 1 (fast, small runs) or 0 (full runs)."
    )


def seed_everything(seed: int = 0, threads: int | None = None) -> torch.Generator:
    """Seed Python, NumPy and torch (CPU and CUDA) so that a CPU run repeats bit for bit.

    The promise has a condition: **the same number of torch threads** (and the same torch build and
    CPU). torch splits a large reduction (a sum over a million numbers, say) between its threads,
    and floating-point addition in another order changes the last bits; in training those bits
    grow. ``threads=n`` sets the count here (``torch.set_num_threads``), so a seeded run carries its
    condition with it; the toy notebooks pass ``threads=1``. With ``threads=None`` the current count
    (``torch.get_num_threads()``) is kept, and a run repeats only at that same count.

    Returns a fresh ``torch.Generator`` seeded with ``seed`` for code that wants its own stream.
    """
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}; pass e.g. seed=0.")
    if threads is not None:
        if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
            raise ValueError(
                f"threads must be a positive int or None, got {threads!r}; pass e.g. threads=1 "
                "(None keeps torch's current thread count)."
            )
        torch.set_num_threads(threads)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    return torch.Generator().manual_seed(seed)


def is_colab() -> bool:
    """True inside Google Colab."""
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ


def in_notebook_kernel() -> bool:
    """True when running inside a Jupyter kernel (where widgets can render)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


@dataclass
class Check:
    """One line of the doctor's report."""

    name: str
    ok: bool
    detail: str
    advice: str = ""


@dataclass
class DoctorReport:
    """What :func:`doctor` found; prints as text and renders as a table in notebooks."""

    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def get(self, name: str) -> Check:
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(name)

    def summary(self) -> str:
        parts = [f"{c.name} {c.detail}" for c in self.checks if c.name in _BRIEF]
        todo = [c.name for c in self.checks if not c.ok]
        line = "environment: " + " | ".join(parts)
        return line + (f" | needs attention: {', '.join(todo)}" if todo else " | all good")

    def __str__(self) -> str:
        width = max(len(c.name) for c in self.checks)
        rows = []
        for c in self.checks:
            mark = "ok " if c.ok else "!! "
            rows.append(f"{mark}{c.name:<{width}}  {c.detail}")
            if c.advice:
                rows.append(f"   {'':<{width}}  -> {c.advice}")
        return "\n".join(rows)

    def _repr_html_(self) -> str:
        import html

        cells = "".join(
            "<tr><td>{}</td><td><b>{}</b></td><td>{}</td><td>{}</td></tr>".format(
                "&#9989;" if c.ok else "&#9888;&#65039;",
                html.escape(c.name),
                html.escape(c.detail),
                html.escape(c.advice),
            )
            for c in self.checks
        )
        return (
            "<table><thead><tr><th></th><th>check</th><th>found</th><th>what to do</th></tr>"
            f"</thead><tbody>{cells}</tbody></table>"
        )


_BRIEF = ("python", "torch", "device")


def doctor(brief: bool = False, verbose: bool = True) -> DoctorReport:
    """Check the environment the course needs and say what to do about anything missing.

    Reports Python, torch, transformers and bitsandbytes versions, the CUDA device and its free
    memory, and whether widgets can render here. ``brief=True`` prints one line; the full report
    prints as a table. Returns the :class:`DoctorReport` either way.
    """
    checks: list[Check] = []
    py = sys.version_info
    checks.append(
        Check(
            "python",
            py >= (3, 10),
            platform.python_version(),
            "" if py >= (3, 10) else "The course needs Python 3.10 or newer.",
        )
    )
    checks.append(Check("torch", True, torch.__version__))
    for dist, why in (
        ("transformers", "notebook 05 (the real distill) and the reference tests"),
        ("plotly", "every figure"),
        ("ipywidgets", "the interactive controls"),
    ):
        v = _version(dist)
        checks.append(
            Check(
                dist,
                v is not None,
                v or "missing",
                "" if v else f"Needed for {why}: run `make lab` again or `pip install {dist}`.",
            )
        )

    if torch.cuda.is_available():
        idx = torch.cuda.current_device()
        free, total = torch.cuda.mem_get_info(idx)
        name = torch.cuda.get_device_name(idx)
        checks.append(
            Check(
                "device", True, f"cuda: {name}, {free / 2**30:.1f} of {total / 2**30:.1f} GiB free"
            )
        )
    else:
        advice = "Toy notebooks 00-04 run fine on the CPU. For notebook 05 pick " + (
            "Runtime > Change runtime type > T4 GPU."
            if is_colab()
            else "a machine with an NVIDIA GPU (a free Colab T4 is enough)."
        )
        checks.append(Check("device", True, "cpu (no CUDA GPU)", advice))

    bnb = _version("bitsandbytes")
    if bnb is None:
        checks.append(
            Check(
                "bitsandbytes",
                False,
                "missing",
                "Needed for 4-bit loading in notebook 05: `pip install bitsandbytes`.",
            )
        )
    else:
        note = (
            ""
            if torch.cuda.is_available()
            else "No GPU: notebook 05 runs its model in float32 (the small stand-in, or the real "
            "distill with REAL_MODEL_ON_CPU). 4-bit NF4 is for CUDA GPUs; section 3 also loads "
            "an NF4 copy of the stand-in on the CPU, only to measure its memory."
        )
        checks.append(Check("bitsandbytes", True, bnb, note))

    in_kernel = in_notebook_kernel()
    widgets_ok = _version("ipywidgets") is not None
    if in_kernel and widgets_ok:
        detail = "live kernel: sliders and dashboards render"
        if is_colab():
            detail += " (Colab)"
        checks.append(Check("widgets", True, detail))
    else:
        checks.append(
            Check(
                "widgets",
                True,
                "no live kernel: static figures are shown instead",
                "Open the notebook in JupyterLab, Colab or VS Code to use the controls.",
            )
        )

    report = DoctorReport(checks)
    if verbose:
        if brief:
            print(report.summary())
        elif in_kernel:
            from IPython.display import display

            display(report)
        else:
            print(report)
    return report


def import_optional(module: str, purpose: str, install: str | None = None):
    """Import ``module`` or raise an ImportError that says which command installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        pkg = install or module
        raise ImportError(
            f"{module} is needed for {purpose}. Install it with `pip install {pkg}` "
            "(or run `make lab`, which installs everything the course uses)."
        ) from err


# bitsandbytes (>= 0.49) on a CPU with AVX512-BF16 looks, as it is imported, for an optional fused
# NF4 kernel from the Hugging Face hub (the `kernels` package), and without that package logs a
# warning asking you to install it. Its own CPU kernels work without it; the course never needs it.
BNB_CPU_KERNEL_LOGGER = "bitsandbytes.backends.cpu.ops"


def import_bitsandbytes():
    """Import bitsandbytes (ImportError if missing) without its optional-CPU-kernel warning.

    Only that one logger is quieted, only during the import. ``r1.loader.load`` imports it this way;
    notebook 04 calls it before TRL, whose trainer imports bitsandbytes.
    """
    import logging

    logger = logging.getLogger(BNB_CPU_KERNEL_LOGGER)
    before = logger.level
    logger.setLevel(logging.ERROR)
    try:
        return importlib.import_module("bitsandbytes")
    finally:
        logger.setLevel(before)


@contextlib.contextmanager
def quiet_progress_bars():
    """Turn transformers' own progress bars off for a block, e.g. saving or loading a model of a
    few kilobytes, whose "Writing model shards" / "Loading weights" bars would stay on screen."""
    from transformers.utils import logging as hf_logging

    was_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_on:
            hf_logging.enable_progress_bar()


def hub_telemetry_off() -> None:
    """Turn Hugging Face telemetry off for this process (``HF_HUB_DISABLE_TELEMETRY=1``).

    TRL's trainers and huggingface_hub send usage pings from a background thread unless told not
    to; the course calls this wherever it uses the hub libraries (:mod:`course_lib.hf_bridge`,
    :func:`course_lib.r1.loader.load`), so a learner's runs report nothing. huggingface_hub reads
    the variable once, on import, so an already imported copy is switched off as well.
    """
    os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None:
        constants.HF_HUB_DISABLE_TELEMETRY = True
