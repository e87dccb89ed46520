"""Figures for notebook 06 (the R1 pipeline): the pipeline diagram, the stages side by side,
distillation vs RL against compute, majority voting, the thinking budget, and traces coloured by
language.

Pure builders: data in (dicts and lists of numbers), a plotly ``go.Figure`` (or an HTML string)
out. Nothing here trains.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from course_lib.formats import THINK
from course_lib.languages import thinking_of, word_script, words

_COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf"]
SCRIPT_COLORS = {"digits": "#1f77b4", "letters": "#2ca02c", "mixed": "#d62728"}

# The pipeline, R1 §2.2-§2.4: (box id, label, column, row, colour).
_BOXES = [
    ("base", "base model<br>(careful + careless,<br>mixed languages)", 0, 1, "#7f7f7f"),
    ("zero", "<b>R1-Zero</b><br>GRPO: accuracy + format", 1, 2, "#d62728"),
    ("cold", "1. cold start<br>SFT on readable CoT", 1, 0, "#1f77b4"),
    ("rl", "2. reasoning RL<br>+ language reward", 2, 0, "#1f77b4"),
    ("rs", "3a. rejection sampling<br>correct + readable", 3, 0, "#1f77b4"),
    ("sft", "3b. SFT of the base<br>+ non-reasoning data", 3, 1, "#1f77b4"),
    ("r1", "<b>R1</b><br>4. RL for all scenarios", 4, 1, "#1f77b4"),
    (
        "small",
        "a smaller dense model:<br>distilled (the same SFT)<br>vs RL from its base",
        3,
        2,
        "#2ca02c",
    ),
]
_ARROWS = [("base", "zero"), ("base", "cold"), ("cold", "rl"), ("rl", "rs"), ("rs", "sft"),
           ("base", "sft"), ("sft", "r1"), ("sft", "small")]  # fmt: skip


def pipeline_diagram() -> go.Figure:
    """R1-Zero and R1 as boxes and arrows: the path a learner follows through the notebook."""
    fig = go.Figure()
    where = {}
    for key, label, col, row, color in _BOXES:
        x, y = col * 2.2, -row * 1.3
        where[key] = (x, y)
        fig.add_shape(type="rect", x0=x - 1, x1=x + 1, y0=y - 0.5, y1=y + 0.5,
                      line=dict(color=color, width=2), fillcolor="white", layer="below")  # fmt: skip
        fig.add_annotation(x=x, y=y, text=label, showarrow=False, font=dict(size=11))
    for a, b in _ARROWS:
        (x0, y0), (x1, y1) = where[a], where[b]
        dx, dy = x1 - x0, y1 - y0
        # where the line leaves a box (half-width 1, half-height 0.5) around its centre
        t = min(1 / abs(dx) if dx else float("inf"), 0.5 / abs(dy) if dy else float("inf"))
        fig.add_annotation(x=x1 - t * dx, y=y1 - t * dy, ax=x0 + t * dx, ay=y0 + t * dy,
                           xref="x", yref="y", axref="x", ayref="y", showarrow=True, arrowhead=3,
                           arrowwidth=1.5, arrowcolor="#444", text="")  # fmt: skip
    fig.update_xaxes(visible=False, range=[-1.2, 4 * 2.2 + 1.2])
    fig.update_yaxes(visible=False, range=[-2 * 1.3 - 0.7, 0.7])
    fig.update_layout(title="R1-Zero and R1 in miniature (DeepSeek-R1 §2.2-§2.4)", height=360,
                      margin=dict(l=10, r=10, t=40, b=10), plot_bgcolor="white")  # fmt: skip
    return fig


def stage_bars(
    paths: Mapping[str, Mapping[str, Mapping[str, float]]],
    metrics: Sequence[str] = ("accuracy", "format", "language"),
) -> go.Figure:
    """One panel per path (``{"R1-Zero": {"base": {...}, "R1-Zero": {...}}, "R1": {...}}``), a group
    of bars per stage, one bar per metric (shares, 0-1); hover shows the length too."""
    if not paths:
        raise ValueError("pass at least one path: {'R1-Zero': {stage: metrics, ...}}.")
    widths = [max(1, len(stages)) for stages in paths.values()]
    fig = make_subplots(rows=1, cols=len(paths), subplot_titles=list(paths), shared_yaxes=True,
                        column_widths=[w / sum(widths) for w in widths])  # fmt: skip
    for col, stages in enumerate(paths.values(), start=1):
        names = list(stages)
        for i, m in enumerate(metrics):
            fig.add_trace(go.Bar(
                x=names, y=[stages[s].get(m) for s in names], name=m, legendgroup=m,
                showlegend=col == 1, marker_color=_COLORS[i % len(_COLORS)],
                customdata=[stages[s].get("length", float("nan")) for s in names],
                hovertemplate=f"%{{x}}<br>{m} %{{y:.0%}}<br>length %{{customdata:.1f}} tokens<extra></extra>",
            ), row=1, col=col)  # fmt: skip
    fig.update_yaxes(range=[0, 1.05], tickformat=".0%")
    fig.update_layout(barmode="group", title="stage by stage: accuracy, format, language consistency",
                      height=380, legend=dict(orientation="h", y=-0.2))  # fmt: skip
    return fig


def _lines(
    curves: Mapping[str, Mapping], title: str, x_title: str, log_x: bool = False
) -> go.Figure:
    if not curves:
        raise ValueError("pass at least one curve: {name: {x: accuracy}}.")
    fig = go.Figure()
    for i, (name, points) in enumerate(curves.items()):
        xs = sorted(points, key=float)
        fig.add_trace(go.Scatter(x=[float(x) for x in xs], y=[points[x] for x in xs], name=name,
                                 mode="lines+markers", line=dict(color=_COLORS[i % len(_COLORS)])))  # fmt: skip
    fig.update_xaxes(title=x_title, type="log" if log_x else "linear")
    fig.update_yaxes(title="accuracy", range=[0, 1.05], tickformat=".0%")
    fig.update_layout(title=title, height=360)
    return fig


def vote_curves(cons: Mapping[str, Mapping[int, float]]) -> go.Figure:
    """cons@k against k for each model (``{name: {k: accuracy}}``); k on a log axis."""
    fig = _lines(cons, "majority voting: cons@k against k (k = 1 is pass@1)", "k samples", True)
    ks = sorted({int(k) for points in cons.values() for k in points})
    fig.update_xaxes(tickvals=ks, ticktext=[str(k) for k in ks])
    return fig


def budget_curves(budget: Mapping[str, Mapping[int, float]]) -> go.Figure:
    """Accuracy against the thinking budget in tokens (``{name: {budget: accuracy}}``)."""
    return _lines(budget, "a thinking budget: accuracy when the thinking is cut after b tokens",
                  "thinking budget b (tokens)")  # fmt: skip


def compute_curves(curves: Mapping[str, Sequence[tuple[float, float]]]) -> go.Figure:
    """Accuracy against training FLOPs (``{name: [(flops, accuracy), ...]}``)."""
    return _lines({name: dict(points) for name, points in curves.items()},
                  "the small model: accuracy against training compute", "training FLOPs", True)  # fmt: skip


def accuracy_by_length(counts: Mapping[int, tuple[int, int]]) -> go.Figure:
    """Share of right answers for each thinking length, from ``{length: (right, samples)}``
    (:func:`course_lib.test_time.accuracy_by_length`), with the number of samples on each bar."""
    if not counts or any(n < 1 or not 0 <= r <= n for r, n in counts.values()):
        raise ValueError(
            "pass {thinking length: (right, samples)} with 0 <= right <= samples, samples >= 1."
        )
    xs = sorted(counts)
    fig = go.Figure(go.Bar(  # "right/samples" above each bar, so a bar of height 0 shows its count too
        x=xs, y=[counts[x][0] / counts[x][1] for x in xs], text=[f"{counts[x][0]}/{counts[x][1]}" for x in xs],
        textposition="outside", cliponaxis=False, customdata=[counts[x][1] for x in xs], marker_color=_COLORS[0],
        hovertemplate="%{x} tokens of thinking<br>accuracy %{y:.0%}<br>%{customdata} samples<extra></extra>",
    ))  # fmt: skip
    fig.update_xaxes(title="thinking length (tokens)", dtick=1)
    fig.update_yaxes(title="accuracy", range=[0, 1.12], tickformat=".0%")
    fig.update_layout(title="the base model: accuracy by thinking length (right / samples)", height=340)
    return fig


def coloured_trace(completion: str, target: str) -> str:
    """HTML of a completion with the thinking's words coloured by language: the target language
    in its script's colour, the other language in the other colour, mixed words in red and
    underlined. Everything is escaped."""
    thinking = thinking_of(completion)
    if thinking is None:
        return f"<code>{html.escape(completion)}</code>"
    start = completion.find(THINK) + len(THINK)  # thinking_of reads from the first <think>
    head, tail = completion[:start], completion[start + len(thinking) :]
    out, last = [], 0
    for w in words(thinking):
        i = thinking.index(w, last)
        out.append(html.escape(thinking[last:i]))
        script = word_script(w)
        style = f"color:{SCRIPT_COLORS[script]};font-weight:bold"
        if script != target:
            style += ";text-decoration:underline"
        out.append(f"<span style='{style}'>{html.escape(w)}</span>")
        last = i + len(w)
    out.append(html.escape(thinking[last:]))
    return f"<code>{html.escape(head)}{''.join(out)}{html.escape(tail)}</code>"


def traces_table(rows: Sequence[tuple[str, str, str]]) -> str:
    """An HTML table of (prompt, completion, target language) rows with coloured thinking."""
    cells = "".join(
        f"<tr><td><code>{html.escape(p)}</code></td><td>{t}</td><td style='text-align:left'>"
        f"{coloured_trace(c, t)}</td></tr>"
        for p, c, t in rows
    )
    legend = " ".join(
        f"<span style='color:{c};font-weight:bold'>{name}</span>"
        for name, c in SCRIPT_COLORS.items()
    )
    return (
        f"<div>words in {legend} (underlined: not the question's language)</div>"
        "<table><thead><tr><th>question</th><th>its language</th><th>completion</th></tr></thead>"
        f"<tbody>{cells}</tbody></table>"
    )


STAGE_COLUMNS = (
    ("accuracy", "accuracy", "%"),
    ("format", "format", "%"),
    ("language", "language consistency", "%"),
    ("length", "length (tokens)", "tok"),
    ("other_accuracy", "translation accuracy", "%"),
    ("helpfulness", "helpfulness stand-in", "%"),
)


def stage_table(paths: Mapping[str, Mapping[str, Mapping[str, float]]]) -> str:
    """An HTML table, one row per (path, stage), one column per metric ("-" where not measured)."""
    head = "".join(f"<th>{html.escape(title)}</th>" for _, title, _ in STAGE_COLUMNS)
    rows = []
    for path, stages in paths.items():
        for stage, numbers in stages.items():
            cells = []
            for key, _, unit in STAGE_COLUMNS:
                v = numbers.get(key)
                cells.append("-" if v is None else (f"{v:.0%}" if unit == "%" else f"{v:.1f}"))
            rows.append(
                f"<tr><td style='white-space:nowrap'>{html.escape(path)}</td><td>{html.escape(stage)}</td>"
                + "".join(f"<td>{c}</td>" for c in cells)
                + "</tr>"
            )
    return (
        f"<table><thead><tr><th>path</th><th>stage</th>{head}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )
