import numpy as np
import plotly.graph_objects as go
import pytest

from course_lib.plots import moe as plots


def test_routing_bars_marks_the_chosen_experts():
    fig = plots.routing_bars(
        [0.2, 0.9, 0.5, 0.4], [0.0, -0.6, 0.0, 0.3], chosen=[2, 3], weights=[1.2, 1.3]
    )
    assert isinstance(fig, go.Figure)
    gate = [t for t in fig.data if t.name == "gate weight"][0]
    assert list(gate.y) == [0.0, 0.0, 1.2, 1.3]
    assert [c != "rgba(0,0,0,0)" for c in gate.marker.line.color] == [False, False, True, True]


def test_load_heatmaps_show_shares_per_run():
    loads = {
        "none": np.array([[30, 10, 0, 0], [40, 0, 0, 0]]),
        "bias": np.array([[10, 10, 10, 10]] * 2),
    }
    fig = plots.load_heatmaps(loads, steps=[0, 1])
    assert len(fig.data) == 2
    np.testing.assert_allclose(np.asarray(fig.data[0].z).T, [[0.75, 0.25, 0, 0], [1, 0, 0, 0]])
    np.testing.assert_allclose(np.asarray(fig.data[1].z), 0.25)
    assert fig.layout.annotations[0].text == "none"


def test_curves_and_usage():
    fig = plots.max_over_mean_curves({"a": ([0, 1], [2.0, 1.1])}, target=1.3)
    assert list(fig.data[0].y) == [2.0, 1.1] and len(fig.layout.shapes) == 2
    fig = plots.loss_curves({"dense": ([10, 20], [2.0, 1.5]), "MoE": ([10, 20], [1.9, 1.4])})
    assert [t.name for t in fig.data] == ["dense", "MoE"]
    u = np.array([[0.5, 0.5], [1.0, 0.0]])
    fig = plots.domain_usage_heatmaps({"r": u}, ["arith", "rev"])
    assert list(fig.data[0].y) == ["arith", "rev"] and np.asarray(fig.data[0].z).shape == (2, 2)
    fig = plots.params_bars({"dense": (10, 10), "MoE": (30, 11)})
    assert list(fig.data[0].y) == [10, 30] and list(fig.data[1].y) == [10, 11]


def test_balance_vs_loss_carries_each_setting_with_error_bars():
    from course_lib.plots.moe import balance_vs_loss

    fig = balance_vs_loss({"none": (3.1, 0.5, 1.22, 0.01), "aux α=0.1": (0.2, 0.05, 1.26, 0.02)})
    assert [t.name for t in fig.data] == ["none", "aux α=0.1"]
    assert fig.data[0].x == (3.1,) and fig.data[0].error_x.array == (0.5,)
    assert fig.data[1].y == (1.26,) and fig.data[1].error_y.array == (0.02,)
    with pytest.raises(ValueError, match="expected"):
        balance_vs_loss({"bad": (1.0, 2.0)})


def test_balance_vs_loss_names_settings_in_a_legend_by_kind_and_strength():
    """Two settings with the same balance must not print their names over each other (the
    browser test found 'no balancing' and 'aux-free γ=0.0001' on top of each other): names go in
    the legend; the kind is the marker's shape, later settings of a kind are darker."""
    from course_lib.plots.moe import balance_vs_loss

    fig = balance_vs_loss({
        "no balancing": (5.4, 2.6, 1.267, 0.03), "aux-free γ=0.0001": (5.2, 2.0, 1.272, 0.03),
        "aux loss α=0.01": (0.5, 0.1, 1.268, 0.03), "aux loss α=0.1": (0.1, 0.02, 1.307, 0.03),
        "aux-free γ=0.01": (0.1, 0.06, 1.275, 0.02),
    })  # fmt: skip
    assert fig.layout.showlegend and all(t.mode == "markers" and not t.text for t in fig.data)
    symbol = {t.name: t.marker.symbol for t in fig.data}
    assert symbol == {"no balancing": "x", "aux-free γ=0.0001": "diamond", "aux loss α=0.01": "circle",
                      "aux loss α=0.1": "circle", "aux-free γ=0.01": "diamond"}  # fmt: skip
    color = {t.name: t.marker.color for t in fig.data}
    assert color["aux loss α=0.01"] != color["aux loss α=0.1"]
    assert color["aux-free γ=0.0001"] != color["aux-free γ=0.01"]
    assert all(t.error_x.color == t.marker.color for t in fig.data)
