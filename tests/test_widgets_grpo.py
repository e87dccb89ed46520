"""Widgets for notebook 04 build and react without a browser."""

from __future__ import annotations

import copy

import torch

from course_lib import grpo_trainer, tasks
from course_lib.model import TinySeek, TinySeekConfig
from course_lib.tokenizer import default_tokenizer
from course_lib.widgets import grpo as widgets


def test_explorers_build():
    w = widgets.clip_explorer()
    assert [c.description for c in w.children[:2]] == ["ε", "advantage A"]
    g = widgets.group_explorer(group_size=4, n_correct=1)
    assert g.children[0].value == 4


class _FakeTrainer:
    def __init__(self):
        self.history = [
            {
                "step": 1,
                "reward_mean": 0.5,
                "accuracy": 0.1,
                "kl": 0.0,
                "clip_fraction": 0.0,
                "length": 3,
                "format": 1.0,
            }
        ]


def test_live_curves_redraw_only_every_n_steps():
    live = widgets.LiveCurves(every=5)
    live(_FakeTrainer(), {"step": 3})
    assert live.draws == 0 and live.figure is None
    live(_FakeTrainer(), {"step": 5})
    assert live.draws == 1 and "step 5" in live.figure.layout.title.text
    live(_FakeTrainer(), {"step": 6, "last": True})  # the last step always draws
    assert live.draws == 2


def test_experiment_panel_trains_with_the_slider_values():
    torch.manual_seed(0)
    base = TinySeek(TinySeekConfig(d_model=32, n_layers=1, n_heads=2, d_ff=64, max_seq_len=64))
    exs = tasks.arithmetic(4, seed=0, digits=1)
    cfg = grpo_trainer.GRPOConfig(group_size=4, prompts_per_step=2, max_new_tokens=6)

    def make(c):
        return grpo_trainer.GRPOTrainer(copy.deepcopy(base), default_tokenizer(), exs, c)

    panel = widgets.ExperimentPanel(make, cfg, steps=5)
    panel.g.value, panel.beta_off.value, panel.eps.value = 3, True, 0.3
    assert (panel.config().group_size, panel.config().beta, panel.config().epsilon) == (3, 0.0, 0.3)
    trainer = panel.run()
    assert trainer.config.group_size == 3 and len(trainer.history) == 5
