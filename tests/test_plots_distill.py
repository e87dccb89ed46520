"""Figures for notebook 03 hold the numbers they claim to show."""

from __future__ import annotations

import math

import plotly.graph_objects as go
import pytest
import torch

from course_lib.plots import distill as plots

VOCAB = list("abcdef")


def test_next_token_distributions_shows_softened_top_k():
    teacher = torch.tensor([3.0, 1.0, 0.0, -1.0, 2.0, -2.0])
    student = torch.tensor([0.0, 2.0, 0.0, 0.0, 1.0, 0.0])
    fig = plots.next_token_distributions(teacher, student, VOCAB, temperature=2.0, top_k=3)
    assert isinstance(fig, go.Figure)
    t_bar, s_bar = fig.data
    assert list(t_bar.x) == ["a", "e", "b"]  # the teacher's top 3, in order
    p = torch.softmax(teacher / 2.0, -1)
    q = torch.softmax(student / 2.0, -1)
    assert list(t_bar.y) == pytest.approx([p[0].item(), p[4].item(), p[1].item()], rel=1e-6)
    assert list(s_bar.y) == pytest.approx([q[0].item(), q[4].item(), q[1].item()], rel=1e-6)
    kl = (p * (p / q).log()).sum().item()
    assert f"{kl:.3f}" in fig.layout.title.text and "T = 2.00" in fig.layout.title.text


def test_higher_temperature_flattens_the_teacher_bars():
    teacher = torch.tensor([3.0, 1.0, 0.0, -1.0, 2.0, -2.0])
    cold = plots.next_token_distributions(teacher, teacher, VOCAB, temperature=0.5)
    hot = plots.next_token_distributions(teacher, teacher, VOCAB, temperature=5.0)
    assert max(cold.data[0].y) > max(hot.data[0].y)
    assert "KL(teacher‖student) = 0.000" in hot.layout.title.text


def test_next_token_distributions_refuses_mismatched_sizes():
    with pytest.raises(ValueError, match="same tokenizer"):
        plots.next_token_distributions(torch.zeros(6), torch.zeros(6), VOCAB[:5])
    with pytest.raises(ValueError, match="temperature"):
        plots.next_token_distributions(torch.zeros(6), torch.zeros(6), VOCAB, temperature=0)


def test_accuracy_bars():
    fig = plots.accuracy_bars(
        {
            "answers only": {"in-distribution": 0.2, "longer": 0.05},
            "traces": {"in-distribution": 0.9},
        }
    )
    assert [b.name for b in fig.data] == ["in-distribution", "longer"]
    assert list(fig.data[0].y) == pytest.approx([20.0, 90.0])
    assert fig.data[1].y[1] is None and fig.data[1].text[0] == "5%"
    with pytest.raises(ValueError):
        plots.accuracy_bars({})


def test_data_scaling_and_loss_curves_and_counts():
    fig = plots.data_scaling([50, 100, 200, 400], {"traces": [0.1, 0.3, 0.6, 0.8]})
    assert list(fig.data[0].y) == pytest.approx([10, 30, 60, 80])
    assert fig.layout.xaxis.type == "log"
    with pytest.raises(ValueError, match="4 sizes"):
        plots.data_scaling([1, 2, 3, 4], {"x": [0.1]})
    curves = plots.loss_curves({"a": [4.0, 2.0, 0.0]}, smooth=2)
    assert list(curves.data[0].y) == pytest.approx([4.0, 3.0, 1.0])
    counts = plots.filter_counts({"kept": 3, "wrong answer": 1})
    assert list(counts.data[0].y) == [3, 1] and "3 of 4" in counts.layout.title.text
    assert not math.isnan(counts.data[0].y[0])


def test_examples_table_colours_kept_rows():
    fig = plots.examples_table(
        [["1+1=", "<answer>2</answer>", "2", "kept"], ["1+2=", "x", "3", "wrong answer"]]
    )
    table = fig.data[0]
    assert list(table.cells.values[0]) == ["1+1=", "1+2="]
    assert list(table.cells.fill.color[0]) == ["#e8f5e9", "#fdecea"]
    with pytest.raises(ValueError, match="4 cells"):
        plots.examples_table([["a", "b"]])
