"""Figures for notebook 06: they draw the data they are given."""

from __future__ import annotations

import pytest

from course_lib.plots import r1_pipeline as plots

PATHS = {
    "R1-Zero": {"base": {"accuracy": 0.3, "format": 0.9, "language": 0.5, "length": 20.5},
                "R1-Zero": {"accuracy": 0.9, "format": 1.0, "language": 0.5, "length": 22.0}},
    "R1": {"cold start": {"accuracy": 0.2, "format": 1.0, "language": 1.0, "length": 20.7,
                          "other_accuracy": 0.25, "helpfulness": 0.125}},
}  # fmt: skip


def test_pipeline_diagram_has_every_stage_and_arrow():
    fig = plots.pipeline_diagram()
    text = " ".join(a.text for a in fig.layout.annotations)
    for stage in ("R1-Zero", "cold start", "reasoning RL", "rejection sampling", "SFT of the base",
                  "RL for all scenarios", "distilled"):  # fmt: skip
        assert stage in text
    arrows = [a for a in fig.layout.annotations if a.showarrow]
    assert len(arrows) == len(plots._ARROWS) and len(fig.layout.shapes) == len(plots._BOXES)


def test_stage_bars_one_panel_per_path_one_bar_per_metric():
    fig = plots.stage_bars(PATHS)
    assert [t.name for t in fig.data] == ["accuracy", "format", "language"] * 2
    assert list(fig.data[2].x) == ["base", "R1-Zero"] and list(fig.data[2].y) == [0.5, 0.5]
    assert list(fig.data[3].y) == [0.2] and list(fig.data[3].customdata) == [20.7]
    with pytest.raises(ValueError, match="at least one path"):
        plots.stage_bars({})


def test_stage_table_formats_every_metric_and_marks_the_missing_ones():
    table = plots.stage_table(PATHS)
    assert table.count("<tr>") == 4  # header + three stages
    assert (
        "<td style='white-space:nowrap'>R1-Zero</td><td>base</td><td>30%</td><td>90%</td><td>50%</td><td>20.5</td><td>-</td>"
        in table
    )
    assert "<td>25%</td><td>12%</td>" in table  # other accuracy, helpfulness (12.5% rounds to even)


def test_curves_draw_their_points_in_order():
    fig = plots.vote_curves({"a": {4: 0.5, 1: 0.25, 16: 0.75}, "b": {"1": 1.0}})
    assert list(fig.data[0].x) == [1.0, 4.0, 16.0] and list(fig.data[0].y) == [0.25, 0.5, 0.75]
    assert list(fig.layout.xaxis.tickvals) == [1, 4, 16] and fig.layout.xaxis.type == "log"
    fig = plots.budget_curves({"R1": {0: 0.0, 16: 1.0}})
    assert list(fig.data[0].y) == [0.0, 1.0] and fig.layout.xaxis.type == "linear"
    fig = plots.compute_curves({"RL": [(2e10, 0.7), (1e10, 0.5)]})
    assert list(fig.data[0].x) == [1e10, 2e10] and list(fig.data[0].y) == [0.5, 0.7]
    with pytest.raises(ValueError, match="at least one curve"):
        plots.vote_curves({})


def test_accuracy_by_length_draws_each_length_with_its_count():
    fig = plots.accuracy_by_length({15: (2, 3), 14: (1, 2)})
    assert list(fig.data[0].x) == [14, 15]
    assert list(fig.data[0].y) == [0.5, pytest.approx(2 / 3)]
    assert list(fig.data[0].customdata) == [2, 3]
    assert list(fig.data[0].text) == ["1/2", "2/3"] and fig.data[0].textposition == "outside"
    for bad in ({}, {14: (3, 2)}, {14: (0, 0)}):
        with pytest.raises(ValueError, match="right, samples"):
            plots.accuracy_by_length(bad)


def test_coloured_trace_colours_each_word_by_script_and_escapes():
    text = "<think>h+5=bc;1c</think><answer>bdc</answer>"
    out = plots.coloured_trace(text, "letters")
    assert out.count("<span") == 4
    digits, letters, mixed = (plots.SCRIPT_COLORS[s] for s in ("digits", "letters", "mixed"))
    assert f"color:{letters};font-weight:bold'>h<" in out
    assert f"color:{digits};font-weight:bold;text-decoration:underline'>5<" in out
    assert f"color:{mixed};font-weight:bold;text-decoration:underline'>1c<" in out
    assert "&lt;think&gt;" in out and "&lt;answer&gt;bdc" in out  # tags shown, answer not coloured
    assert (
        plots.coloured_trace("<answer>5</answer>", "digits")
        == "<code>&lt;answer&gt;5&lt;/answer&gt;</code>"
    )
    # the thinking starts at the first <think>, even when its text also appears before it
    assert plots.coloured_trace("5<think>5</think>", "digits").startswith(
        "<code>5&lt;think&gt;<span"
    )
    table = plots.traces_table([("eh+if=", text, "letters")])
    assert "<td><code>eh+if=</code></td>" in table and table.count("<tr>") == 2
