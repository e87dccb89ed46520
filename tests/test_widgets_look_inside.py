"""Dashboards of course_lib.widgets.look_inside: sliders redraw, the chat panes fill while streaming."""

from __future__ import annotations

import pytest
import torch

from course_lib import look_inside as li
from course_lib.r1 import chat
from course_lib.widgets import look_inside as w


@pytest.fixture(scope="module")
def ids(lm):
    c = chat.sample(lm, "What is 2+3?", 1, max_new_tokens=24, seed=0)[0][0]
    return torch.cat([c.prompt_ids, c.completion_ids]), len(c.prompt_ids)


def test_chat_view_splits_thinking_and_answer():
    view = w.ChatView("Q?")
    view.update("I think 2+3=5.\n</think>\n\nThe answer is 5.")
    assert "I think 2+3=5." in view.thinking.value and "5." in view.answer.value
    assert "The answer" not in view.thinking.value and "answering" in view.status.value
    view.update("<b>still</b> going")
    assert "&lt;b&gt;still" in view.thinking.value and "thinking" in view.status.value


def test_chat_status_names_an_unclosed_think_tag(lm):
    """The status is HTML: a bare </think> in it vanished in the browser ("never closed .")."""
    completion = chat.sample(lm, "What is 2+3?", 1, max_new_tokens=6, seed=0)[0][0]
    assert not completion.thought.finished  # the random stand-in never closes its thinking
    view = w.ChatView("Q?")
    view.finish(completion)
    assert "never closed &lt;/think&gt;." in view.status.value
    assert "</think>" not in view.status.value


def test_live_chat_streams_into_the_view(lm):
    view, completion = w.live_chat(lm, "Hello", max_new_tokens=10, show=False)
    assert view.text == completion.text
    assert f"{len(completion.completion_ids)} tokens" in view.status.value
    # the random stand-in runs into the limit while thinking: the view says so
    assert completion.truncated and "token limit" in view.status.value
    assert "while still thinking" in view.status.value


def test_chat_panel_button_streams_a_reply(lm):
    panel = w.chat_panel(lm, max_new_tokens=8)
    panel.button.click()
    assert "type a question first" in panel.view.status.value
    panel.children[0].value = "What is 2+3?"
    panel.button.click()
    assert "done" in panel.view.status.value and not panel.button.disabled
    assert "What is 2+3?" in panel.view.question.value


def _shown(ex):
    """The one figure the explorer's output shows (plotly's JSON), as the browser receives it."""
    (out,) = ex.output.outputs
    return out["data"]["application/vnd.plotly.v1+json"]


def test_confidence_explorer_pages(lm, ids):
    seq, p = ids
    conf = li.token_confidence(lm.model, lm.tokenizer, seq, p)
    ex = w.confidence_explorer(conf, count=8, per_row=4)
    assert "tokens 0-7" in _shown(ex)["layout"]["title"]["text"]
    assert ex.controls["start"].step == 8 and ex.controls["start"].max == (len(conf) - 1) // 8 * 8
    ex.controls["start"].value = 8
    assert "tokens 8-15" in _shown(ex)["layout"]["title"]["text"]
    assert "tokens 8-15" in ex.figures[0].layout.title.text
    # one page only: no slider to move, the figure alone
    single = w.confidence_explorer(conf, count=len(conf))
    assert single.controls == {} and "tokens 0-" in _shown(single)["layout"]["title"]["text"]


def test_attention_explorer_sliders(lm, ids):
    maps = li.attention_maps(lm.model, lm.tokenizer, ids[0])
    ex = w.attention_explorer(maps)
    layer, head = ex.controls["layer"], ex.controls["head"]
    assert (layer.max, head.max) == (maps.n_layers - 1, maps.n_heads - 1)
    assert _shown(ex)["layout"]["title"]["text"] == f"Attention, layer {maps.n_layers - 1}, head 0"
    layer.value, head.value = 1, 3
    assert _shown(ex)["layout"]["title"]["text"] == "Attention, layer 1, head 3"
    assert torch.allclose(torch.tensor(ex.figures[0].data[0].z), maps.weights[1, 3])


def test_logit_lens_explorer(lm, ids):
    lens = li.logit_lens(lm.model, lm.tokenizer, ids[0])
    ex = w.logit_lens_explorer(lens, count=6)
    assert len(_shown(ex)["data"][0]["x"]) == 6
    ex.controls["value"].value = "next"
    assert _shown(ex)["data"][0]["colorbar"]["title"]["text"] == "p(actual next)"


def test_explorers_carry_their_figure_for_pages_without_widgets(lm, ids):
    """In a front end without widgets (an HTML export), the explorer's own figure shows."""
    lens = li.logit_lens(lm.model, lm.tokenizer, ids[0])
    ex = w.logit_lens_explorer(lens, count=6)
    bundle = ex._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert "Logit lens: what each layer would predict" in bundle["text/html"]
