"""The KV-cache calculator of notebook 02: sliders for layers, heads, head dim, KV groups, latent size,
RoPE dim, context, batch and dtype drive bars for MHA/GQA/MQA/MLA and for real models' configs.

Every number comes from ``course_lib.architectures`` ([V2 Table 1] formulas); this module only wires
controls to those functions and to ``course_lib.plots.attention``. Built with
:func:`course_lib.widgets.base.live_view` and plain plotly figures (no ``go.FigureWidget``); the
dashboard carries its own static copy for pages where widgets cannot render.
"""

from __future__ import annotations

import html

import ipywidgets as widgets
import plotly.graph_objects as go

from course_lib import architectures
from course_lib.plots import attention as plots
from course_lib.widgets.base import Dashboard, live_view

DTYPES: dict[str, float] = {"fp32": 4, "bf16": 2, "fp8": 1}
CONTEXT_OPTIONS: tuple[int, ...] = tuple(2**k for k in range(10, 18))  # 1K ... 128K tokens
# Real configs shown next to the calculator (all from architectures.CONFIGS, [cfg] / [ref]).
REAL_CONFIGS: dict[str, tuple[str, bool]] = {
    "DeepSeek-V3 (MLA, absorbed cache)": ("DeepSeek-V3", False),
    "DeepSeek-V3 (MLA, naive cache)": ("DeepSeek-V3", True),
    "R1-Distill-Qwen-1.5B (GQA)": ("Qwen2.5-Math-1.5B", False),
    "R1-Distill-Qwen-7B (GQA)": ("Qwen2.5-Math-7B", False),
    "Llama-3.1-8B (GQA)": ("Llama-3.1-8B", False),
    "Qwen2.5-32B (GQA)": ("Qwen2.5-32B", False),
}


def _bytes_per_element(dtype: str) -> float:
    if dtype not in DTYPES:
        raise ValueError(f"dtype={dtype!r} is not offered; pick one of {list(DTYPES)}.")
    return DTYPES[dtype]


def calculator_bytes(
    n_layers: int,
    n_heads: int,
    head_dim: int,
    n_kv_heads: int,
    kv_lora_rank: int,
    qk_rope_head_dim: int,
    context_tokens: int,
    batch: int = 1,
    dtype: str = "bf16",
) -> dict[str, float]:
    """KV-cache bytes of each mechanism for one made-up model (``architectures.kv_elements_per_token``)."""
    e = _bytes_per_element(dtype)
    if n_kv_heads > n_heads or n_heads % n_kv_heads:
        raise ValueError(
            f"n_kv_heads={n_kv_heads} must divide n_heads={n_heads} (GQA shares K/V within groups)."
        )
    per_token = {
        "MHA": architectures.kv_elements_per_token(
            "mha", n_layers, n_heads=n_heads, head_dim=head_dim
        ),
        f"GQA ({n_kv_heads} KV heads)": architectures.kv_elements_per_token(
            "gqa", n_layers, head_dim=head_dim, n_kv_heads=n_kv_heads
        ),
        "MQA": architectures.kv_elements_per_token("mqa", n_layers, head_dim=head_dim),
        "MLA": architectures.kv_elements_per_token(
            "mla", n_layers, kv_lora_rank=kv_lora_rank, qk_rope_head_dim=qk_rope_head_dim
        ),
    }
    if context_tokens < 0 or batch < 0:
        raise ValueError("context_tokens and batch must be >= 0; e.g. 4096 and 1.")
    return {name: n * context_tokens * batch * e for name, n in per_token.items()}


def real_config_bytes(context_tokens: int, batch: int = 1, dtype: str = "bf16") -> dict[str, float]:
    """KV-cache bytes of real models' configs (``REAL_CONFIGS``) at this context, batch and dtype."""
    e = _bytes_per_element(dtype)
    if context_tokens < 0 or batch < 0:
        raise ValueError("context_tokens and batch must be >= 0; e.g. 4096 and 1.")
    out = {}
    for label, (name, naive) in REAL_CONFIGS.items():
        per_token = architectures.config_kv_elements_per_token(
            architectures.CONFIGS[name], naive_mla=naive
        )
        out[label] = per_token * context_tokens * batch * e
    return out


