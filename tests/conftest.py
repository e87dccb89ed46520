"""Shared test setup: the gpu marker skips cleanly without CUDA; the notebook time report."""

from __future__ import annotations

import pytest
import torch
from hypothesis import settings

NOTEBOOK_RESULTS: list = []


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
    from course_lib.notebook_runner import format_table

    terminalreporter.section("notebook wall times (2-core CPU budget; not asserted)")
    terminalreporter.write_line(format_table(NOTEBOOK_RESULTS))


# Property tests: reproducible examples on every run (CPU runs are deterministic), and no
# per-example deadline, which a busy 2-core machine would trip for reasons unrelated to the code.
settings.register_profile("course", derandomize=True, deadline=None, print_blob=True)
settings.load_profile("course")
