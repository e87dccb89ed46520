"""Figures for notebook 04 (GRPO): training curves, one group's rewards and advantages, the
clipped surrogate, the KL estimator, run comparisons and sample tables.

Pure builders: data in (lists, dicts, tensors), a plotly ``go.Figure`` out. Nothing here trains.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence

import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from course_lib.grpo import group_advantages

# metric key -> (panel title, y-axis range or None)
CURVE_PANELS: dict[str, tuple[str, tuple[float, float] | None]] = {
    "reward_mean": ("reward (mean over rollouts)", None),
    "accuracy": ("accuracy (train rollouts / held-out)", (-0.02, 1.02)),
    "kl": ("KL to the reference", None),
    "clip_fraction": ("clip fraction", None),
    "length": ("completion length (tokens)", None),
    "format": ("strict format rate", (-0.02, 1.02)),
    "zero_std_fraction": ("groups with zero reward std", (-0.02, 1.02)),
    "entropy": ("entropy (nats / token)", None),
}
_COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf", "#7f7f7f"]


def _series(history: Sequence[Mapping], key: str) -> tuple[list, list]:
    xs, ys = [], []
    for row in history:
        v = row.get(key)
        if v is not None and not (isinstance(v, float) and math.isnan(v)):
            xs.append(row["step"])
            ys.append(v)
    return xs, ys


def training_curves(
    history: Sequence[Mapping],
    panels: Sequence[str] = ("reward_mean", "accuracy", "kl", "clip_fraction", "length", "format"),
    title: str = "GRPO training",
) -> go.Figure:
    """A grid of training curves from the trainer's history (one dict per step, key ``step``).

    The accuracy panel also draws ``eval_accuracy`` (held-out, greedy) where it was measured.
    """
    unknown = [p for p in panels if p not in CURVE_PANELS]
    if unknown:
        raise ValueError(f"unknown panels {unknown}; choose from {list(CURVE_PANELS)}.")
    cols = 3 if len(panels) > 4 else max(1, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=[CURVE_PANELS[p][0] for p in panels])
    for i, key in enumerate(panels):
        r, c = i // cols + 1, i % cols + 1
        xs, ys = _series(history, key)
        fig.add_trace(
            go.Scatter(
                x=xs, y=ys, mode="lines", name=key, line=dict(color=_COLORS[i % len(_COLORS)])
            ),
            row=r,
            col=c,
        )
        if key == "accuracy":
            ex, ey = _series(history, "eval_accuracy")
            fig.add_trace(
                go.Scatter(
                    x=ex,
                    y=ey,
                    mode="lines+markers",
                    name="held-out accuracy",
                    line=dict(color="black"),
                ),
                row=r,
                col=c,
            )
        rng = CURVE_PANELS[key][1]
        if rng:
            fig.update_yaxes(range=list(rng), row=r, col=c)
        fig.update_xaxes(title_text="step", row=r, col=c)
    fig.update_layout(title=title, height=300 * rows, showlegend=False, margin=dict(t=70, b=40))
    return fig


def group_view(
    completions: Sequence[str],
    rewards: Sequence[float],
    advantages: Sequence[float],
    prompt: str = "",
    max_chars: int = 60,
) -> go.Figure:
    """One group: each completion's reward and its group-relative advantage, as bars.

    Completions above the group mean get a positive advantage (pushed up), those below a negative
    one (pushed down); equal rewards would all get 0. The completion text shows on hover.
    """
    if not (len(completions) == len(rewards) == len(advantages)):
        raise ValueError("completions, rewards and advantages need one entry per completion.")
    labels = [f"#{i}" for i in range(len(completions))]
    hover = [html.escape(c[: max_chars * 3]) for c in completions]
    fig = make_subplots(rows=1, cols=2, subplot_titles=("reward", "advantage = (r − mean) / std"))
    fig.add_trace(
        go.Bar(x=labels, y=list(rewards), hovertext=hover, marker_color="#1f77b4", name="reward"),
        1,
        1,
    )
    mean = sum(rewards) / max(len(rewards), 1)
    fig.add_hline(
        y=mean, line_dash="dash", line_color="gray", annotation_text="group mean", row=1, col=1
    )
    colors = ["#2ca02c" if a > 0 else ("#d62728" if a < 0 else "#7f7f7f") for a in advantages]
    fig.add_trace(
        go.Bar(
            x=labels, y=list(advantages), hovertext=hover, marker_color=colors, name="advantage"
        ),
        1,
        2,
    )
    short = "<br>".join(
        f"#{i}: {html.escape(c[:max_chars])}" for i, c in enumerate(completions[:8])
    )
    fig.update_layout(
        title=f"one group for the prompt {prompt!r}" if prompt else "one group",
        showlegend=False,
        height=380 + 18 * min(len(completions), 8),
        margin=dict(b=40 + 18 * min(len(completions), 8)),
        annotations=list(fig.layout.annotations)
        + [
            dict(
                text=short,
                x=0,
                y=-0.15,
                xref="paper",
                yref="paper",
                showarrow=False,
                align="left",
                xanchor="left",
                yanchor="top",
                font=dict(family="monospace", size=11),
            )
        ],
    )
    return fig


def surrogate_plot(
    epsilon: float = 0.2, advantage: float = 1.0, ratio_max: float = 2.0
) -> go.Figure:
    """The per-token objective as a function of the ratio ρ: ``min(ρA, clip(ρ)A)`` against ``ρA``.

    Where the clipped curve is flat the gradient is zero: the policy gains nothing by moving further.
    """
    if epsilon <= 0 or epsilon >= 1:
        raise ValueError(f"epsilon must be in (0, 1), got {epsilon}; GRPO uses 0.2.")
    n = 201
    rs = [ratio_max * i / (n - 1) for i in range(n)]
    clipped = [min(r * advantage, min(max(r, 1 - epsilon), 1 + epsilon) * advantage) for r in rs]
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=rs,
            y=[r * advantage for r in rs],
            name="ρ·A (no clip)",
            line=dict(dash="dot", color="gray"),
        )
    )
    fig.add_trace(
        go.Scatter(
            x=rs, y=clipped, name="min(ρA, clip(ρ,1−ε,1+ε)A)", line=dict(color="#d62728", width=3)
        )
    )
    for x in (1 - epsilon, 1 + epsilon):
        fig.add_vline(x=x, line_dash="dash", line_color="#999")
    fig.update_layout(
        title=f"clipped surrogate, A = {advantage:+.2f}, ε = {epsilon:.2f}",
        xaxis_title="ratio ρ = π_θ / π_old",
        yaxis_title="objective per token",
        height=380,
    )
    return fig


def kl_estimator_plot(ratio_max: float = 4.0) -> go.Figure:
    """k3 = x − log x − 1 with x = π_ref/π_θ, next to the naive −log x (k1), which can go negative."""
    n = 200
    xs = [0.05 + (ratio_max - 0.05) * i / (n - 1) for i in range(n)]
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=xs,
            y=[x - math.log(x) - 1 for x in xs],
            name="k3 = x − log x − 1 (GRPO)",
            line=dict(width=3),
        )
    )
    fig.add_trace(
        go.Scatter(x=xs, y=[-math.log(x) for x in xs], name="k1 = −log x", line=dict(dash="dot"))
    )
    fig.add_hline(y=0, line_color="#999")
    fig.update_layout(
        title="per-token KL estimators",
        xaxis_title="x = π_ref / π_θ for the sampled token",
        yaxis_title="estimate",
        height=360,
    )
    return fig


def compare_runs(
    histories: Mapping[str, Sequence[Mapping]],
    metrics: Sequence[str] = ("eval_accuracy", "kl"),
    title: str = "",
) -> go.Figure:
    """Curves of several runs side by side (one panel per metric, one colour per run)."""
    if not histories:
        raise ValueError("pass at least one run: {'name': trainer.history}.")
    names = {
        **{k: v[0] for k, v in CURVE_PANELS.items()},
        "eval_accuracy": "held-out accuracy",
        "eval_format": "held-out strict format",
    }
    names.update(
        {
            "naive_format": "naive format reward",
            "reward_mean": "reward (what the policy is paid)",
            "reward/language": "language consistency (train rollouts)",
            "accuracy": "accuracy (train rollouts)",  # no held-out curve here, unlike training_curves
        }
    )
    fig = make_subplots(
        rows=1, cols=len(metrics), subplot_titles=[names.get(m, m) for m in metrics]
    )
    for j, (run, hist) in enumerate(histories.items()):
        for i, m in enumerate(metrics):
            xs, ys = _series(hist, m)
            fig.add_trace(
                go.Scatter(
                    x=xs,
                    y=ys,
                    mode="lines",
                    name=run,
                    legendgroup=run,
                    showlegend=i == 0,
                    line=dict(color=_COLORS[j % len(_COLORS)]),
                ),
                row=1,
                col=i + 1,
            )
            fig.update_xaxes(title_text="step", row=1, col=i + 1)
    # the legend below the panels, so three panels get the full width and their titles stay apart
    fig.update_layout(
        title=title, height=400, legend=dict(orientation="h", yanchor="top", y=-0.3, x=0)
    )
    return fig


def samples_table(samples: Sequence[Mapping], max_chars: int = 70) -> go.Figure:
    """A table of sample completions over training: step, prompt, completion, reward."""
    cols = ("step", "prompt", "completion", "reward")
    values = [
        [str(s.get(c, ""))[:max_chars] if c != "reward" else f"{s.get(c, 0):.2f}" for s in samples]
        for c in cols
    ]
    fig = go.Figure(
        go.Table(
            columnwidth=[40, 70, 330, 50],
            header=dict(values=list(cols), fill_color="#eee", align="left"),
            cells=dict(values=values, align="left", font=dict(family="monospace", size=11)),
        )
    )
    fig.update_layout(height=min(120 + 26 * len(samples), 700), margin=dict(t=20, b=10, l=10, r=10))
    return fig


def advantage_bars(rewards: Sequence[float], scale: bool = True) -> go.Figure:
    """Rewards of one group and the advantages GRPO (``scale``) or Dr. GRPO (no std) gives them."""
    if len(rewards) < 2:
        raise ValueError("a group needs at least 2 rewards.")
    adv = group_advantages(
        torch.tensor(list(rewards), dtype=torch.float64), len(rewards), scale=scale
    ).tolist()
    labels = [f"#{i}" for i in range(len(rewards))]
    colors = ["#2ca02c" if a > 0 else ("#d62728" if a < 0 else "#7f7f7f") for a in adv]
    fig = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=("rewards", "advantages" + (" (÷ std)" if scale else " (no std: Dr. GRPO)")),
    )
    fig.add_trace(go.Bar(x=labels, y=list(rewards), marker_color="#1f77b4"), 1, 1)
    fig.add_trace(go.Bar(x=labels, y=adv, marker_color=colors), 1, 2)
    right = sum(r > 0 for r in rewards)
    fig.update_layout(
        title=f"A group of G = {len(rewards)} answers, {right} rewarded, and the advantage of each",
        showlegend=False,
        height=320,
    )
    return fig
