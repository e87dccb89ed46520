"""Fixtures for the browser layer: one JupyterLab server and one headless Chromium per session,
each notebook visited once (Run All, every control moved, screenshots), a contact sheet at the end.

Without a Chromium the browser tests skip with one line saying how to get one; under ``CI=true``
a missing browser fails them instead.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.browser import contact_sheet, dom_checks
from tests.browser.lab import (
    HOW_TO_ENABLE,
    NO_PLAYWRIGHT,
    ROOT,
    LabServer,
    chromium_args,
    find_chromium,
    in_ci,
    playwright_installed,
)
from tests.browser.notebook_page import ControlResult, NotebookPage

SHOTS = Path(os.environ.get("COURSE_SHOTS") or ROOT / "build" / "shots")
VISITS: dict[str, Visit] = {}
SHOT_LOG: list = []
_CHROMIUM: list = []


@dataclass
class Visit:
    """What one notebook looked like in the browser: the report after Run All, the controls moved,
    the report after moving them, console errors, and timings."""

    name: str
    problems: dict[str, list[str]]
    controls: list[ControlResult] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    run_all_s: float = 0.0
    total_s: float = 0.0
    figures: int = 0
    report: dict = field(default_factory=dict)  # the page as read after the controls moved
    error: str = ""

    def findings(self) -> list[str]:
        lines = [p for kind in dom_checks.KINDS for p in self.problems.get(kind, [])]
        return (
            ([self.error] if self.error else []) + lines + [f"console: {c}" for c in self.console]
        )


def _chromium() -> str | None:
    if not _CHROMIUM:
        _CHROMIUM.append(find_chromium())
    return _CHROMIUM[0]


def pytest_collection_modifyitems(config, items):
    browser_items = [item for item in items if "browser" in item.keywords]
    if not browser_items or in_ci() or _chromium():
        return
    skip = pytest.mark.skip(reason=HOW_TO_ENABLE if playwright_installed() else NO_PLAYWRIGHT)
    for item in browser_items:
        item.add_marker(skip)


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = _chromium()
    if path is None:  # only reached under CI=true: a missing browser is a failure there
        why = HOW_TO_ENABLE if playwright_installed() else NO_PLAYWRIGHT
        pytest.fail(f"CI=true but {why}. `.ci/run` installs Debian's chromium package.")
    return path


@pytest.fixture(scope="package")
def lab(tmp_path_factory):
    server = LabServer(tmp_path_factory.mktemp("lab")).start()
    yield server
    server.stop()


# Package scope: Playwright's sync API runs an asyncio loop in this thread until it stops, so it
# must stop when the browser tests end; left running, every later asyncio.run() in the same
# pytest session fails ("cannot be called from a running event loop").
@pytest.fixture(scope="package")
def browser(chromium_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path, args=chromium_args())
        yield b
        b.close()


def _notebook_hashes() -> dict[Path, str]:
    return {
        p: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted((ROOT / "notebooks").glob("*.ipynb"))
    }


@pytest.fixture(scope="package")
def visit(chromium_path, lab, browser):
    """``visit(name)``: the notebook's :class:`Visit`, made on first use and cached."""
    before = _notebook_hashes()

    def get(name: str) -> Visit:
        if name not in VISITS:
            VISITS[name] = _visit(name, lab, browser)
        return VISITS[name]

    yield get
    changed = [p.name for p, h in _notebook_hashes().items() if before.get(p) != h]
    assert not changed, f"driving JupyterLab changed notebooks on disk: {changed}"


def _visit(name: str, lab: LabServer, browser) -> Visit:
    start = time.monotonic()
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    nb = NotebookPage(page, name, SHOTS / name)
    result = Visit(name, problems={})
    try:
        nb.open(lab)
        try:
            result.run_all_s = nb.run_all()
        finally:  # what the page shows, even when Run All stopped at an error
            result.problems = dom_checks.problems(dom_checks.page_report(page))
        nb.shoot_outputs()
        for cell, area in nb.widget_areas():
            moved, stuck = nb.exercise_controls(cell, area)
            result.controls.extend(moved)
            result.problems["widgets"].extend(stuck)
        # Moving controls draws new figures and may print: the same rules hold afterwards.
        after_report = dom_checks.page_report(page)
        result.figures = len(after_report["figures"])
        result.report = after_report
        for kind, lines in dom_checks.problems(after_report).items():
            result.problems[kind].extend(p for p in lines if p not in result.problems[kind])
    except Exception as err:  # noqa: BLE001 - recorded, and every test of this notebook fails
        result.error = f"the visit stopped: {type(err).__name__}: {err}"
        try:
            page.screenshot(path=str(SHOTS / name / "failure.png"), full_page=False)
        except Exception:  # noqa: BLE001
            pass
    finally:
        result.console = list(nb.console)
        result.total_s = time.monotonic() - start
        SHOT_LOG.extend(nb.shots)
        page.close()
        lab.shutdown_kernels()
    return result


def pytest_sessionfinish(session, exitstatus):
    if not VISITS:
        return
    timings = {
        v.name: f"Run All {v.run_all_s:.0f} s; whole visit {v.total_s:.0f} s; "
        f"{v.figures} figures; {len(v.controls)} controls moved"
        for v in VISITS.values()
    }
    findings = {v.name: v.findings() for v in VISITS.values()}
    page = contact_sheet.write(SHOTS, SHOT_LOG, findings, timings)
    session.config._course_contact_sheet = (page, timings)


def pytest_terminal_summary(terminalreporter, config):
    sheet = getattr(config, "_course_contact_sheet", None)
    if not sheet:
        return
    page, timings = sheet
    terminalreporter.section("browser visits (JupyterLab in headless Chromium, FAST)")
    for name, line in timings.items():
        terminalreporter.write_line(f"{name:<34} {line}")
    total = sum(v.total_s for v in VISITS.values())
    terminalreporter.write_line(f"total {total:.0f} s; contact sheet: {page}")
