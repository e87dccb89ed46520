"""Figures for notebook 02 "Multi-head Latent Attention": KV-cache sizes, score heatmaps, decode time,
and training curves of TinySeek with MLA vs MHA.

Pure builders: numbers in (from ``course_lib.architectures``, ``course_lib.mla`` or a training history), a
plotly ``go.Figure`` out. They never compute sizes or train, never call ``.show()``, read no files.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

_PALETTE = ("#4C78A8", "#F58518", "#54A24B", "#E45756", "#72B7B2", "#B279A2", "#9D755D")
# One colour per mechanism, so a learner can follow MLA across figures.
MECHANISM_COLOURS = {"MHA": _PALETTE[0], "GQA": _PALETTE[4], "MQA": _PALETTE[5], "MLA": _PALETTE[1]}


def human_bytes(n: float) -> str:
    """Bytes in decimal units, like the papers and GPU vendors: ``1536 -> '1.54 KB'``."""
    if n < 0:
        raise ValueError(f"bytes must be >= 0, got {n}.")
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n >= size:
            return f"{n / size:,.3g} {unit}"
    return f"{n:,.0f} B"


def _colour(name: str, i: int) -> str:
    for key, colour in MECHANISM_COLOURS.items():
        if key in name:
            return colour
    return _PALETTE[i % len(_PALETTE)]


def kv_bytes_figure(
    sizes: Mapping[str, float], title: str = "KV cache", log: bool = False, height: int = 380
) -> go.Figure:
    """Horizontal bars, one per mechanism or model: ``sizes[name]`` in bytes, labelled readably."""
    if not sizes:
        raise ValueError("kv_bytes_figure: pass {name: bytes}, e.g. from sizing.kv_cache_bytes.")
    names = list(sizes)
    values = [float(sizes[n]) for n in names]
    if any(v < 0 for v in values):
        raise ValueError("kv_bytes_figure: byte counts must be >= 0.")
    fig = go.Figure(
        go.Bar(
            y=names,
            x=values,
            orientation="h",
            text=[human_bytes(v) for v in values],
            textposition="auto",
            marker_color=[_colour(n, i) for i, n in enumerate(names)],
        )
    )
    fig.update_layout(
        title=title,
        xaxis_title="bytes" + (" (log scale)" if log else ""),
        xaxis_type="log" if log else "linear",
        yaxis_autorange="reversed",
        height=height,
        margin=dict(l=10, r=10, t=50, b=40),
    )
    return fig


def measured_vs_formula_figure(
    measured: Mapping[str, float], formula: Mapping[str, float], title: str = ""
) -> go.Figure:
    """Grouped bars: bytes measured from cache tensors next to the sizing formula, per variant."""
    if not measured or set(measured) != set(formula):
        raise ValueError("measured and formula need the same, non-empty set of variant names.")
    names = list(measured)
    fig = go.Figure()
    for label, src, colour in (
        ("measured (cache tensors)", measured, _PALETTE[0]),
        ("formula (sizing)", formula, _PALETTE[1]),
    ):
        fig.add_bar(
            x=names,
            y=[src[n] for n in names],
            name=label,
            marker_color=colour,
            text=[human_bytes(src[n]) for n in names],
            textposition="auto",
        )
    fig.update_layout(
        barmode="group",
        title=title or "KV cache: measured bytes vs the formula",
        yaxis_title="bytes",
        height=380,
        legend_orientation="h",
    )
    return fig


def score_heatmaps(
    matrices: Mapping[str, Sequence[Sequence[float]]], title: str = "", zmid: float | None = None
) -> go.Figure:
    """Side-by-side heatmaps (one per name) of (query x key) matrices, sharing one colour scale;
    with ``zmid`` the scale is centred there (white = ``zmid`` on the diverging scale)."""
    if not matrices:
        raise ValueError("score_heatmaps: pass {name: 2-D array}.")
    names = list(matrices)
    fig = make_subplots(rows=1, cols=len(names), subplot_titles=names, horizontal_spacing=0.06)
    flat = [float(v) for m in matrices.values() for row in m for v in row]
    lo, hi = min(flat), max(flat)
    if zmid is not None:  # plotly ignores zmid once zmin/zmax are set: centre the range by hand
        half = max(abs(lo - zmid), abs(hi - zmid))
        lo, hi = zmid - half, zmid + half
    for j, name in enumerate(names, start=1):
        fig.add_trace(
            go.Heatmap(
                z=[list(map(float, row)) for row in matrices[name]],
                zmin=lo,
                zmax=hi,
                colorscale="RdBu_r",
                showscale=j == len(names),
            ),
            row=1,
            col=j,
        )
        fig.update_xaxes(title_text="key position", row=1, col=j)
        fig.update_yaxes(autorange="reversed", row=1, col=j)
    fig.update_yaxes(title_text="query position", row=1, col=1)
    fig.update_layout(title=title, height=340, margin=dict(l=10, r=10, t=70, b=40))
    return fig


def decode_time_figure(
    contexts: Sequence[int], seconds: Mapping[str, Sequence[float]], title: str = ""
) -> go.Figure:
    """Milliseconds per decoded token against context length, one line per decoding path."""
    if not contexts or not seconds:
        raise ValueError("decode_time_figure: pass context lengths and {path: seconds per token}.")
    fig = go.Figure()
    for i, (name, ys) in enumerate(seconds.items()):
        if len(ys) != len(contexts):
            raise ValueError(f"{name}: {len(ys)} timings for {len(contexts)} context lengths.")
        fig.add_scatter(
            x=list(contexts),
            y=[1e3 * y for y in ys],
            mode="lines+markers",
            name=name,
            line_color=_PALETTE[(3 * i) % len(_PALETTE)],
        )
    fig.update_layout(
        title=title or "Decode time per token vs context length",
        xaxis_title="context (cached tokens, log scale)",
        xaxis_type="log",
        yaxis_title="ms per token (log scale)",
        yaxis_type="log",
        height=400,
    )
    return fig


def loss_comparison_figure(
    curves: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    title: str = "Validation loss",
    ylabel: str = "validation loss (nats/token)",
) -> go.Figure:
    """One line per run: ``curves[name] = (steps, losses)``."""
    if not curves:
        raise ValueError("loss_comparison_figure: pass {run name: (steps, losses)}.")
    fig = go.Figure()
    for i, (name, (steps, losses)) in enumerate(curves.items()):
        if len(steps) != len(losses) or not steps:
            raise ValueError(f"{name}: steps and losses must be non-empty and of equal length.")
        fig.add_scatter(
            x=list(steps),
            y=list(losses),
            mode="lines+markers",
            name=name,
            line_color=_PALETTE[i % len(_PALETTE)],  # variants of one mechanism need own colours
        )
    fig.update_layout(title=title, xaxis_title="training step", yaxis_title=ylabel, height=380)
    return fig
