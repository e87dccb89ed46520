"""Notebook 06's trace browser shows the stage the dropdown picks."""

from __future__ import annotations

import pytest

from course_lib.plots import r1_pipeline as plots
from course_lib.widgets import r1_pipeline as widgets

SAMPLES = {
    "base": [("eh+if=", "<think>h+5=bc</think><answer>bdc</answer>", "letters")],
    "R1": [("47+85=", "<think>7+5=12;4+8+1=13</think><answer>132</answer>", "digits")],
}


def test_stage_browser_redraws_on_the_dropdown():
    view = widgets.stage_browser(SAMPLES)
    pick = view.controls["stage"]
    assert list(pick.options) == ["base", "R1"] and pick.value == "base"
    assert view.figures[0] == plots.traces_table(SAMPLES["base"])
    pick.value = "R1"
    (shown,) = view.output.outputs  # one table, replaced, not appended below the first
    assert (
        shown["data"]["text/html"] == plots.traces_table(SAMPLES["R1"])
        and "47+85=" in view.figures[0]
    )
    assert widgets.stage_browser(SAMPLES, start="R1").figures[0] == view.figures[0]


def test_stage_browser_is_one_output_with_its_static_copy():
    """Exported without a kernel, the page still shows the picked stage's table (and only it)."""
    data = widgets.stage_browser(SAMPLES, start="R1")._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in data
    assert data["text/html"] == plots.traces_table(SAMPLES["R1"])


def test_stage_browser_refuses_what_it_cannot_show():
    with pytest.raises(ValueError, match="at least one stage"):
        widgets.stage_browser({})
    with pytest.raises(ValueError, match="at least one sample"):
        widgets.stage_browser({"base": []})
    with pytest.raises(ValueError, match="not a stage"):
        widgets.stage_browser(SAMPLES, start="R2")
