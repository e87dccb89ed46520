"""Figures for notebook 01 (DeepSeekMoE): routing of one token, loss curves, expert-load heatmaps
over training, max/mean load curves and domain-to-expert usage. Pure: data in, Figure out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")


def routing_bars(
    scores: Sequence[float],
    bias: Sequence[float],
    chosen: Sequence[int],
    weights: Sequence[float],
    title: str = "How one token is routed",
) -> go.Figure:
    """One token: affinity per expert, the bias added for choosing, and the gate weights given.

    chosen: the expert ids picked; weights: their gate weights (same order as chosen).
    """
    scores, bias = np.asarray(scores, float), np.asarray(bias, float)
    E = len(scores)
    names = [f"e{i}" for i in range(E)]
    gate = np.zeros(E)
    gate[list(chosen)] = np.asarray(weights, float)
    fig = make_subplots(
        rows=1, cols=2, subplot_titles=("choosing: score + bias", "weighting: gate")
    )
    fig.add_bar(x=names, y=scores, name="score (unbiased)", marker_color=PALETTE[0], row=1, col=1)
    fig.add_bar(x=names, y=bias, name="bias (choice only)", marker_color=PALETTE[4], row=1, col=1)
    border = ["black" if i in set(chosen) else "rgba(0,0,0,0)" for i in range(E)]
    fig.add_bar(x=names, y=gate, name="gate weight", marker_color=PALETTE[2],
                marker_line_color=border, marker_line_width=2, row=1, col=2)  # fmt: skip
    fig.update_layout(barmode="relative", title=title, height=330, legend_orientation="h")
    return fig


def loss_curves(
    curves: Mapping[str, tuple[Sequence[int], Sequence[float]]],
    title: str = "Validation loss",
    yaxis: str = "cross-entropy (nats/token)",
) -> go.Figure:
    """One line per run: ``{"dense": (steps, losses), "MoE": (steps, losses)}``."""
    fig = go.Figure()
    for i, (name, (x, y)) in enumerate(curves.items()):
        fig.add_scatter(x=list(x), y=list(y), mode="lines+markers", name=name,
                        line_color=PALETTE[i % len(PALETTE)])  # fmt: skip
    fig.update_layout(title=title, xaxis_title="training step", yaxis_title=yaxis, height=360)
    return fig


def _shares(loads: np.ndarray) -> np.ndarray:
    loads = np.asarray(loads, float)
    return loads / np.clip(loads.sum(axis=-1, keepdims=True), 1e-12, None)


def load_heatmaps(
    loads: Mapping[str, np.ndarray],
    steps: Sequence[int] | None = None,
    title: str = "Share of tokens per expert over training",
) -> go.Figure:
    """Side-by-side heatmaps, one per run: ``loads[name]`` is (steps, E) tokens per expert.

    Colour is the expert's share of the step's routing decisions; 1/E everywhere is perfect balance.
    """
    names = list(loads)
    fig = make_subplots(rows=1, cols=len(names), subplot_titles=names, shared_yaxes=True,
                        horizontal_spacing=0.04)  # fmt: skip
    zmax = max(float(_shares(v).max()) for v in loads.values())
    for i, name in enumerate(names):
        share = _shares(loads[name])  # (S, E)
        x = list(steps) if steps is not None else list(range(share.shape[0]))
        fig.add_heatmap(
            z=share.T, x=x, y=[f"e{e}" for e in range(share.shape[1])], zmin=0, zmax=zmax,
            colorscale="Viridis", showscale=i == len(names) - 1, colorbar_title="share",
            row=1, col=i + 1,
        )  # fmt: skip
        fig.update_xaxes(title_text="step", row=1, col=i + 1)
    fig.update_yaxes(title_text="expert", row=1, col=1)
    fig.update_layout(title=title, height=340)
    return fig


def max_over_mean_curves(
    curves: Mapping[str, tuple[Sequence[int], Sequence[float]]],
    target: float | None = 1.3,
    title: str = "Max / mean expert load (1.0 = perfect balance)",
) -> go.Figure:
    """Max-over-mean load per step for each run, with the perfect-balance line and a target."""
    fig = go.Figure()
    for i, (name, (x, y)) in enumerate(curves.items()):
        fig.add_scatter(x=list(x), y=list(y), mode="lines", name=name,
                        line_color=PALETTE[i % len(PALETTE)])  # fmt: skip
    # Labels at opposite ends and sides of their lines, so they never overlap, however close.
    fig.add_hline(y=1.0, line_dash="dot", line_color="grey", annotation_text="balanced",
                  annotation_position="bottom right")  # fmt: skip
    if target is not None:
        fig.add_hline(y=target, line_dash="dash", line_color="black",
                      annotation_text=f"target {target:g}", annotation_position="top left")  # fmt: skip
    fig.update_layout(
        title=title, xaxis_title="training step", yaxis_title="max / mean", height=360
    )
    return fig


def domain_usage_heatmaps(
    usage: Mapping[str, np.ndarray],
    domain_names: Sequence[str],
    title: str = "Which domain goes to which expert",
) -> go.Figure:
    """Side-by-side heatmaps, one per run: ``usage[name]`` is (D, E), each row sums to one."""
    names = list(usage)
    fig = make_subplots(rows=1, cols=len(names), subplot_titles=names, shared_yaxes=True,
                        horizontal_spacing=0.04)  # fmt: skip
    zmax = max(float(np.max(v)) for v in usage.values())
    for i, name in enumerate(names):
        u = np.asarray(usage[name], float)
        fig.add_heatmap(
            z=u, x=[f"e{e}" for e in range(u.shape[1])], y=list(domain_names), zmin=0, zmax=zmax,
            colorscale="Blues", showscale=i == len(names) - 1, colorbar_title="share",
            text=np.round(u, 2), texttemplate="%{text}", row=1, col=i + 1,
        )  # fmt: skip
        fig.update_xaxes(title_text="expert", row=1, col=i + 1)
    fig.update_layout(title=title, height=320)
    return fig


def params_bars(
    rows: Mapping[str, tuple[int, int]], title: str = "Parameters: total vs active per token"
) -> go.Figure:
    """``{"dense": (total, active), "MoE": (total, active)}`` as grouped bars."""
    names = list(rows)
    fig = go.Figure()
    fig.add_bar(x=names, y=[rows[n][0] for n in names], name="total", marker_color=PALETTE[0])
    fig.add_bar(
        x=names, y=[rows[n][1] for n in names], name="active per token", marker_color=PALETTE[2]
    )
    fig.update_layout(barmode="group", title=title, yaxis_title="parameters", height=320)
    return fig
