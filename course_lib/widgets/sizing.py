"""Dashboard for notebook 00: GPU price, bits per weight, context length and GPU choice drive the
cost, memory and decode-speed figures of ``course_lib.plots.sizing``.

Built with :func:`course_lib.widgets.base.live_view` (works in JupyterLab 4, Colab and VS Code):
plain plotly figures shown in an ``Output``, nothing depends on ``go.FigureWidget``. The dashboard
carries its own static copy for pages where widgets cannot render.
"""

from __future__ import annotations

import html

import ipywidgets as widgets
import plotly.graph_objects as go

from course_lib import published, sizing
from course_lib.plots import sizing as plots
from course_lib.widgets.base import Dashboard, live_view

BITS_OPTIONS: tuple[float, ...] = (1.58, 2, 3, 4, 5, 6, 8, 16)
CONTEXT_OPTIONS: tuple[int, ...] = tuple(2**k for k in range(10, 18))  # 1K ... 128K tokens


def dashboard_figures(
    price_per_gpu_hour: float, bits: float, context_tokens: int, gpu: str
) -> dict[str, go.Figure]:
    """The dashboard's figures for one setting of the controls (pure: no display)."""
    g = sizing.get_gpu(gpu)
    rows = sizing.sizing_table((bits,), context_tokens)
    speeds = {
        name: sizing.decode_tokens_per_s(name, bits, g, context_tokens)
        for name in published.R1_MODELS
    }
    fits = {name: sizing.fits(name, g, bits, context_tokens) for name in published.R1_MODELS}
    return {
        "cost": plots.training_cost_figure(
            sizing.training_cost_table(price_per_gpu_hour), price_per_gpu_hour
        ),
        "memory": plots.memory_figure(
            rows,
            {g.name: g.memory_gb},
            title=f"Weights at {bits:g} bits + bf16 KV cache for {context_tokens:,} tokens",
        ),
        "decode": plots.decode_speed_figure(speeds, g.name, bits, fits),
    }


def dashboard_summary(price_per_gpu_hour: float, bits: float, context_tokens: int, gpu: str) -> str:
    """One HTML paragraph with the headline numbers for the current controls."""
    g = sizing.get_gpu(gpu)
    total = sizing.training_cost_table(price_per_gpu_hour)[-1]
    fitting = [n for n in published.R1_MODELS if sizing.fits(n, g, bits, context_tokens)]
    return (
        f"<p><b>Training run</b>: {total['gpu_hours']:,} GPU-hours x ${price_per_gpu_hour:g} = "
        f"<b>${total['cost_usd'] / 1e6:,.3f}M</b>. "
        f"<b>On one {html.escape(g.name)}</b> ({g.memory_gb:g} GB, {g.bandwidth_gbs:g} GB/s) at "
        f"{bits:g} bits with {context_tokens:,} tokens of context, these fit: "
        f"<b>{html.escape(', '.join(fitting) or 'none')}</b>.</p>"
    )


def sizing_dashboard(
    price_per_gpu_hour: float = published.V3_RENTAL_PRICE_PER_GPU_HOUR,
    bits: float = 4,
    context_tokens: int = 4096,
    gpu: str = "RTX 4090",
) -> Dashboard:
    """Controls for GPU price, bits per weight, context length and GPU, above live figures.

    The returned dashboard carries ``.controls`` (name -> widget) and ``.figures`` (the latest
    summary and figures, by name: ``summary``, ``cost``, ``memory``, ``decode``).
    """
    if bits not in BITS_OPTIONS:
        raise ValueError(f"bits={bits!r} is not offered; pick one of {BITS_OPTIONS}.")
    if context_tokens not in CONTEXT_OPTIONS:
        raise ValueError(f"context_tokens={context_tokens!r}; pick one of {CONTEXT_OPTIONS}.")
    sizing.get_gpu(gpu)  # validates the name
    style = {"description_width": "130px"}
    layout = widgets.Layout(width="400px")
    controls = {
        "price_per_gpu_hour": widgets.FloatSlider(
            value=price_per_gpu_hour, min=0.5, max=6.0, step=0.25, description="GPU $ / hour",
            style=style, layout=layout, continuous_update=False,
        ),
        "bits": widgets.SelectionSlider(
            options=list(BITS_OPTIONS), value=bits, description="bits per weight",
            style=style, layout=layout, continuous_update=False,
        ),
        "context_tokens": widgets.SelectionSlider(
            options=[(f"{c // 1024}K", c) for c in CONTEXT_OPTIONS], value=context_tokens,
            description="context (tokens)", style=style, layout=layout, continuous_update=False,
        ),
        "gpu": widgets.Dropdown(
            options=list(published.GPUS), value=gpu, description="GPU", style=style, layout=layout
        ),
    }  # fmt: skip

    def draw(price_per_gpu_hour: float, bits: float, context_tokens: int, gpu: str) -> dict:
        summary = dashboard_summary(price_per_gpu_hour, bits, context_tokens, gpu)
        figs = dashboard_figures(price_per_gpu_hour, bits, context_tokens, gpu)
        return {"summary": summary, **figs}

    return live_view(draw, controls, columns=[list(controls)[:2], list(controls)[2:]])
