"""Figures for notebook 04: they draw the data they are given."""

from __future__ import annotations

import pytest
import torch

from course_lib import grpo
from course_lib.plots import grpo as plots

HISTORY = [{"step": 0, "eval_accuracy": 0.1}] + [
    {"step": s, "reward_mean": s / 10, "accuracy": s / 20, "kl": 0.01 * s, "clip_fraction": 0.0, "length": 20,
     "format": 1.0, **({"eval_accuracy": 0.5} if s == 5 else {})}
    for s in range(1, 6)
]  # fmt: skip


def test_training_curves_draws_each_panel_and_the_held_out_accuracy():
    fig = plots.training_curves(HISTORY)
    names = [t.name for t in fig.data]
    assert names == [
        "reward_mean",
        "accuracy",
        "held-out accuracy",
        "kl",
        "clip_fraction",
        "length",
        "format",
    ]
    held = fig.data[2]
    assert list(held.x) == [0, 5] and list(held.y) == [0.1, 0.5]
    assert list(fig.data[0].y) == [0.1, 0.2, 0.3, 0.4, 0.5]
    with pytest.raises(ValueError, match="unknown panels"):
        plots.training_curves(HISTORY, panels=("loss!",))


def test_group_view_bars_are_the_rewards_and_advantages():
    rewards = [2.0, 1.0, 1.0, 0.0]
    adv = grpo.group_advantages(torch.tensor(rewards), 4).tolist()
    fig = plots.group_view(["a", "b", "c", "d"], rewards, adv, prompt="47+85=")
    assert list(fig.data[0].y) == rewards and list(fig.data[1].y) == pytest.approx(adv)
    assert fig.data[1].marker.color[0] == "#2ca02c" and fig.data[1].marker.color[3] == "#d62728"
    with pytest.raises(ValueError):
        plots.group_view(["a"], [1.0, 2.0], [0.0])


def test_surrogate_plot_is_flat_beyond_the_clip():
    fig = plots.surrogate_plot(epsilon=0.2, advantage=1.0, ratio_max=2.0)
    xs, ys = fig.data[1].x, fig.data[1].y
    assert max(ys) == pytest.approx(1.2)
    assert all(y == pytest.approx(1.2) for x, y in zip(xs, ys) if x >= 1.2)
    neg = plots.surrogate_plot(epsilon=0.2, advantage=-1.0)
    assert all(y == pytest.approx(-0.8) for x, y in zip(neg.data[1].x, neg.data[1].y) if x <= 0.8)
    with pytest.raises(ValueError, match="epsilon"):
        plots.surrogate_plot(epsilon=0.0)


def test_kl_plot_k3_nonnegative_k1_not():
    fig = plots.kl_estimator_plot()
    assert min(fig.data[0].y) >= 0 and min(fig.data[1].y) < 0


def test_compare_runs_and_tables():
    fig = plots.compare_runs({"a": HISTORY, "b": HISTORY}, metrics=("eval_accuracy", "kl"))
    assert len(fig.data) == 4 and [t.showlegend for t in fig.data] == [True, False, True, False]
    with pytest.raises(ValueError):
        plots.compare_runs({})
    table = plots.samples_table(
        [{"step": 1, "prompt": "1+2=", "completion": "<answer>3</answer>", "reward": 2.0}]
    )
    assert list(table.data[0].cells.values[3]) == ["2.00"]


def test_advantage_bars_match_the_library():
    fig = plots.advantage_bars([1.0, 0.0, 0.0, 0.0], scale=False)
    assert list(fig.data[1].y) == pytest.approx([0.75, -0.25, -0.25, -0.25])
    with pytest.raises(ValueError):
        plots.advantage_bars([1.0])
