"""Figure builders of notebook 02: the traces carry exactly the numbers they are given."""

from __future__ import annotations

import plotly.graph_objects as go
import pytest

from course_lib.plots import attention as plots


def test_human_bytes():
    assert plots.human_bytes(70_272) == "70.3 KB"
    assert plots.human_bytes(999) == "999 B"
    assert plots.human_bytes(4_997_120) == "5 MB"
    assert plots.human_bytes(2.3e9) == "2.3 GB"
    with pytest.raises(ValueError):
        plots.human_bytes(-1)


def test_kv_bytes_figure_carries_values_labels_and_mla_colour():
    fig = plots.kv_bytes_figure({"MHA": 4e6, "MLA": 7e4}, title="t", log=True)
    assert isinstance(fig, go.Figure)
    bar = fig.data[0]
    assert list(bar.y) == ["MHA", "MLA"] and list(bar.x) == [4e6, 7e4]
    assert list(bar.text) == ["4 MB", "70 KB"]
    assert bar.marker.color[1] == plots.MECHANISM_COLOURS["MLA"]
    assert fig.layout.xaxis.type == "log"
    with pytest.raises(ValueError):
        plots.kv_bytes_figure({})
    with pytest.raises(ValueError):
        plots.kv_bytes_figure({"MHA": -1})


def test_measured_vs_formula_figure():
    fig = plots.measured_vs_formula_figure({"MHA": 10, "MLA": 2}, {"MHA": 10, "MLA": 2})
    assert [t.name for t in fig.data] == ["measured (cache tensors)", "formula (sizing)"]
    assert list(fig.data[0].y) == [10, 2]
    with pytest.raises(ValueError, match="same"):
        plots.measured_vs_formula_figure({"MHA": 1}, {"MLA": 1})


def test_score_heatmaps_share_one_colour_range():
    fig = plots.score_heatmaps({"a": [[0, 1], [2, 3]], "b": [[-1, 0], [0, 5]]})
    assert len(fig.data) == 2
    assert {t.zmin for t in fig.data} == {-1} and {t.zmax for t in fig.data} == {5}
    assert [t.showscale for t in fig.data] == [False, True]
    # centred on zmid: white is 0 on the diverging scale (plotly ignores zmid once zmin/zmax are set)
    centred = plots.score_heatmaps({"a": [[0, 1], [2, 3]], "b": [[-1, 0], [0, 5]]}, zmid=0)
    assert {t.zmin for t in centred.data} == {-5} and {t.zmax for t in centred.data} == {5}


def test_decode_time_figure_in_milliseconds():
    fig = plots.decode_time_figure(
        [128, 256], {"naive": [0.002, 0.004], "absorbed": [0.001, 0.001]}
    )
    assert list(fig.data[0].y) == pytest.approx([2, 4]) and fig.data[1].name == "absorbed"
    assert fig.layout.xaxis.type == "log"
    with pytest.raises(ValueError, match="timings"):
        plots.decode_time_figure([1, 2], {"naive": [0.1]})


def test_loss_comparison_figure():
    fig = plots.loss_comparison_figure({"MHA": ([0, 10], [3.0, 2.0]), "MLA": ([0, 10], [3.1, 2.1])})
    assert [t.name for t in fig.data] == ["MHA", "MLA"] and list(fig.data[1].y) == [3.1, 2.1]
    assert fig.data[0].line.color != fig.data[1].line.color
    with pytest.raises(ValueError):
        plots.loss_comparison_figure({"MHA": ([0, 1], [3.0])})
