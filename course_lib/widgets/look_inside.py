"""Dashboards for notebook 05: a live chat with thinking and answer apart, and three explorers.

Composed from ``course_lib.plots.look_inside`` with :mod:`course_lib.widgets.base`: each explorer
is one :class:`~course_lib.widgets.base.Dashboard` that shows its figure and carries it as a static
copy for pages without widgets. Each function returns a widget and displays nothing itself (except
``live_chat``, which shows its view before streaming into it, so the text appears while it is
written).
"""

from __future__ import annotations

import html

import ipywidgets as widgets

from course_lib import formats
from course_lib.look_inside import AttentionMaps, LogitLens, TokenConfidence
from course_lib.plots import look_inside as plots
from course_lib.r1 import chat, loader
from course_lib.widgets.base import Dashboard, live_view

_PANE = {"width": "50%", "height": "320px", "overflow": "auto", "border": "1px solid #ccc"}


def _pre(text: str, style: str) -> str:
    body = html.escape(text) or "<i>(nothing yet)</i>"
    return f"<div style='white-space:pre-wrap;padding:6px;{style}'>{body}</div>"


class ChatView:
    """Two panes, thinking and answer, that follow a growing completion text."""

    def __init__(self, question: str = "") -> None:
        self.question = widgets.HTML(_pre(question, "font-weight:bold") if question else "")
        self.status = widgets.HTML("<i>waiting…</i>")
        self.thinking = widgets.HTML(_pre("", "color:#555;font-style:italic"))
        self.answer = widgets.HTML(_pre("", ""))
        panes = [
            widgets.VBox(
                [widgets.HTML("<b>thinking</b>"), self.thinking], layout=widgets.Layout(**_PANE)
            ),
            widgets.VBox(
                [widgets.HTML("<b>answer</b>"), self.answer], layout=widgets.Layout(**_PANE)
            ),
        ]
        self.widget = Dashboard(
            [self.question, self.status, widgets.HBox(panes)], static=lambda: [self.static_html()]
        )
        self.text = ""

    def static_html(self) -> str:
        """The same panes as plain HTML: what a page without widgets shows."""
        pane = "<div style='flex:1;border:1px solid #ccc;padding:4px'><b>{}</b>{}</div>"
        return (
            f"{self.question.value}{self.status.value}<div style='display:flex;gap:4px'>"
            f"{pane.format('thinking', self.thinking.value)}{pane.format('answer', self.answer.value)}"
            "</div>"
        )

    def update(self, text: str) -> None:
        """Show ``text`` (the completion so far) split into its thinking and its answer."""
        self.text = text
        thought = formats.split_thinking(text)
        self.thinking.value = _pre(thought.thinking, "color:#555;font-style:italic")
        self.answer.value = _pre(thought.answer, "")
        phase = "answering" if thought.finished else "thinking…"
        self.status.value = f"<i>{phase} ({len(text)} characters so far)</i>"

    def finish(self, completion: chat.Completion) -> None:
        """Final counts once generation is over, and whether the token limit cut the reply off."""
        self.update(completion.text)
        n = len(completion.completion_ids)
        closed = "closed its thinking" if completion.thought.finished else "never closed </think>"
        limit = ""
        if completion.truncated:
            limit = (
                " <b>It hit the token limit</b> (max_new_tokens) "
                + ("while answering" if completion.thought.finished else "while still thinking")
                + ": the reply is cut off, not finished."
            )
        self.status.value = (
            f"<i>done: {n} tokens, {completion.thinking_tokens} of them thinking; the model "
            f"{html.escape(closed)}.</i>{limit}"
        )


def live_chat(
    lm: loader.LoadedModel,
    question: str,
    max_new_tokens: int = 1024,
    seed: int = 0,
    show: bool = True,
) -> tuple[ChatView, chat.Completion]:
    """Display a ChatView and stream the reply into it; return the view and the Completion."""
    view = ChatView(question)
    handle = None
    if show:
        from IPython.display import display

        handle = display(view.widget, display_id=True)
    completion = chat.stream_chat(lm, question, view.update, max_new_tokens, seed=seed)
    view.finish(completion)
    if handle is not None:  # the same live view, now with the whole reply as its static copy
        handle.update(view.widget)
    return view, completion


def chat_panel(
    lm: loader.LoadedModel, max_new_tokens: int = 1024, question: str = ""
) -> widgets.VBox:
    """A question box and a button; each click streams a new reply into the panes below."""
    box = widgets.Textarea(
        value=question, placeholder="Ask something…", layout=widgets.Layout(width="100%")
    )
    button = widgets.Button(description="Ask", button_style="primary")
    view = ChatView()
    state = {"seed": 0}

    def ask(_button) -> None:
        if not box.value.strip():
            view.status.value = "<i>type a question first</i>"
            return
        view.question.value = _pre(box.value, "font-weight:bold")
        button.disabled = True
        try:
            completion = chat.stream_chat(
                lm, box.value, view.update, max_new_tokens, seed=state["seed"]
            )
            view.finish(completion)
        finally:
            button.disabled = False
            state["seed"] += 1

    button.on_click(ask)
    panel = Dashboard([box, button, view.widget])
    panel.view = view  # for tests and curious readers
    panel.button = button
    return panel


def confidence_explorer(conf: TokenConfidence, count: int = 160, per_row: int = 16) -> Dashboard:
    """Page through a long reasoning trace, ``count`` tokens a page, coloured by probability.

    With a single page there is nothing to page through, and the slider is left out.
    """
    if count < 1:
        raise ValueError(f"count must be >= 1 (tokens per page), got {count}.")
    last_page = max(0, (len(conf) - 1) // count) * count
    controls = {}
    if last_page:
        controls["start"] = widgets.IntSlider(
            value=0, min=0, max=last_page, step=count, description="from token",
            continuous_update=False,
        )  # fmt: skip

    def draw(start: int = 0) -> list:
        return [plots.token_confidence_figure(conf, start, count, per_row)]

    return live_view(draw, controls)


def attention_explorer(maps: AttentionMaps, layer: int | None = None, head: int = 0) -> Dashboard:
    """Layer and head sliders over one sequence's attention maps (starts at the last layer)."""
    layer = maps.n_layers - 1 if layer is None else layer
    controls = {
        "layer": widgets.IntSlider(value=layer, min=0, max=maps.n_layers - 1, description="layer",
                                   continuous_update=False),
        "head": widgets.IntSlider(value=head, min=0, max=maps.n_heads - 1, description="head",
                                  continuous_update=False),
    }  # fmt: skip
    return live_view(
        lambda layer, head: [plots.attention_figure(maps, layer, head)],
        controls,
        columns=[["layer"], ["head"]],
    )


def logit_lens_explorer(lens: LogitLens, count: int = 24) -> Dashboard:
    """Slide along the sequence; choose whether colour shows the top guess or the true next token.

    Starts with the last ``count`` positions in view.
    """
    n = len(lens.tokens)
    controls = {
        "start": widgets.IntSlider(value=max(0, n - count), min=0, max=max(0, n - 1),
                                   description="from token", continuous_update=False),
        "value": widgets.Dropdown(
            options=[("p(top guess)", "top"), ("p(actual next token)", "next")], value="top",
            description="colour",
        ),
    }  # fmt: skip
    return live_view(
        lambda start, value: [plots.logit_lens_figure(lens, start, count, value)],
        controls,
        columns=[["start"], ["value"]],
    )
