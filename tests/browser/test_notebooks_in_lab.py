"""Layer 6: every notebook as a learner sees it, in JupyterLab in headless Chromium (FAST mode).

Each notebook is opened and run (Run All) once; every control in every widget output is then
moved, and the page is read from the DOM before and after. Each test below asserts one rule on
that visit; the screenshots and a contact sheet go to ``COURSE_SHOTS`` (default ``build/shots``).
"""

from __future__ import annotations

import re

import pytest

from tests.browser.dom_checks import _overlap
from tests.browser.lab import ROOT

NAMES = [p.stem for p in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))]
pytestmark = [pytest.mark.browser, pytest.mark.timeout(1500)]


@pytest.fixture(params=NAMES)
def name(request) -> str:
    return request.param


def _check(visit, kind: str):
    v = visit
    assert not v.error, v.error
    found = v.problems.get(kind, [])
    assert not found, f"{v.name}: " + "\n".join(found)


def test_no_stderr_and_no_leftover_progress_bars(visit, name):
    """No stderr or error output anywhere: warnings we cause are fixed at the source, foreign
    libraries' noise is silenced where we call them. No progress bar stays on screen either."""
    _check(visit(name), "noise")


def test_every_control_changes_a_figure_or_output(visit, name):
    """Every widget output renders as widgets, and each slider, dropdown, checkbox and button in
    it changes something below it when moved (directly, or through its dashboard's button)."""
    v = visit(name)
    _check(v, "widgets")
    unchanged = [c for c in v.controls if not c.changed]
    assert not unchanged, unchanged


def test_figures_have_sane_axes_and_visible_titles(visit, name):
    _check(visit(name), "axes")


def test_no_dollar_amount_typeset_as_tex(visit, name):
    """A $ meant as currency, in Markdown, HTML or a plotly string, is not read as TeX math."""
    _check(visit(name), "tex")


def test_each_figure_is_drawn_once(visit, name):
    """Live curves redraw in place; a dashboard's static copy is not shown next to it."""
    _check(visit(name), "repeats")


def test_text_is_readable(visit, name):
    """No 'null' in figures, no float32 noise in printouts, no cut-off labels, no legend over
    tick labels, no overlapping text labels."""
    _check(visit(name), "text")


def test_no_console_errors(visit, name):
    """Zero console errors other than images that need the internet (badges)."""
    v = visit(name)
    assert not v.error, v.error
    assert not v.console, v.console


def test_live_grpo_curves_end_at_the_last_step(visit):
    """Notebook 04's live curves redraw in place up to the finished run. (A figure updated
    through a display handle stayed at its first draw: JupyterLab's plotly renderer ignores
    updates, so the page kept "step 10" while training went on to the end.)"""
    v = visit("04_grpo")
    assert not v.error, v.error
    live = [
        int(m.group(1))
        for f in v.report["figures"]
        for m in [re.fullmatch(r"GRPO, live \(step (\d+)\)", f["title"])]
        if m
    ]
    trained = [
        int(m.group(1))
        for o in v.report["outputs"]
        for m in [re.search(r"after (\d+) GRPO steps", o["text"])]
        if m
    ]
    assert len(live) == 1 and trained, (live, trained)
    assert live == trained[:1], f"the live figure shows step {live[0]}, training ran {trained[0]}"


def test_06_r1_pipeline_printouts_fit_and_figure_text_stays_apart(visit):
    """Notebook 06 prints a line of numbers per stage and draws three-panel comparisons: each
    printed line fits the page without wrapping (100 characters; the shots wrap at about 105),
    and no two texts of a figure (panel titles, bar labels) touch. (The generic rule allows a
    30% overlap; the stage comparison's panel titles overlapped by less and were unreadable.)"""
    v = visit("06_r1_pipeline")
    assert not v.error, v.error
    long = [
        (o["cell"], line)
        for o in v.report["outputs"]
        if o["mime"] == "application/vnd.jupyter.stdout"
        for line in o["text"].splitlines()
        if len(line) > 100
    ]
    assert not long, long
    touching = [
        (f["title"], ta, tb)
        for f in v.report["figures"]
        for i, (ta, a) in enumerate(f["labels"])
        for tb, b in f["labels"][i + 1 :]
        if _overlap(a, b) > 0
    ]
    assert not touching, touching
