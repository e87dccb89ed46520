"""Notebook 06's trace browser: pick a stage of the pipeline and read what its model writes, the
thinking's words coloured by language (:func:`course_lib.plots.r1_pipeline.traces_table`).

An ``ipywidgets`` dropdown and an ``HTML`` view; the notebook also shows one stage's table as static
HTML, so exported notebooks (no kernel) still have it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import ipywidgets as W

from course_lib.plots import r1_pipeline as plots


def stage_browser(
    samples: Mapping[str, Sequence[tuple[str, str, str]]], start: str | None = None
) -> W.VBox:
    """A dropdown of stages over the table of their samples.

    ``samples`` maps a stage's name to (question, completion, question's language) rows; the
    view opens on ``start`` (default: the first stage).
    """
    if not samples or any(not rows for rows in samples.values()):
        raise ValueError("pass at least one stage, each with at least one sample.")
    names = list(samples)
    if start is not None and start not in samples:
        raise ValueError(f"start={start!r} is not a stage; choose from {names}.")
    pick = W.Dropdown(options=names, value=start or names[0], description="stage")
    view = W.HTML(plots.traces_table(samples[pick.value]))

    def redraw(change) -> None:
        view.value = plots.traces_table(samples[change["new"]])

    pick.observe(redraw, names="value")
    return W.VBox([pick, view])
