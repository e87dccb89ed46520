"""Dashboards for notebook 05: a live chat with thinking and answer apart, and three explorers.

Composed from ``course_lib.plots.look_inside`` with ``ipywidgets.interactive``; each function returns
a widget and displays nothing itself (except ``live_chat``, which shows its view before streaming
into it, so the text appears while it is written).
"""

from __future__ import annotations

import html

import ipywidgets as widgets

from course_lib import formats
from course_lib.look_inside import AttentionMaps, LogitLens, TokenConfidence
from course_lib.plots import look_inside as plots
from course_lib.r1 import chat, loader

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
        self.widget = widgets.VBox([self.question, self.status, widgets.HBox(panes)])
        self.text = ""

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
            f"{closed}.</i>{limit}"
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
    if show:
        from IPython.display import display

        display(view.widget)
    completion = chat.stream_chat(lm, question, view.update, max_new_tokens, seed=seed)
    view.finish(completion)
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
    panel = widgets.VBox([box, button, view.widget])
    panel.view = view  # for tests and curious readers
    panel.button = button
    return panel


def confidence_explorer(conf: TokenConfidence, count: int = 160, per_row: int = 16):
    """Page through a long reasoning trace, coloured by token probability."""
    step = max(1, count)
    return widgets.interactive(
        lambda start: plots.token_confidence_figure(conf, start, count, per_row),
        start=widgets.IntSlider(
            value=0, min=0, max=max(0, len(conf) - 1), step=step, description="from token"
        ),
    )


def attention_explorer(maps: AttentionMaps):
    """Layer and head sliders over one sequence's attention maps."""
    return widgets.interactive(
        lambda layer, head: plots.attention_figure(maps, layer, head),
        layer=widgets.IntSlider(value=0, min=0, max=maps.n_layers - 1, description="layer"),
        head=widgets.IntSlider(value=0, min=0, max=maps.n_heads - 1, description="head"),
    )


def logit_lens_explorer(lens: LogitLens, count: int = 24):
    """Slide along the sequence; choose whether colour shows the top guess or the true next token."""
    return widgets.interactive(
        lambda start, value: plots.logit_lens_figure(lens, start, count, value),
        start=widgets.IntSlider(
            value=max(0, len(lens.tokens) - count),
            min=0,
            max=max(0, len(lens.tokens) - 1),
            description="from token",
        ),
        value=widgets.Dropdown(
            options=[("p(top guess)", "top"), ("p(actual next token)", "next")],
            value="top",
            description="colour",
        ),
    )
