"""The dashboard rule: one output, live where widgets render, its static copy everywhere else."""

from __future__ import annotations

import ipywidgets as W
import nbformat
import plotly.graph_objects as go
import pytest

from course_lib.widgets import base

WIDGET = "application/vnd.jupyter.widget-view+json"
PLOTLY = "application/vnd.plotly.v1+json"


def _bar(title: str) -> go.Figure:
    return go.Figure(go.Bar(x=["a", "b"], y=[1, 2]), layout={"title": title})


def _dashboard():
    n = W.IntSlider(value=2, min=1, max=5, description="n")

    def draw(n: int) -> dict:
        if n == 5:
            raise ValueError("five is too many; pick fewer")
        return {"summary": f"<p>n = {n}</p>", "bars": _bar(f"bars for n={n}")}

    return base.live_view(draw, {"n": n})


def test_live_view_shows_the_latest_drawing_once():
    box = _dashboard()
    assert [list(o["data"]) for o in box.output.outputs] == [["text/html"], [PLOTLY]]
    box.controls["n"].value = 3
    html, fig = box.output.outputs
    assert html["data"]["text/html"] == "<p>n = 3</p>"
    assert fig["data"][PLOTLY]["layout"]["title"]["text"] == "bars for n=3"
    assert box.figures["bars"].layout.title.text == "bars for n=3"


def test_a_setting_that_makes_no_sense_shows_a_note():
    box = _dashboard()
    box.controls["n"].value = 5
    (shown,) = box.output.outputs
    assert "five is too many" in shown["data"]["text/html"]
    assert box.figures["bars"].layout.title.text == "bars for n=2"  # the last good drawing


def test_the_display_data_holds_the_widget_and_a_static_copy():
    box = _dashboard()
    box.controls["n"].value = 4
    data = box._repr_mimebundle_()
    assert data[WIDGET]["model_id"] == box.model_id
    assert "<p>n = 4</p>" in data["text/html"] and "bars for n=4" in data["text/html"]
    empty = base.Dashboard([W.Button(description="go")])
    assert empty._repr_mimebundle_()["text/html"] == base.NO_WIDGETS_NOTE


@pytest.mark.parametrize("widget_state", [False, True])
def test_an_html_export_shows_the_copy_only_without_widget_state(widget_state):
    """nbconvert draws the widget when the notebook saved its state, else the static copy."""
    from nbconvert import HTMLExporter

    box = _dashboard()
    data = box._repr_mimebundle_()
    cell = nbformat.v4.new_code_cell("dashboard()", execution_count=1)
    cell.outputs = [nbformat.v4.new_output("execute_result", data=data, execution_count=1)]
    nb = nbformat.v4.new_notebook(cells=[cell])
    if widget_state:
        state = {box.model_id: {"model_name": "VBoxModel", "state": {}}}
        nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": state}}
    page, _ = HTMLExporter().from_notebook_node(nb)
    assert ("bars for n=2" in page) != widget_state
    assert (box.model_id in page) == widget_state


def test_figures_set_up_plotlys_renderer_once(monkeypatch):
    """Under plotly's "notebook" renderer (HTML exports) each set-up embeds plotly.js (4.6 MB):
    building display data for many figures must embed it once, not once per figure."""
    import plotly.io as pio
    from IPython.core.displaypub import CapturingDisplayPublisher
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    monkeypatch.setattr(shell, "display_pub", CapturingDisplayPublisher())
    before = pio.renderers.default
    pio.renderers.default = "plotly_mimetype+notebook"
    try:
        bundles = [base.figure_bundle(_bar(f"figure {i}")) for i in range(3)]
        html = base.figure_html(_bar("one more"))
    finally:
        pio.renderers.default = before
        InteractiveShell.clear_instance()
    assert all(PLOTLY in b and "text/html" in b for b in bundles) and "one more" in html
    embedded = [o for o in shell.display_pub.outputs if "plotly.js v" in str(o["data"])]
    assert len(embedded) <= 1
