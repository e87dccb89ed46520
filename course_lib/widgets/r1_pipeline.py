"""Notebook 06's trace browser: pick a stage of the pipeline and read what its model writes, the
thinking's words coloured by language (:func:`course_lib.plots.r1_pipeline.traces_table`).

A :class:`course_lib.widgets.base.Dashboard` (one output): a dropdown over the picked stage's
table, and that table as its static copy, so a notebook exported without a kernel still shows it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import ipywidgets as W

from course_lib.plots import r1_pipeline as plots
from course_lib.widgets.base import Dashboard, live_view


def stage_browser(
    samples: Mapping[str, Sequence[tuple[str, str, str]]], start: str | None = None
) -> Dashboard:
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
    return live_view(lambda stage: [plots.traces_table(samples[stage])], {"stage": pick})
