"""Figures for notebook 00 "R1 in numbers": training cost, memory, decode speed, reported scores.

Pure builders: they take numbers (usually rows from ``course_lib.sizing``) and return a plotly
``go.Figure``; they never compute sizes themselves, never call ``.show()`` and read no files.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import plotly.graph_objects as go

from course_lib.plots.text import literal

_PALETTE = ("#4C78A8", "#F58518", "#54A24B", "#E45756", "#72B7B2", "#B279A2", "#9D755D")


def _check_rows(rows: Sequence[Mapping], keys: tuple[str, ...], what: str) -> None:
    if not rows:
        raise ValueError(f"{what}: got no rows; pass e.g. sizing.{what}(...) output.")
    missing = [k for k in keys if k not in rows[0]]
    if missing:
        raise ValueError(f"{what} rows need keys {keys}; missing {missing}.")


def training_cost_figure(rows: Sequence[Mapping], price_per_gpu_hour: float) -> go.Figure:
    """Bars of cost per training stage (rows of ``sizing.training_cost_table``), total in the title."""
    _check_rows(rows, ("stage", "gpu_hours", "cost_usd"), "training_cost_table")
    stages = [r for r in rows if r["stage"] != "total"]
    total = next((r for r in rows if r["stage"] == "total"), None)
    fig = go.Figure(
        go.Bar(
            x=[r["stage"] for r in stages],
            y=[r["cost_usd"] / 1e6 for r in stages],
            text=[
                literal(f"${r['cost_usd'] / 1e6:,.3f}M<br>{r['gpu_hours']:,} GPU-h") for r in stages
            ],
            textposition="auto",
            marker_color=_PALETTE[0],
            name="cost",
        )
    )
    title = f"DeepSeek-V3 training run at ${price_per_gpu_hour:g}/GPU-hour"
    if total is not None:
        title += f": ${total['cost_usd'] / 1e6:,.3f}M for {total['gpu_hours']:,} H800 GPU-hours"
    fig.update_layout(
        title=literal(title),
        yaxis_title=literal("cost (million $)"),
        xaxis_title="stage [V3 Table 1]",
        height=380,
    )
    return fig


# A horizontal legend above the plot: below it, it would cover the slanted model names.
_LEGEND_ON_TOP = dict(orientation="h", yanchor="bottom", y=1.0, xanchor="left", x=0)


def gpu_line(fig: go.Figure, gb: float, label: str, color: str, dash: str, log: bool) -> None:
    """A horizontal line at ``gb`` with its label at the right end.

    The label is placed by hand: on a log axis plotly expects an annotation's y in log10 units,
    and ``add_hline(annotation_text=...)`` passes the raw value, which stretched the axis to
    10^203 (a label "at 192" read as 10^192).
    """
    fig.add_hline(y=gb, line_dash=dash, line_color=color)
    fig.add_annotation(
        x=1, xref="paper", xanchor="right", y=math.log10(gb) if log else gb, yref="y",
        yanchor="bottom", text=label, showarrow=False, bgcolor="rgba(255,255,255,0.7)",
    )  # fmt: skip


def memory_figure(
    rows: Sequence[Mapping],
    gpu_memory_gb: Mapping[str, float],
    title: str = "Memory of the R1 models",
) -> go.Figure:
    """Stacked bars, weights + KV cache per model (rows of ``sizing.sizing_table`` for ONE bit width),
    with a dashed line per GPU's memory. Log y axis: the sizes span four orders of magnitude."""
    _check_rows(rows, ("model", "weights_gb", "kv_gb"), "sizing_table")
    models = [r["model"] for r in rows]
    fig = go.Figure()
    fig.add_bar(
        x=models, y=[r["weights_gb"] for r in rows], name="weights", marker_color=_PALETTE[0]
    )
    fig.add_bar(x=models, y=[r["kv_gb"] for r in rows], name="KV cache", marker_color=_PALETTE[1])
    for i, (name, gb) in enumerate(gpu_memory_gb.items()):
        gpu_line(fig, gb, f"{name} {gb:g} GB", _PALETTE[(i + 2) % len(_PALETTE)], "dash", log=True)
    fig.update_layout(
        barmode="stack",
        title=title,
        yaxis_type="log",
        yaxis_title="GB (log scale)",
        height=450,
        legend=_LEGEND_ON_TOP,
    )
    return fig


