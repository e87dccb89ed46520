"""Figure builders of notebook 00: the traces carry exactly the numbers they are given."""

from __future__ import annotations

import html
import math
import re

import plotly.graph_objects as go
import pytest

from course_lib import published, sizing
from course_lib.plots import sizing as plots


def test_training_cost_figure_reflects_rows_and_price():
    rows = sizing.training_cost_table(2.0)
    fig = plots.training_cost_figure(rows, 2.0)
    assert isinstance(fig, go.Figure)
    bar = fig.data[0]
    assert list(bar.x) == ["pre-training", "context extension", "post-training"]
    assert list(bar.y) == pytest.approx([5.328, 0.238, 0.010])
    title = html.unescape(fig.layout.title.text)
    assert "$5.576M" in title and "2,788,000" in title
    dearer = plots.training_cost_figure(sizing.training_cost_table(4.0), 4.0)
    assert list(dearer.data[0].y) == pytest.approx([10.656, 0.476, 0.020])
    assert "$11.152M" in html.unescape(dearer.layout.title.text)


def _plotly_strings(fig: go.Figure) -> list[str]:
    """Every string plotly draws as text: titles, axis titles, annotations, bar texts."""
    lay = fig.layout
    out = [lay.title.text or ""]
    out += [ax.title.text or "" for ax in (lay.xaxis, lay.yaxis)]
    out += [a.text for a in lay.annotations]
    for t in fig.data:
        for attr in ("text", "name"):
            value = getattr(t, attr, None)
            out += [value] if isinstance(value, str) else [str(v) for v in (value or ())]
    return out


def test_no_figure_string_reads_as_tex():
    """plotly.js typesets any string holding two $ signs (defect: a blank title and table cell)."""
    price = published.V3_RENTAL_PRICE_PER_GPU_HOUR
    fig = plots.training_cost_figure(sizing.training_cost_table(price), price)
    strings = _plotly_strings(fig)
    assert any("&#36;" in s for s in strings)  # the dollars are there, written as an entity
    assert not [s for s in strings if re.search(r"\$[^$]*\$", s)]


def test_memory_figure_stacks_weights_and_kv_and_draws_gpu_lines():
    rows = sizing.sizing_table((4,), context_tokens=8192)
    fig = plots.memory_figure(rows, {"T4": 16, "H100": 80})
    weights, kv = fig.data
    assert list(weights.x) == list(published.R1_MODELS)
    assert list(weights.y) == pytest.approx([r["weights_gb"] for r in rows])
    assert list(kv.y) == pytest.approx([r["kv_gb"] for r in rows])
    assert fig.layout.barmode == "stack" and fig.layout.yaxis.type == "log"
    lines = [s for s in fig.layout.shapes if s.type == "line"]
    assert sorted(s.y0 for s in lines) == [16, 80]


@pytest.mark.parametrize("which", ["memory", "bits"])
def test_gpu_line_labels_sit_on_their_lines_on_the_log_axis(which):
    """On a log axis plotly reads an annotation's y in log10 units: a label for 192 GB placed at
    y=192 stretched the axis to 10^192 and squashed every bar into a strip."""
    gpus = {"T4": 16, "M2 Ultra": 192}
    if which == "memory":
        fig = plots.memory_figure(sizing.sizing_table((4,), 4096), gpus)
    else:
        fig = plots.bits_figure(sizing.sizing_table(), gpus)
    assert fig.layout.yaxis.type == "log"
    labels = {a.text: a.y for a in fig.layout.annotations}
    assert labels == {
        "T4 16 GB": pytest.approx(math.log10(16)),
        "M2 Ultra 192 GB": pytest.approx(math.log10(192)),
    }
    assert all(a.yref == "y" for a in fig.layout.annotations)


def test_bits_figure_has_one_trace_per_bit_width():
    rows = sizing.sizing_table()
    fig = plots.bits_figure(rows, {"RTX 6000 Ada": 48})
    assert [t.name for t in fig.data] == ["16 bits", "8 bits", "4 bits", "1.58 bits"]
    assert fig.data[0].y[0] == pytest.approx(1342.0)  # 671B at 16 bits, no context
    assert fig.data[2].y[0] == pytest.approx(335.5)


def test_kv_cache_figure_lines():
    ctx = [1024, 2048]
    fig = plots.kv_cache_figure(ctx, {"a": [1.0, 2.0], "b": [0.5, 1.0]})
    assert [t.name for t in fig.data] == ["a", "b"]
    assert list(fig.data[1].y) == [0.5, 1.0] and list(fig.data[0].x) == ctx
    with pytest.raises(ValueError, match="2 context lengths"):
        plots.kv_cache_figure(ctx, {"a": [1.0]})


def test_decode_speed_figure_greys_models_that_do_not_fit():
    fig = plots.decode_speed_figure({"a": 100.0, "b": 10.0}, "T4", 4, fits={"a": True, "b": False})
    bar = fig.data[0]
    assert list(bar.y) == [100.0, 10.0]
    assert bar.marker.color[0] != bar.marker.color[1]
    assert "does not fit" in bar.text[1] and "T4" in fig.layout.title.text


def test_scores_figure_uses_reported_scores():
    fig = plots.scores_figure(published.REPORTED_SCORES, ["AIME 2024", "MATH-500"])
    r1 = next(t for t in fig.data if t.name == "DeepSeek-R1")
    assert list(r1.y) == [79.8, 97.3]
    with pytest.raises(ValueError, match="no score"):
        plots.scores_figure({"x": {"AIME 2024": 1.0}}, ["MATH-500"])


def test_bad_rows_raise():
    with pytest.raises(ValueError, match="no rows"):
        plots.memory_figure([], {})
    with pytest.raises(ValueError, match="missing"):
        plots.training_cost_figure([{"stage": "x"}], 2.0)


def test_mixed_precision_figure_stacks_parts_and_marks_the_file():
    bars = {"all at 1.58": {"all": 132.5}, "mixed": {"routed experts": 127.7, "the rest": 9.6}}
    fig = plots.mixed_precision_figure(bars, 140.2, "the files")
    assert [t.name for t in fig.data] == ["all", "routed experts", "the rest"]
    assert list(fig.data[1].y) == [0.0, 127.7] and list(fig.data[2].y) == [0.0, 9.6]
    assert fig.layout.barmode == "stack"
    assert [s.y0 for s in fig.layout.shapes] == [140.2]
    with pytest.raises(ValueError):
        plots.mixed_precision_figure({}, 1, "x")


def test_roofline_figure_bends_at_the_ridge():
    fig = plots.roofline_figure({"decode": (1.0, 0.32), "prefill": (500.0, 65.0)}, 65, 320, "T4")
    roof, pts = fig.data
    assert roof.x[1] == pytest.approx(65e12 / 320e9) and list(roof.y[1:]) == [65, 65]
    assert roof.y[0] == pytest.approx(320e9 * roof.x[0] / 1e12)  # the slope is the bandwidth
    assert list(pts.x) == [1.0, 500.0] and list(pts.text) == ["decode", "prefill"]
    assert fig.layout.xaxis.type == "log" and fig.layout.yaxis.type == "log"
