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
    pick, html = view.children
    assert list(pick.options) == ["base", "R1"] and pick.value == "base"
    assert html.value == plots.traces_table(SAMPLES["base"])
    pick.value = "R1"
    assert html.value == plots.traces_table(SAMPLES["R1"]) and "47+85=" in html.value
    assert widgets.stage_browser(SAMPLES, start="R1").children[1].value == html.value


def test_stage_browser_refuses_what_it_cannot_show():
    with pytest.raises(ValueError, match="at least one stage"):
        widgets.stage_browser({})
    with pytest.raises(ValueError, match="at least one sample"):
        widgets.stage_browser({"base": []})
    with pytest.raises(ValueError, match="not a stage"):
        widgets.stage_browser(SAMPLES, start="R2")