def bits_figure(rows: Sequence[Mapping], gpu_memory_gb: Mapping[str, float]) -> go.Figure:
    """Grouped bars: total GB of every model at every bit width (all rows of ``sizing_table``)."""
    _check_rows(rows, ("model", "bits", "total_gb"), "sizing_table")
    fig = go.Figure()
    bit_widths = list(dict.fromkeys(r["bits"] for r in rows))
    for i, bits in enumerate(bit_widths):
        sub = [r for r in rows if r["bits"] == bits]
        fig.add_bar(
            x=[r["model"] for r in sub],
            y=[r["total_gb"] for r in sub],
            name=f"{bits:g} bits",
            marker_color=_PALETTE[i % len(_PALETTE)],
        )
    for name, gb in gpu_memory_gb.items():
        gpu_line(fig, gb, f"{name} {gb:g} GB", "grey", "dot", log=True)
    fig.update_layout(
        barmode="group",
        title="Weights + KV cache at 16, 8, 4 and ~1.58 bits per weight",
        yaxis_type="log",
        yaxis_title="GB (log scale)",
        height=450,
        legend=_LEGEND_ON_TOP,
    )
    return fig


def mixed_precision_figure(
    bars: Mapping[str, Mapping[str, float]], file_gb: float, file_label: str
) -> go.Figure:
    """Stacked bars, one per estimate: {estimate: {part: GB}} (e.g. routed experts vs the rest),
    with a dashed line at the size of the real files."""
    if not bars:
        raise ValueError("mixed_precision_figure: pass {estimate: {part: GB}}.")
    parts = list(dict.fromkeys(p for parts in bars.values() for p in parts))
    fig = go.Figure()
    for i, part in enumerate(parts):
        ys = [bars[b].get(part, 0.0) for b in bars]
        fig.add_bar(
            x=list(bars), y=ys, name=part, marker_color=_PALETTE[i % len(_PALETTE)],
            text=[f"{y:,.1f}" for y in ys], textposition="inside",
        )  # fmt: skip
    fig.add_hline(
        y=file_gb, line_dash="dash", line_color="black",
        annotation_text=f"{file_label}: {file_gb:,.1f} GB", annotation_position="top left",
    )  # fmt: skip
    fig.update_layout(
        barmode="stack",
        title="DeepSeek-R1 in 'about 1.58 bits': one bit width for all, or bits by part",
        yaxis_title="GB (1e9 bytes)",
        height=420,
        legend_orientation="h",
    )
    return fig


def roofline_figure(
    points: Mapping[str, tuple[float, float]], peak_tflops: float, bandwidth_gbs: float, gpu: str
) -> go.Figure:
    """The roofline of one GPU on log axes, attainable TFLOP/s = min(peak, bandwidth x intensity),
    with ``points`` {label: (FLOPs per byte, attained TFLOP/s)}."""
    if not points:
        raise ValueError("roofline_figure: pass {label: (intensity, tflops)}.")
    ridge = peak_tflops * 1e12 / (bandwidth_gbs * 1e9)
    xs = [v[0] for v in points.values()]
    lo, hi = min(min(xs), ridge) / 2, max(max(xs), ridge) * 6  # room for the labels
    fig = go.Figure()
    fig.add_scatter(
        x=[lo, ridge, hi], y=[bandwidth_gbs * 1e9 * lo / 1e12, peak_tflops, peak_tflops],
        mode="lines", name=f"{gpu}: min(peak, bandwidth x intensity)", line_color="grey",
    )  # fmt: skip
    # labels below and right of points under the sloped roof, below the flat roof otherwise
    where = ["bottom right" if x < ridge else "bottom center" for x in xs]
    fig.add_scatter(
        x=xs, y=[v[1] for v in points.values()], mode="markers+text", text=list(points),
        textposition=where, name="passes", marker={"size": 10, "color": _PALETTE[1]},
    )  # fmt: skip
    fig.update_layout(
        title=f"Roofline on a {gpu}: left of the ridge ({ridge:.0f} FLOPs/byte) memory sets the pace",
        xaxis={"title": "arithmetic intensity (FLOPs per byte)", "type": "log"},
        yaxis={"title": "attainable TFLOP/s", "type": "log"},
        height=420,
        showlegend=False,
    )
    return fig


