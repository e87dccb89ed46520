"""What every dashboard shares: one output that is live where widgets render and static where they
cannot, and figures that redraw in place instead of piling up.

The course's rule for interactive views: **a dashboard is one output.** Its display data holds the
widget *and* an HTML copy of the figures it shows when displayed. JupyterLab, Colab and VS Code
render the widget (the learner sees one live chart, never a second static copy); a page without a
widget manager (an HTML export, a viewer with no kernel) falls back to the HTML, so a reader there
still sees the figures.

Figures reach the page as their plotly display data (``figure_bundle``), never through
``Figure._ipython_display_``, which ignores IPython display ids: that is why a figure updated
through a display handle used to be drawn again below itself.

Nothing is displayed on import.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping, Sequence

import ipywidgets as W
import plotly.graph_objects as go
import plotly.io as pio

# A dashboard shows figures and HTML snippets (plain strings are HTML).
Item = go.Figure | str
NO_WIDGETS_NOTE = (
    "<p><i>An interactive panel: open this notebook in JupyterLab, Colab or VS Code and run it "
    "to use the controls.</i></p>"
)


def figure_bundle(item: Item) -> dict:
    """The display data of one figure (what plotly shows for it here) or HTML snippet.

    Built as ``plotly.io.show`` builds it (the default renderers, each set up once), not through
    ``Figure._repr_mimebundle_``, which names the renderers explicitly and so sets them up on
    every call: under the "notebook" renderer (HTML exports) that embedded plotly.js, 4.6 MB,
    once per figure.
    """
    if isinstance(item, str):
        return {"text/html": item}
    build = getattr(pio.renderers, "_build_mime_bundle", None)
    data = build(item.to_dict()) if build else item._repr_mimebundle_()
    if not data:  # no notebook renderer here (a script, a test): plotly's JSON all the same
        data = pio.renderers["plotly_mimetype"].to_mimebundle(item.to_dict())
    return data


def figure_html(item: Item) -> str:
    """HTML for one figure or snippet, for pages without widgets: the renderer's own HTML where
    it makes one (an HTML export, Colab), else a self-contained figure loading plotly.js."""
    if isinstance(item, str):
        return item
    data = figure_bundle(item)
    return data.get("text/html") or item.to_html(full_html=False, include_plotlyjs="cdn")


def replace_output(out: W.Output, items: Sequence[Item]) -> None:
    """Make ``out`` show exactly ``items``: one message, no flicker, nothing appended below."""
    out.outputs = tuple(
        {"output_type": "display_data", "data": figure_bundle(item), "metadata": {}}
        for item in items
    )


def note(text: str, colour: str = "#b25d00") -> str:
    """A short HTML line, escaped: how dashboards report a setting they cannot draw."""
    return f"<p style='color:{colour}'>{html.escape(text)}</p>"


class Dashboard(W.VBox):
    """A box of controls and outputs whose display data also carries a static copy.

    ``static()`` returns the figures/HTML to show where widgets cannot render (called each time
    the dashboard is displayed); with nothing to show, a one-line note says how to use the panel.
    """

    def __init__(self, children=(), static: Callable[[], Sequence[Item]] | None = None, **kwargs):
        super().__init__(children, **kwargs)
        self._static = static or (lambda: ())

    def static_html(self) -> str:
        items = list(self._static())
        return "".join(figure_html(i) for i in items) if items else NO_WIDGETS_NOTE

    def _repr_mimebundle_(self, **kwargs):
        data = super()._repr_mimebundle_(**kwargs)
        data["text/html"] = self.static_html()
        return data


def live_view(
    draw: Callable[..., Sequence[Item] | Mapping[str, Item]],
    controls: Mapping[str, W.Widget],
    columns: Sequence[Sequence[str]] | None = None,
) -> Dashboard:
    """Controls above an output showing ``draw(**values)``, redrawn whenever a control moves.

    ``columns`` lays the controls out: lists of control names, side by side (default: one). A
    ``ValueError`` from ``draw`` (a setting that makes no sense) is shown as a note instead of the
    figures. The dashboard carries ``.controls`` and ``.figures`` (what was drawn last: by name
    when ``draw`` returns a mapping, else by position), and shows those as its static copy.
    """
    out = W.Output()
    latest: dict = {}

    def redraw(_change=None) -> None:
        values = {name: c.value for name, c in controls.items()}
        try:
            items = draw(**values)
        except ValueError as err:
            replace_output(out, [note(str(err))])
            return
        latest.clear()
        latest.update(items if isinstance(items, Mapping) else enumerate(items))
        replace_output(out, list(latest.values()))

    for c in controls.values():
        c.observe(redraw, names="value")
    redraw()
    layout = columns or [list(controls)]
    panel = W.HBox([W.VBox([controls[n] for n in col]) for col in layout])
    box = Dashboard([panel, out], static=lambda: list(latest.values()))
    box.controls = dict(controls)
    box.figures = latest
    box.output = out
    return box
