"""Notebook 01's dashboard: change top-k, the number of experts, shared experts, gamma and alpha,
retrain a small TinySeek, and see the expert loads and domain usage update.

Built from ipywidgets controls, a Train button and an ``Output`` (no FigureWidget), figures from
:mod:`course_lib.plots.moe`. Before the first click it shows a run the notebook already trained,
which is also its static copy for pages where widgets cannot render.
"""

from __future__ import annotations

import ipywidgets as W
import plotly.graph_objects as go
from IPython.display import HTML, display

from course_lib.model import TinySeekConfig
from course_lib.moe_lab import LabData, MoERun, moe_config, run_variant
from course_lib.plots import moe as plots
from course_lib.widgets.base import Dashboard, note, replace_output


def run_figures(run: MoERun, domain_names) -> list[go.Figure]:
    """The three figures the dashboard shows for one run: loads over steps, max/mean, domain usage."""
    label = f"{run.name}: val loss {run.val_loss:.3f}, end max/mean {run.end_max_over_mean():.2f}"
    return [
        plots.load_heatmaps(
            {label: run.layer_loads(-1)}, title="Last MoE layer: share of tokens per expert"
        ),
        plots.max_over_mean_curves({run.name: run.max_over_mean_curve()}),
        plots.domain_usage_heatmaps({run.name: run.domain_usage[-1]}, domain_names),
    ]


def playground_config(
    balance: str, n_activated_experts: int, n_routed_experts: int, shared: bool, gamma: float,
    alpha: float,
    base: TinySeekConfig | None = None,
) -> TinySeekConfig:  # fmt: skip
    """The config the dashboard trains; the expert width shrinks as experts are added
    (fine-grained expert segmentation keeps the total expert parameters fixed: DeepSeekMoE,
    arXiv 2401.06066, §3.1)."""
    base = base or moe_config()
    width = max(4, base.d_expert * base.n_routed_experts // n_routed_experts)
    if n_activated_experts > n_routed_experts:
        raise ValueError(
            f"n_activated_experts={n_activated_experts} needs at least that many routed experts "
            f"(n_routed_experts={n_routed_experts})."
        )
    return moe_config(
        **{k: v for k, v in base.to_dict().items() if k in ("d_model", "n_layers", "n_heads")},
        balance=balance, n_activated_experts=n_activated_experts,
        n_routed_experts=n_routed_experts, d_expert=width,
        n_shared_experts=1 if shared else 0, bias_gamma=gamma, aux_alpha=alpha,
    )  # fmt: skip


def balancing_playground(
    data: LabData,
    steps: int = 60,
    base: TinySeekConfig | None = None,
    initial: MoERun | None = None,
) -> Dashboard:
    """Controls + a Train button; each click trains one variant for ``steps`` steps and redraws.

    ``initial`` (a run trained earlier) is shown until the first click. Only the strength that
    the chosen balancing uses can be moved: gamma for the bias, alpha for the auxiliary loss.
    """
    style = {"description_width": "110px"}
    wide = W.Layout(width="360px")
    balance = W.Dropdown(options=[("no balancing", "none"), ("auxiliary loss (alpha)", "aux_loss"),
                                  ("aux-loss-free bias (gamma)", "aux_free")],
                         value="aux_free", description="balancing", style=style, layout=wide)  # fmt: skip
    activated = W.IntSlider(value=2, min=1, max=4, description="top-k", style=style)
    n_exp = W.Dropdown(options=[4, 8, 16], value=8, description="routed experts", style=style)
    shared = W.Checkbox(value=True, description="shared expert", style=style)
    gamma = W.FloatLogSlider(value=0.01, base=10, min=-4, max=-1, step=0.25, description="gamma",
                             readout_format=".4f", style=style)  # fmt: skip
    alpha = W.FloatLogSlider(value=0.01, base=10, min=-4, max=0, step=0.25, description="alpha",
                             readout_format=".4f", style=style)  # fmt: skip
    button = W.Button(description=f"Train {steps} steps", button_style="primary", icon="play")
    out = W.Output()
    shown: list[go.Figure] = list(run_figures(initial, data.domain_names)) if initial else []
    replace_output(out, shown)

    def only_the_used_strength(_=None) -> None:
        gamma.disabled = balance.value != "aux_free"
        alpha.disabled = balance.value != "aux_loss"

    def on_click(_=None):
        # Everything inside the Output's capture: the progress bar while it trains, then the
        # figures in its place (a closed progress bar must not linger as a dead widget).
        with out:
            out.clear_output(wait=True)
            try:
                cfg = playground_config(balance.value, activated.value, n_exp.value, shared.value,
                                        gamma.value, alpha.value, base)  # fmt: skip
            except ValueError as err:
                display(HTML(note(str(err))))
                return
            run = run_variant(balance.label, cfg, data, steps, progress=True)
            shown[:] = run_figures(run, data.domain_names)
            out.clear_output(wait=True)
            for fig in shown:
                display(fig)

    balance.observe(only_the_used_strength, names="value")
    only_the_used_strength()
    button.on_click(on_click)
    controls = W.VBox([balance, activated, n_exp, shared, gamma, alpha, button])
    box = Dashboard([controls, out], static=lambda: list(shown))
    box.button, box.output = button, out
    box.controls = {"balancing": balance, "n_activated_experts": activated,
                    "n_routed_experts": n_exp, "shared": shared, "gamma": gamma,
                    "alpha": alpha}  # fmt: skip
    return box