def kv_cache_figure(
    contexts: Sequence[int], kv_gb: Mapping[str, Sequence[float]], title: str = "KV cache"
) -> go.Figure:
    """One line per model: KV-cache GB against context length (``kv_gb[model][i]`` at contexts[i])."""
    if not contexts:
        raise ValueError("kv_cache_figure: pass at least one context length.")
    fig = go.Figure()
    for i, (name, ys) in enumerate(kv_gb.items()):
        if len(ys) != len(contexts):
            raise ValueError(f"{name}: {len(ys)} values for {len(contexts)} context lengths.")
        fig.add_scatter(
            x=list(contexts), y=list(ys), mode="lines+markers", name=name,
            line_color=_PALETTE[i % len(_PALETTE)],
        )  # fmt: skip
    fig.update_layout(
        title=title, xaxis_title="context (tokens)", yaxis_title="KV cache (GB, bf16)", height=400
    )
    return fig


def decode_speed_figure(
    speeds: Mapping[str, float],
    gpu_name: str,
    bits: float,
    fits: Mapping[str, bool] | None = None,
) -> go.Figure:
    """Bars of the batch-1 decode upper bound (tokens/s) per model on one GPU.

    ``fits`` (model -> bool) greys out models whose weights + KV cache do not fit on that GPU.
    """
    if not speeds:
        raise ValueError("decode_speed_figure: pass {model: tokens_per_s}.")
    names = list(speeds)
    ok = [True if fits is None else bool(fits.get(n, False)) for n in names]
    fig = go.Figure(
        go.Bar(
            x=names,
            y=[speeds[n] for n in names],
            text=[
                f"{speeds[n]:,.0f}" + ("" if f else " (does not fit)") for n, f in zip(names, ok)
            ],
            textposition="auto",
            marker_color=[_PALETTE[2] if f else "#bbbbbb" for f in ok],
        )
    )
    fig.update_layout(
        title=f"Decode upper bound on {gpu_name} at {bits:g} bits (bandwidth / bytes per token)",
        yaxis_type="log",
        yaxis_title="tokens/s (log scale)",
        height=400,
    )
    return fig


def scores_figure(
    scores: Mapping[str, Mapping[str, float]], benchmarks: Sequence[str]
) -> go.Figure:
    """Grouped bars of reported scores (``published.REPORTED_SCORES``) on the chosen benchmarks."""
    if not scores or not benchmarks:
        raise ValueError("scores_figure: pass {model: {benchmark: score}} and benchmark names.")
    fig = go.Figure()
    for i, (model, s) in enumerate(scores.items()):
        missing = [b for b in benchmarks if b not in s]
        if missing:
            raise ValueError(f"{model} has no score for {missing}; pick benchmarks it reports.")
        fig.add_bar(
            x=list(benchmarks), y=[s[b] for b in benchmarks], name=model,
            text=[f"{s[b]:g}" for b in benchmarks], textposition="auto",
            marker_color=_PALETTE[i % len(_PALETTE)],
        )  # fmt: skip
    fig.update_layout(
        barmode="group", title="Reported pass@1 (%) [R1 Table 4]", yaxis_title="%", height=380
    )
    return fig
