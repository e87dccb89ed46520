"""Figures for notebook 03 (distillation): soft targets, student accuracies, data scaling, losses.

Pure builders: numbers in, a plotly ``go.Figure`` out. Nothing here trains a model or shows a figure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import plotly.graph_objects as go
import torch

TEACHER_COLOUR = "#1f4e79"
STUDENT_COLOUR = "#e07b00"
PALETTE = ["#7f7f7f", "#2ca02c", "#1f77b4", "#d62728", "#9467bd", "#8c564b"]


def _softmax(logits, temperature: float) -> torch.Tensor:
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}; try 1.0 or 2.0.")
    z = torch.as_tensor(logits, dtype=torch.float64)
    if z.ndim != 1:
        raise ValueError(f"pass one position's logits, shape (V,); got shape {tuple(z.shape)}.")
    return torch.softmax(z / temperature, dim=-1)


def _show_token(tok: str) -> str:
    return {" ": "␣", "\n": "⏎"}.get(tok, tok)


def next_token_distributions(
    teacher_logits,
    student_logits,
    vocab: Sequence[str],
    temperature: float = 1.0,
    top_k: int = 12,
    title: str | None = None,
) -> go.Figure:
    """Teacher vs student next-token probabilities at one position, both softened by ``temperature``.

    ``teacher_logits`` and ``student_logits`` have shape ``(V,)``; ``vocab[i]`` names token ``i``.
    The ``top_k`` tokens the teacher finds likeliest are shown, and the KL between the softened
    distributions is in the title -- the quantity logit distillation makes small.
    """
    p = _softmax(teacher_logits, temperature)
    q = _softmax(student_logits, temperature)
    if p.shape != q.shape or len(vocab) != p.shape[0]:
        raise ValueError(
            f"teacher ({p.shape[0]}), student ({q.shape[0]}) and vocab ({len(vocab)}) sizes differ; "
            "use the same tokenizer for all three."
        )
    k = max(1, min(top_k, p.shape[0]))
    order = torch.argsort(p, descending=True)[:k].tolist()
    names = [_show_token(vocab[i]) for i in order]
    kl = float((p * (p.log() - q.log())).sum())
    entropy = float(-(p * p.log()).sum())
    fig = go.Figure(
        [
            go.Bar(
                name="teacher", x=names, y=[float(p[i]) for i in order], marker_color=TEACHER_COLOUR
            ),
            go.Bar(
                name="student", x=names, y=[float(q[i]) for i in order], marker_color=STUDENT_COLOUR
            ),
        ]
    )
    head = title or "Next-token distribution"
    fig.update_layout(
        title=f"{head}<br><sup>T = {temperature:.2f} · teacher entropy {entropy:.2f} nats · "
        f"KL(teacher‖student) = {kl:.3f}</sup>",
        barmode="group",
        yaxis=dict(title="probability", range=[0, 1]),
        xaxis=dict(title=f"top {k} tokens by teacher probability", type="category"),
        template="plotly_white",
        height=380,
        legend=dict(orientation="h", y=1.02, x=1, xanchor="right", yanchor="bottom"),
    )
    return fig


def accuracy_bars(
    results: Mapping[str, Mapping[str, float]], title: str = "Held-out accuracy of the students"
) -> go.Figure:
    """Grouped bars: ``results[student][eval_set] = accuracy`` in [0, 1], one colour per eval set."""
    if not results:
        raise ValueError("results is empty; pass {student name: {eval set: accuracy}}.")
    students = list(results)
    sets: list[str] = []
    for accs in results.values():
        sets += [s for s in accs if s not in sets]
    bars = []
    for j, s in enumerate(sets):
        ys = [results[st].get(s) for st in students]
        bars.append(
            go.Bar(
                name=s,
                x=students,
                y=[None if y is None else 100 * y for y in ys],
                text=["" if y is None else f"{100 * y:.0f}%" for y in ys],
                textposition="outside",
                marker_color=PALETTE[(j + 2) % len(PALETTE)],
            )
        )
    fig = go.Figure(bars)
    fig.update_layout(
        title=title,
        barmode="group",
        yaxis=dict(title="accuracy (%)", range=[0, 105]),
        template="plotly_white",
        height=400,
        legend=dict(orientation="h", y=1.02, x=1, xanchor="right", yanchor="bottom"),
    )
    return fig


def data_scaling(
    sizes: Sequence[int],
    curves: Mapping[str, Sequence[float]],
    title: str = "Student accuracy vs number of distilled traces",
    baselines: Mapping[str, float] | None = None,
) -> go.Figure:
    """Accuracy (in [0, 1]) against training-set size, one line per student kind; log x axis.

    ``baselines`` (name -> accuracy) are dotted horizontal lines named in the legend, not labelled
    on the plot, where their text would sit on the curves' point labels.
    """
    if not sizes:
        raise ValueError("sizes is empty; pass the dataset sizes you trained on.")
    fig = go.Figure()
    for j, (name, accs) in enumerate(curves.items()):
        if len(accs) != len(sizes):
            raise ValueError(
                f"curve {name!r} has {len(accs)} points but there are {len(sizes)} sizes."
            )
        fig.add_trace(
            go.Scatter(
                x=list(sizes),
                y=[100 * a for a in accs],
                mode="lines+markers+text",
                name=name,
                text=[f"{100 * a:.0f}%" for a in accs],
                textposition="top center",
                line=dict(color=PALETTE[(j + 1) % len(PALETTE)], width=3),
            )
        )
    for k, (name, acc) in enumerate((baselines or {}).items()):
        fig.add_scatter(
            x=[min(sizes), max(sizes)], y=[100 * acc] * 2, mode="lines", name=name,
            line=dict(color="#777", dash=("dot", "dash", "dashdot")[k % 3], width=2),
        )  # fmt: skip
    fig.update_layout(
        title=title,
        xaxis=dict(title="training examples (log scale)", type="log", tickvals=list(sizes)),
        yaxis=dict(title="held-out accuracy (%)", range=[0, 105]),
        template="plotly_white",
        height=380,
    )
    return fig


def loss_curves(
    logs: Mapping[str, Sequence[float]], smooth: int = 10, title: str = "Training loss"
) -> go.Figure:
    """Training-loss curves (a moving average over ``smooth`` steps), one per run; log y axis."""
    if smooth < 1:
        raise ValueError(f"smooth must be >= 1, got {smooth}.")
    fig = go.Figure()
    for j, (name, losses) in enumerate(logs.items()):
        vals = list(losses)
        avg = [
            sum(vals[max(0, i - smooth + 1) : i + 1]) / (i + 1 - max(0, i - smooth + 1))
            for i in range(len(vals))
        ]
        fig.add_trace(
            go.Scatter(
                y=avg,
                x=list(range(1, len(avg) + 1)),
                mode="lines",
                name=name,
                line=dict(color=PALETTE[j % len(PALETTE)]),
            )
        )
    fig.update_layout(
        title=title,
        xaxis_title="step",
        yaxis=dict(title="loss (moving average)", type="log", dtick="D2"),  # 1, 2, 5: no crowding
        template="plotly_white",
        height=360,
    )
    return fig


def filter_counts(counts: Mapping[str, int], title: str = "Rejection sampling") -> go.Figure:
    """One bar per verdict (kept, wrong answer, bad format, ...) with counts and shares."""
    total = sum(counts.values())
    if total == 0:
        raise ValueError("counts are all zero; filter some completions first.")
    names = list(counts)
    colours = ["#2ca02c" if n == "kept" else "#d62728" for n in names]
    fig = go.Figure(
        go.Bar(
            x=names,
            y=[counts[n] for n in names],
            text=[f"{counts[n]} ({counts[n] / total:.0%})" for n in names],
            textposition="outside",
            marker_color=colours,
        )
    )
    fig.update_layout(
        title=f"{title}: {counts.get('kept', 0)} of {total} teacher traces kept",
        yaxis_title="completions",
        template="plotly_white",
        height=340,
    )
    return fig


def examples_table(
    rows: Sequence[Sequence[str]],
    header: Sequence[str] = ("prompt", "completion", "reference", "verdict"),
    title: str = "",
) -> go.Figure:
    """A plain table of text rows (e.g. teacher completions and the filter's verdicts)."""
    if not rows:
        raise ValueError("rows is empty; pass at least one row of strings.")
    if any(len(r) != len(header) for r in rows):
        raise ValueError(f"every row needs {len(header)} cells, one per header {list(header)}.")
    columns = [[str(r[j]) for r in rows] for j in range(len(header))]
    fill = [["#e8f5e9" if str(r[-1]).startswith("kept") else "#fdecea" for r in rows]] * len(header)
    widths = [1] * len(header)
    if "completion" in header:
        widths[list(header).index("completion")] = 4
    fig = go.Figure(
        go.Table(
            columnwidth=widths,
            header=dict(values=[f"<b>{h}</b>" for h in header], align="left", height=30),
            cells=dict(
                values=columns,
                align="left",
                fill_color=fill,
                font=dict(family="monospace"),
                height=28,
            ),  # fmt: skip
        )
    )
    fig.update_layout(
        title=title or None,
        # every row in view (no inner scrollbar): margins + header + rows, each row 28 px plus
        # its 2 px of lines, a few pixels spare
        height=(40 if title else 10) + 10 + 32 + 30 * len(rows) + 8,
        margin=dict(l=10, r=10, t=40 if title else 10, b=10),
    )
    return fig
