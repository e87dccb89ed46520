"""Interactive views for notebook 04 (GRPO), composed from :mod:`course_lib.plots.grpo`.

- :func:`clip_explorer`: sliders for ε and the advantage over the clipped surrogate.
- :func:`group_explorer`: how many of G completions were right -> the advantages each one gets,
  GRPO (÷ std) vs Dr. GRPO (no std).
- :class:`LiveCurves`: a training callback that redraws the curves in place every few steps.

Built with :mod:`course_lib.widgets.base` (``ipywidgets`` controls, ``Output`` and IPython display
handles carrying plotly's own display data; no ``go.FigureWidget``), so they render in JupyterLab,
Colab and VS Code, and each explorer carries its static figure for pages without widgets.
Nothing is displayed on import.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import ipywidgets as W
from IPython.display import display

from course_lib.plots import grpo as plots
from course_lib.runtime import in_notebook_kernel
from course_lib.widgets.base import Dashboard, live_view, replace_output

_STYLE = {"description_width": "100px"}  # room for "advantage A" and "# correct"


def clip_explorer(epsilon: float = 0.2, advantage: float = 1.0) -> Dashboard:
    """Sliders for ε and A over :func:`course_lib.plots.grpo.surrogate_plot`."""
    controls = {
        "epsilon": W.FloatSlider(
            value=epsilon, min=0.05, max=0.5, step=0.05, description="ε", style=_STYLE
        ),
        "advantage": W.FloatSlider(
            value=advantage, min=-2.0, max=2.0, step=0.25, description="advantage A", style=_STYLE
        ),
    }
    return live_view(
        lambda epsilon, advantage: [plots.surrogate_plot(epsilon, advantage)], controls
    )


def group_explorer(group_size: int = 8, n_correct: int = 2) -> Dashboard:
    """Pick G and how many completions were right; see the advantages GRPO and Dr. GRPO give."""
    controls = {
        "group_size": W.IntSlider(value=group_size, min=2, max=16, description="G", style=_STYLE),
        "n_correct": W.IntSlider(
            value=n_correct, min=0, max=16, description="# correct", style=_STYLE
        ),
        "divide_by_std": W.Checkbox(value=True, description="÷ std (GRPO)"),
    }

    def draw(group_size: int, n_correct: int, divide_by_std: bool) -> list:
        n_correct = min(n_correct, group_size)
        rewards = [1.0] * n_correct + [0.0] * (group_size - n_correct)
        return [plots.advantage_bars(rewards, scale=divide_by_std)]

    return live_view(draw, controls)


class LiveCurves:
    """A training callback: every ``every`` steps, redraw the training curves in place.

    Use ``trainer.train(steps, callback=LiveCurves())``. The first draw displays one output, an
    ``ipywidgets.Output`` inside a :class:`~course_lib.widgets.base.Dashboard`; later draws replace
    the figure inside it, and the last step always draws. When training ends the display is
    updated once more, so the final figure is also its static copy (an HTML export, a page
    without widgets). With ``output=`` it draws into that ``Output`` instead (a panel's own).
    Outside a notebook kernel it only keeps ``figure`` up to date.

    Why an Output widget and not a display handle with the figure: JupyterLab's plotly renderer
    ignores updates to a figure it has drawn, and ``Figure._ipython_display_`` ignores display ids,
    so either way the page kept the first figure or piled new ones below it.
    """

    def __init__(
        self,
        every: int = 10,
        panels: Sequence[str] | None = None,
        title: str = "GRPO, live",
        output: W.Output | None = None,
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
        self.output = output
        self.figure = None  # the latest figure drawn
        self.draws = 0
        self._view: Dashboard | None = None
        self._handle = None

    def __call__(self, trainer, metrics: Mapping) -> None:
        step = metrics.get("step", 0)
        last = bool(metrics.get("last", False))
        if step % self.every and not last:
            return
        fig = plots.training_curves(
            trainer.history, self.panels, title=f"{self.title} (step {step})"
        )
        self.figure, self.draws = fig, self.draws + 1
        if self.output is not None:
            replace_output(self.output, [fig])
            return
        if not in_notebook_kernel():
            return
        if self._view is None:
            out = W.Output()
            replace_output(out, [fig])
            self._view = Dashboard([out], static=lambda: [self.figure])
            self._view.output = out
            self._handle = display(self._view, display_id=True)
        else:
            replace_output(self._view.output, [fig])
        if last:  # the finished run: its figure becomes the static copy as well
            self._handle.update(self._view)


class ExperimentPanel:
    """Sliders for G, β, ε and the learning rate, and a button that runs a short GRPO from the base.

    ``make_trainer(config) -> GRPOTrainer`` builds a trainer on a fresh copy of the base model;
    the panel fills a :class:`course_lib.grpo_trainer.GRPOConfig` from the sliders and trains
    ``steps`` steps, the curves redrawn in place below. ``panel.run()`` does the same without a
    click (and returns the trainer), for scripts and tests. Show it with ``display(panel.widget)``.
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
        self.figure = None  # the curves of the last run
        self.button.on_click(lambda _: self.run())

        def beta_in_use(_=None) -> None:  # β = 0 switches the β slider off
            self.beta.disabled = self.beta_off.value

        self.beta_off.observe(beta_in_use, names="value")
        beta_in_use()
        controls = W.VBox(
            [
                W.HBox([self.g, self.eps]),
                W.HBox([self.beta, self.beta_off]),
                W.HBox([self.lr, self.steps]),
                self.button,
            ]
        )
        self.widget = Dashboard(
            [controls, self.output], static=lambda: [self.figure] if self.figure else []
        )

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
        cfg = self.config()
        trainer = self.make_trainer(cfg)
        title = (
            f"your run: G={cfg.group_size}, β={cfg.beta:.3g}, ε={cfg.epsilon:.2f}, lr={cfg.lr:.2g}"
        )
        live = LiveCurves(every=max(1, self.steps.value // 6), title=title, output=self.output)
        trainer.train(self.steps.value, callback=live, progress=False)
        self.figure = live.figure
        return trainer
