"""Widgets for notebook 04 build and react without a browser."""

from __future__ import annotations

import copy

import plotly.io as pio
import pytest
import torch
from IPython.core.displaypub import CapturingDisplayPublisher
from IPython.core.interactiveshell import InteractiveShell

from course_lib import grpo_trainer, tasks
from course_lib.model import TinySeek, TinySeekConfig
from course_lib.tokenizer import default_tokenizer
from course_lib.widgets import grpo as widgets


def _shown_titles(dashboard) -> list[str]:
    return [
        o["data"]["application/vnd.plotly.v1+json"]["layout"]["title"]["text"]
        for o in dashboard.output.outputs
    ]


def test_explorers_show_one_figure_that_follows_the_sliders():
    w = widgets.clip_explorer()
    assert [c.description for c in w.controls.values()] == ["ε", "advantage A"]
    assert _shown_titles(w) == ["clipped surrogate, A = +1.00, ε = 0.20"]
    w.controls["advantage"].value = -2.0
    assert _shown_titles(w) == ["clipped surrogate, A = -2.00, ε = 0.20"]
    g = widgets.group_explorer(group_size=4, n_correct=1)
    assert g.controls["group_size"].value == 4 and len(g.output.outputs) == 1
    before = g.output.outputs
    g.controls["divide_by_std"].value = False
    assert len(g.output.outputs) == 1 and g.output.outputs != before


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


@pytest.fixture
def shell(monkeypatch):
    """An IPython shell whose display messages are recorded, as a kernel would send them."""
    sh = InteractiveShell.instance()
    monkeypatch.setattr(sh, "display_pub", CapturingDisplayPublisher())
    monkeypatch.setattr(widgets, "in_notebook_kernel", lambda: True)
    monkeypatch.setattr(pio.renderers, "default", "plotly_mimetype")
    yield sh.display_pub
    InteractiveShell.clear_instance()


def test_live_curves_redraw_in_place(shell):
    """One output for the whole run: the figure is replaced inside it, never drawn again below
    (Figure._ipython_display_ ignores display ids, and JupyterLab's plotly renderer ignores
    updates); at the end the display is refreshed so its static copy is the final figure."""
    live = widgets.LiveCurves(every=5)
    trainer = _FakeTrainer()
    for step in (5, 10):
        live(trainer, {"step": step})
    live(trainer, {"step": 15, "last": True})
    first, *updates = shell.outputs
    assert "application/vnd.jupyter.widget-view+json" in first["data"] and not first["update"]
    assert len(updates) == 1 and updates[0]["update"]
    assert updates[0]["transient"]["display_id"] == first["transient"]["display_id"]
    (shown,) = live._view.output.outputs
    title = shown["data"]["application/vnd.plotly.v1+json"]["layout"]["title"]["text"]
    assert title == "GRPO, live (step 15)"
    assert "GRPO, live (step 15)" in updates[0]["data"]["text/html"]


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
    assert panel.beta.disabled  # β = 0: the β slider has nothing to set
    trainer = panel.run()
    assert trainer.config.group_size == 3 and len(trainer.history) == 5
    # the curves of this run, once, in the panel's output, and as its static copy
    (shown,) = panel.output.outputs
    title = shown["data"]["application/vnd.plotly.v1+json"]["layout"]["title"]["text"]
    assert title.startswith("your run: G=3, β=0, ε=0.30") and "(step 5)" in title
    assert "your run: G=3" in panel.widget.static_html()
