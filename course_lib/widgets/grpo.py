"""Interactive views for notebook 04 (GRPO), composed from :mod:`course_lib.plots.grpo`.

- :func:`clip_explorer`: sliders for ε and the advantage over the clipped surrogate.
- :func:`group_explorer`: how many of G completions were right -> the advantages each one gets,
  GRPO (÷ std) vs Dr. GRPO (no std).
- :class:`LiveCurves`: a training callback that redraws the curves in place every few steps.

Built with ``ipywidgets.interactive``, ``Output`` and IPython display handles (no
``go.FigureWidget``), so they render in JupyterLab, Colab and VS Code. Nothing is displayed on import.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import ipywidgets as W
from IPython.display import display

from course_lib.plots import grpo as plots
from course_lib.runtime import in_notebook_kernel


def clip_explorer(epsilon: float = 0.2, advantage: float = 1.0) -> W.Widget:
    """Sliders for ε and A over :func:`course_lib.plots.grpo.surrogate_plot`."""

    def show(epsilon: float, advantage: float) -> None:
        display(plots.surrogate_plot(epsilon, advantage))

    return W.interactive(
        show,
        epsilon=W.FloatSlider(value=epsilon, min=0.05, max=0.5, step=0.05, description="ε"),
        advantage=W.FloatSlider(
            value=advantage, min=-2.0, max=2.0, step=0.25, description="advantage A"
        ),
    )


def group_explorer(group_size: int = 8, n_correct: int = 2) -> W.Widget:
    """Pick G and how many completions were right; see the advantages GRPO and Dr. GRPO give."""

    def show(group_size: int, n_correct: int, divide_by_std: bool) -> None:
        n_correct = min(n_correct, group_size)
        rewards = [1.0] * n_correct + [0.0] * (group_size - n_correct)
        display(plots.advantage_bars(rewards, scale=divide_by_std))

    return W.interactive(
        show,
        group_size=W.IntSlider(value=group_size, min=2, max=16, description="G"),
        n_correct=W.IntSlider(value=n_correct, min=0, max=16, description="# correct"),
        divide_by_std=W.Checkbox(value=True, description="÷ std (GRPO)"),
    )


class LiveCurves:
    """A training callback: every ``every`` steps, redraw the training curves in place.

    Use ``trainer.train(steps, callback=LiveCurves())``: the first draw displays the figure, later
    draws update that same display (an IPython display handle, which JupyterLab, Colab, VS Code and
    nbclient all support). After training, show ``plots.training_curves(trainer.history)`` once
    more as a static figure. Outside a notebook kernel it only keeps ``figure`` up to date.
    """

    def __init__(
        self, every: int = 10, panels: Sequence[str] | None = None, title: str = "GRPO, live"
    ) -> None:
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}.")
        self.every = every
        self.panels = (
            tuple(panels)
            if panels
            else ("reward_mean", "accuracy", "kl", "clip_fraction", "length", "format")
        )
        self.title = title
        self.figure = None  # the latest figure drawn
        self.draws = 0
        self._handle = None

    def __call__(self, trainer, metrics: Mapping) -> None:
        step = metrics.get("step", 0)
        if step % self.every and not metrics.get("last", False):
            return
        fig = plots.training_curves(
            trainer.history, self.panels, title=f"{self.title} (step {step})"
        )
        self.figure, self.draws = fig, self.draws + 1
        if not in_notebook_kernel():
            return
        if self._handle is None:
            self._handle = display(fig, display_id=True)
        else:
            self._handle.update(fig)


class ExperimentPanel:
    """Sliders for G, β, ε and the learning rate, and a button that runs a short GRPO from the base.

    ``make_trainer(config) -> GRPOTrainer`` builds a trainer on a fresh copy of the base model;
    the panel fills a :class:`course_lib.grpo_trainer.GRPOConfig` from the sliders and trains ``steps``
    steps, drawing the curves live. ``panel.run()`` does the same without a click (and returns
    the trainer), for scripts and tests. Show it with ``display(panel.widget)``.
    """

    def __init__(self, make_trainer, base_config, steps: int = 30) -> None:
        self.make_trainer = make_trainer
        self.base_config = base_config
        self.g = W.IntSlider(value=base_config.group_size, min=2, max=16, description="G")
        self.beta = W.FloatLogSlider(
            value=max(base_config.beta, 1e-3), base=10, min=-3, max=0, description="β"
        )
        self.beta_off = W.Checkbox(value=base_config.beta == 0, description="β = 0")
        self.eps = W.FloatSlider(
            value=base_config.epsilon, min=0.05, max=0.5, step=0.05, description="ε"
        )
        self.lr = W.FloatLogSlider(value=base_config.lr, base=10, min=-5, max=-2, description="lr")
        self.steps = W.IntSlider(value=steps, min=5, max=200, step=5, description="steps")
        self.button = W.Button(description="train", button_style="primary")
        self.output = W.Output()
        self.button.on_click(lambda _: self.run())
        controls = W.VBox(
            [
                W.HBox([self.g, self.eps]),
                W.HBox([self.beta, self.beta_off]),
                W.HBox([self.lr, self.steps]),
                self.button,
            ]
        )
        self.widget = W.VBox([controls, self.output])

    def config(self):
        """The GRPOConfig the sliders describe."""
        from dataclasses import replace

        return replace(
            self.base_config,
            group_size=self.g.value,
            beta=0.0 if self.beta_off.value else self.beta.value,
            epsilon=self.eps.value,
            lr=self.lr.value,
        )

    def run(self):
        trainer = self.make_trainer(self.config())
        live = LiveCurves(every=max(1, self.steps.value // 6), title="your run")
        self.output.clear_output()
        with self.output:
            trainer.train(self.steps.value, callback=live, progress=False)
        return trainer
