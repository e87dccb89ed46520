"""Figure builders of course_lib.plots.look_inside on data from the stand-in model."""

from __future__ import annotations

import plotly.graph_objects as go
import pytest
import torch

from course_lib import look_inside as li
from course_lib.plots import look_inside as plots
from course_lib.r1 import chat


@pytest.fixture(scope="module")
def data(lm):
    c = chat.sample(lm, "What is 2+3?", 1, max_new_tokens=20, seed=0)[0][0]
    ids = torch.cat([c.prompt_ids, c.completion_ids])
    conf = li.token_confidence(lm.model, lm.tokenizer, ids, len(c.prompt_ids))
    return (
        conf,
        li.attention_maps(lm.model, lm.tokenizer, ids),
        li.logit_lens(lm.model, lm.tokenizer, ids),
    )


def _flat(grid):
    return [v for row in grid for v in row if v is not None]


def test_show_token_makes_labels_visible():
    assert plots.show_token("\n") == "⏎"
    assert plots.show_token("  ") == "␣␣"
    assert plots.show_token("<b>") == "&lt;b&gt;"
    assert plots.show_token("a\x0bb") == "a·b"
    assert plots.show_token("") == "∅"


def test_token_confidence_figure(data):
    conf, _, _ = data
    fig = plots.token_confidence_figure(conf, start=2, count=10, per_row=4)
    assert isinstance(fig, go.Figure)
    heat = fig.data[0]
    assert len(heat.z) == 3 and all(len(row) == 4 for row in heat.z)  # 10 tokens in rows of 4
    assert _flat(heat.z) == pytest.approx(conf.probs[2:12].tolist())
    assert [t for row in heat.text for t in row][:10] == [
        plots.show_token(t) for t in conf.tokens[2:12]
    ]
    # the empty cells after the last token show nothing (None would be drawn as "null")
    assert list(heat.text[-1][2:]) == ["", ""] and list(heat.customdata[-1][2:]) == ["", ""]
    assert "alternatives" in _flat(heat.customdata)[0]
    assert "tokens 2-11" in fig.layout.title.text
    with pytest.raises(ValueError, match="per_row"):
        plots.token_confidence_figure(conf, per_row=0)


def test_token_confidence_outlines_hesitations(data):
    conf, _, _ = data
    fake = li.TokenConfidence(
        tokens=["So", " wait", ",", " hmm", "."],
        token_ids=torch.arange(5),
        probs=torch.tensor([0.9, 0.2, 0.8, 0.3, 0.99]),
        entropy=torch.tensor([0.1, 2.0, 0.3, 1.5, 0.01]),
        topk_ids=torch.zeros(5, 2, dtype=torch.long),
        topk_probs=torch.full((5, 2), 0.5),
        topk_tokens=[["a", "b"]] * 5,
    )
    fig = plots.token_confidence_figure(fake, per_row=2)
    boxes = [(s.x0 + 0.5, s.y0 + 0.5) for s in fig.layout.shapes]
    assert boxes == [(1, 0), (1, 1)]  # token 1 at row 0 col 1, token 3 at row 1 col 1
    ent = plots.entropy_figure(fake)
    assert list(ent.data[-1].x) == [1, 3] and list(ent.data[0].y) == pytest.approx(
        fake.entropy.tolist()
    )


def test_attention_figures(data):
    _, maps, _ = data
    fig = plots.attention_figure(maps, layer=1, head=2)
    assert torch.allclose(torch.tensor(fig.data[0].z), maps.weights[1, 2])
    assert len(set(fig.data[0].x)) == len(maps.tokens)  # repeated tokens stay apart
    with pytest.raises(ValueError, match="layer must be"):
        plots.attention_figure(maps, layer=maps.n_layers, head=0)
    summary = plots.attention_summary_figure(maps)
    z = torch.tensor(summary.data[0].z)
    assert z.shape == (maps.n_layers, maps.n_heads)
    w = maps.weights.clamp_min(1e-12)
    assert z[0, 0].item() == pytest.approx((-(w[0, 0] * w[0, 0].log()).sum(-1)).mean().item(), 1e-5)


def test_logit_lens_figure(data):
    _, _, lens = data
    fig = plots.logit_lens_figure(lens, start=3, count=5)
    z = torch.tensor(fig.data[0].z)
    assert z.shape == (len(lens.layer_names), 5)
    assert torch.allclose(z, lens.top_probs[:, 3:8, 0])
    assert list(fig.data[0].y) == lens.layer_names
    assert fig.data[0].text[-1][0] == plots.show_token(lens.top_tokens[-1][3][0])
    last = plots.logit_lens_figure(lens, start=len(lens.tokens) - 2, count=5, value="next")
    assert last.data[0].z[0][-1] is None  # the final position has no next token
    assert last.data[0].z[-1][0] == pytest.approx(lens.next_prob[-1, -1].item())
    with pytest.raises(ValueError, match="'top' or 'next'"):
        plots.logit_lens_figure(lens, value="mean")
    with pytest.raises(ValueError, match="past the"):
        plots.logit_lens_figure(lens, start=10_000)


def test_memory_and_budget_figures(data):
    conf, _, _ = data
    fig = plots.memory_figure({"measured NF4": 1.5e9}, {"naive 4-bit": 0.9e9, "bf16": 3.6e9})
    assert list(fig.data[0].y) == pytest.approx([0.9, 3.6]) and list(fig.data[1].y) == [1.5]
    assert fig.layout.yaxis.title.text.startswith("GB")
    # the stand-in's few hundred kilobytes in KB, not as bars labelled 0.00 GB
    tiny = plots.memory_figure({"NF4, as loaded": 150_000}, {"all params in float32": 600_000})
    assert tiny.layout.yaxis.title.text.startswith("KB")
    assert list(tiny.data[0].y) == pytest.approx([600.0]) and list(tiny.data[1].y) == [150.0]
    summary = [
        {"budget": 0, "accuracy": 0.25, "mean_thinking_tokens": 0.0},
        {"budget": 64, "accuracy": 0.5, "mean_thinking_tokens": 50.0},
    ]
    fig = plots.budget_figure(summary)
    assert list(fig.data[0].x) == [0.0, 50.0] and list(fig.data[0].y) == [25.0, 50.0]
    assert list(fig.data[0].text) == ["budget 0", "budget 64"]
    with pytest.raises(ValueError, match="empty"):
        plots.budget_figure([])


def test_budget_figure_shows_intervals_and_cut_off_answers():
    summary = [
        {"budget": 0, "accuracy": 0.25, "ci_low": 0.1, "ci_high": 0.4, "cut off": 0.0,
         "mean_thinking_tokens": 0.0, "problems": 16, "samples": 4, "level": 0.95},
        {"budget": 64, "accuracy": 0.5, "ci_low": 0.3, "ci_high": 0.75, "cut off": 0.125,
         "mean_thinking_tokens": 50.0, "problems": 16, "samples": 4, "level": 0.95},
    ]  # fmt: skip
    fig = plots.budget_figure(summary)
    acc, cut = fig.data
    assert list(acc.error_y.array) == pytest.approx([15.0, 25.0])
    assert list(acc.error_y.arrayminus) == pytest.approx([15.0, 20.0])
    assert list(cut.y) == [0.0, 12.5] and "cut off" in cut.name
    assert "16 problems x 4 samples" in fig.layout.title.text and "95%" in fig.layout.title.text
