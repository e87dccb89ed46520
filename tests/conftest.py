"""Shared test setup: the gpu marker skips cleanly without CUDA; the notebook time report."""

from __future__ import annotations

import pytest
import torch
from hypothesis import settings

NOTEBOOK_RESULTS: list = []


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """The tests' models are tiny: one torch thread is as fast on an idle 2-core machine and many
    times faster on a busy one. (Notebook kernels are separate processes and keep their own.)"""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def stand_in_dir(tmp_path_factory):
    """A tiny random Qwen2 with an R1-style tokenizer and chat template, saved to a folder."""
    from course_lib.r1 import stand_in

    return stand_in.build(tmp_path_factory.mktemp("stand_in"), seed=0)


@pytest.fixture(scope="session")
def lm(stand_in_dir):
    """The stand-in loaded through the real loading code (16-bit, on the CPU)."""
    from course_lib.r1 import loader

    return loader.load(path=stand_in_dir, verbose=False)


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (none here)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


def pytest_terminal_summary(terminalreporter):
    if not NOTEBOOK_RESULTS:
        return
    from tools.notebook_runner import format_table

    terminalreporter.section("notebook wall times (2-core CPU budget; not asserted)")
    terminalreporter.write_line(format_table(NOTEBOOK_RESULTS))


# Property tests: reproducible examples on every run (CPU runs are deterministic), and no
# per-example deadline, which a busy 2-core machine would trip for reasons unrelated to the code.
settings.register_profile("course", derandomize=True, deadline=None, print_blob=True)
settings.load_profile("course")