def calculator_figures(**params) -> dict[str, go.Figure]:
    """The calculator's two figures for one setting of the controls (pure: no display)."""
    sizes = calculator_bytes(**params)
    ctx, batch, dtype = (
        params["context_tokens"],
        params.get("batch", 1),
        params.get("dtype", "bf16"),
    )
    where = f"{ctx:,} tokens x batch {batch} in {dtype}"
    return {
        "calculator": plots.kv_bytes_figure(
            sizes, title=f"Your model, {params['n_layers']} layers: KV cache for {where}"
        ),
        "real": plots.kv_bytes_figure(
            real_config_bytes(ctx, batch, dtype),
            title=f"Real configs: KV cache for {where} (log scale)",
            log=True,
        ),
    }


def calculator_summary(**params) -> str:
    """One HTML line: how many times smaller MLA's cache is than each other mechanism's."""
    sizes = calculator_bytes(**params)
    mla = sizes["MLA"]
    parts = [
        f"{html.escape(name)} {human} ({v / mla:,.1f}x MLA)"
        for name, v in sizes.items()
        if name != "MLA"
        for human in [plots.human_bytes(v)]
    ]
    return f"<p><b>MLA</b> caches {plots.human_bytes(mla)}; " + ", ".join(parts) + ".</p>"


def divisors(n: int) -> list[int]:
    """The KV-head counts GQA allows with ``n`` query heads: those that divide ``n``."""
    return [d for d in range(1, n + 1) if n % d == 0]


def kv_cache_calculator(
    n_layers: int = 61,
    n_heads: int = 128,
    head_dim: int = 128,
    n_kv_heads: int = 8,
    kv_lora_rank: int = 512,
    qk_rope_head_dim: int = 64,
    context_tokens: int = 32768,
    batch: int = 1,
    dtype: str = "bf16",
) -> Dashboard:
    """Sliders above live bars (defaults: DeepSeek-V3's sizes [V3 §2.1]).

    The KV-head choice offers only the divisors of the head count (GQA shares each K/V head
    within an equal group), and follows it when the head count moves. The returned dashboard
    carries ``.controls`` (name -> widget) and ``.figures`` (the latest summary and figures).
    """
    if context_tokens not in CONTEXT_OPTIONS:
        raise ValueError(f"context_tokens={context_tokens!r}; pick one of {CONTEXT_OPTIONS}.")
    _bytes_per_element(dtype)
    if n_heads % n_kv_heads:
        raise ValueError(f"n_kv_heads={n_kv_heads} must divide n_heads={n_heads}.")
    style = {"description_width": "130px"}
    layout = widgets.Layout(width="400px")

    def slider(value, lo, hi, step, label):
        return widgets.IntSlider(
            value=value, min=lo, max=hi, step=step, description=label,
            style=style, layout=layout, continuous_update=False,
        )  # fmt: skip

    controls = {
        "n_layers": slider(n_layers, 1, 128, 1, "layers (l)"),
        "n_heads": slider(n_heads, 1, 128, 1, "heads (n_h)"),
        "head_dim": slider(head_dim, 16, 256, 16, "head dim (d_h)"),
        "n_kv_heads": widgets.Dropdown(
            options=divisors(n_heads), value=n_kv_heads, description="KV heads (n_g)",
            style=style, layout=layout,
        ),
        "kv_lora_rank": slider(kv_lora_rank, 32, 2048, 32, "latent (d_c)"),
        "qk_rope_head_dim": slider(qk_rope_head_dim, 16, 256, 16, "RoPE dim (d_h^R)"),
        "context_tokens": widgets.SelectionSlider(
            options=[(f"{c // 1024}K", c) for c in CONTEXT_OPTIONS], value=context_tokens,
            description="context", style=style, layout=layout, continuous_update=False,
        ),
        "batch": slider(batch, 1, 64, 1, "batch"),
        "dtype": widgets.Dropdown(
            options=list(DTYPES), value=dtype, description="dtype", style=style, layout=layout
        ),
    }  # fmt: skip
    kv = controls["n_kv_heads"]

    def follow_heads(change) -> None:  # registered before the redraw, so it runs first
        allowed = divisors(change["new"])
        keep = max(d for d in allowed if d <= kv.value)
        kv.options = allowed
        kv.value = keep

    controls["n_heads"].observe(follow_heads, names="value")

    def draw(**params) -> dict:
        return {"summary": calculator_summary(**params), **calculator_figures(**params)}

    names = list(controls)
    return live_view(draw, controls, columns=[names[:5], names[5:]])
