"""Figures for notebook 05: token confidence, attention maps, the logit lens, memory, thinking budget.

Pure builders: data from ``course_lib.look_inside`` / ``course_lib.r1`` in, a plotly Figure out.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

import plotly.graph_objects as go

from course_lib.look_inside import AttentionMaps, LogitLens, TokenConfidence, hesitation_moments

_PROB_SCALE = "RdYlGn"


def show_token(token: str) -> str:
    """A token as text that survives a plot label: newlines as ⏎, tabs as →, no HTML."""
    text = token.replace("\n", "⏎").replace("\t", "→").replace("\r", "")
    text = "".join(ch if ch.isprintable() else "·" for ch in text)
    return html.escape(text) if text.strip() else (("␣" * len(text)) or "∅")


def _grid(values: Sequence, per_row: int, fill=None) -> list[list]:
    """``values`` in rows of ``per_row``; the last row padded with ``fill`` (no colour: None;
    no text: "", which plotly would otherwise print as "null")."""
    rows = []
    for start in range(0, len(values), per_row):
        row = list(values[start : start + per_row])
        rows.append(row + [fill] * (per_row - len(row)))
    return rows


def token_confidence_figure(
    conf: TokenConfidence,
    start: int = 0,
    count: int = 160,
    per_row: int = 16,
    title: str = "How sure was the model of each token it wrote?",
) -> go.Figure:
    """Tokens laid out like text, coloured by their probability; hover shows the alternatives.

    Hesitation tokens ("Wait", "Hmm", ...) get a black outline.
    """
    if per_row < 1 or count < 1:
        raise ValueError("per_row and count must be >= 1, e.g. per_row=16, count=160.")
    end = min(len(conf), start + count)
    idx = list(range(start, end))
    probs = [float(conf.probs[i]) for i in idx]
    labels = [show_token(conf.tokens[i]) for i in idx]
    hovers = []
    for i in idx:
        alts = ", ".join(
            f"{show_token(t)!s} {float(p):.2f}"
            for t, p in zip(conf.topk_tokens[i], conf.topk_probs[i])
        )
        hovers.append(
            f"#{i} <b>{show_token(conf.tokens[i])}</b> p={float(conf.probs[i]):.3f} "
            f"H={float(conf.entropy[i]):.2f} nats<br>alternatives: {alts}"
        )
    n_rows = max(1, -(-len(idx) // per_row))
    fig = go.Figure(
        go.Heatmap(
            z=_grid(probs, per_row),
            text=_grid(labels, per_row, fill=""),
            customdata=_grid(hovers, per_row, fill=""),
            texttemplate="%{text}",
            hovertemplate="%{customdata}<extra></extra>",
            colorscale=_PROB_SCALE,
            zmin=0,
            zmax=1,
            colorbar={"title": "p(token)"},
            xgap=2,
            ygap=2,
        )
    )
    for j in hesitation_moments(conf.tokens[start:end]):
        r, c = divmod(j, per_row)
        fig.add_shape(
            type="rect",
            x0=c - 0.5,
            x1=c + 0.5,
            y0=r - 0.5,
            y1=r + 0.5,
            line={"color": "black", "width": 3},
        )
    fig.update_yaxes(autorange="reversed", showticklabels=False)
    fig.update_xaxes(showticklabels=False)
    fig.update_layout(
        title=f"{title} (tokens {start}-{end - 1} of {len(conf)}; outlined: wait/hmm moments)",
        height=120 + 34 * n_rows,
        margin={"l": 10, "r": 10, "t": 60, "b": 10},
    )
    return fig


def entropy_figure(
    conf: TokenConfidence, title: str = "Uncertainty along the reasoning"
) -> go.Figure:
    """Entropy (nats) and probability of each generated token; hesitation moments marked."""
    x = list(range(len(conf)))
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=x,
            y=conf.entropy.tolist(),
            name="entropy (nats)",
            mode="lines",
            text=[show_token(t) for t in conf.tokens],
            hovertemplate="#%{x} %{text}: H=%{y:.2f}<extra></extra>",
        )
    )
    fig.add_trace(go.Scatter(x=x, y=conf.probs.tolist(), name="p(token)", mode="lines", yaxis="y2"))
    moments = hesitation_moments(conf.tokens)
    if moments:
        fig.add_trace(
            go.Scatter(
                x=moments,
                y=[float(conf.entropy[i]) for i in moments],
                mode="markers+text",
                text=[show_token(conf.tokens[i]) for i in moments],
                textposition="top center",
                marker={"size": 10, "color": "black", "symbol": "diamond"},
                name="wait / hmm",
            )
        )
    fig.update_layout(
        title=title,
        xaxis_title="generated token",
        yaxis={"title": "entropy (nats)"},
        yaxis2={
            "title": "p(token)",
            "overlaying": "y",
            "side": "right",
            "range": [0, 1],
            "tickvals": [0, 0.25, 0.5, 0.75, 1],
            "showgrid": False,  # its own ticks, not y's grid
        },
        height=380,
        # above the plot: at the right, the legend sat on the p(token) axis' tick labels
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "xanchor": "left", "x": 0},
    )
    return fig


def _labels(tokens: Sequence[str]) -> list[str]:
    # Index-prefixed so repeated tokens stay separate categories on an axis.
    return [f"{i}:{show_token(t)}" for i, t in enumerate(tokens)]


def attention_figure(maps: AttentionMaps, layer: int, head: int) -> go.Figure:
    """One head's attention: rows are the attending (query) tokens, columns the attended keys."""
    if not 0 <= layer < maps.n_layers or not 0 <= head < maps.n_heads:
        raise ValueError(
            f"layer must be in 0..{maps.n_layers - 1} and head in 0..{maps.n_heads - 1}, "
            f"got layer={layer}, head={head}."
        )
    labels = _labels(maps.tokens)
    w = maps.weights[layer, head]  # (T, T)
    fig = go.Figure(
        go.Heatmap(
            z=w.tolist(),
            x=labels,
            y=labels,
            colorscale="Blues",
            zmin=0,
            zmax=float(w.max()),
            colorbar={"title": "weight"},
            hovertemplate="query %{y}<br>key %{x}<br>weight %{z:.3f}<extra></extra>",
        )
    )
    side = max(400, min(900, 14 * len(labels)))
    fig.update_yaxes(autorange="reversed", title="query (attending token)")
    fig.update_xaxes(title="key (attended token)", tickangle=-60)
    fig.update_layout(title=f"Attention, layer {layer}, head {head}", height=side + 100)
    return fig


def attention_summary_figure(maps: AttentionMaps) -> go.Figure:
    """Per layer and head: mean entropy of the attention rows (low = sharp, high = spread out)."""
    w = maps.weights.clamp_min(1e-12)  # (L, H, T, T)
    row_entropy = -(w * w.log()).sum(-1).mean(-1)  # (L, H)
    fig = go.Figure(
        go.Heatmap(
            z=row_entropy.tolist(),
            x=[f"head {h}" for h in range(maps.n_heads)],
            y=[f"layer {layer}" for layer in range(maps.n_layers)],
            colorscale="Viridis",
            colorbar={"title": "nats"},
            hovertemplate="%{y}, %{x}: mean row entropy %{z:.2f}<extra></extra>",
        )
    )
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(title="How spread out each head's attention is", height=380)
    return fig


def logit_lens_figure(
    lens: LogitLens,
    start: int = 0,
    count: int = 24,
    value: str = "top",
) -> go.Figure:
    """Layers (rows) x positions (columns): each cell shows the layer's top next-token guess.

    ``value="top"`` colours by that guess's probability; ``"next"`` by the probability the layer
    gives the token that really came next (the last position has none and stays blank).
    """
    if value not in ("top", "next"):
        raise ValueError(f"value must be 'top' or 'next', got {value!r}.")
    T = len(lens.tokens)
    cols = list(range(start, min(T, start + count)))
    if not cols:
        raise ValueError(f"start={start} is past the {T} tokens; use start < {T}.")
    if value == "top":
        z = lens.top_probs[:, cols, 0].tolist()
    else:
        z = [[float(row[c]) if c < T - 1 else None for c in cols] for row in lens.next_prob]
    text = [[show_token(lens.top_tokens[layer][c][0]) for c in cols] for layer in range(len(z))]
    hover = [
        [
            "<br>".join(
                f"{show_token(t)} {float(p):.2f}"
                for t, p in zip(lens.top_tokens[layer][c], lens.top_probs[layer, c])
            )
            for c in cols
        ]
        for layer in range(len(z))
    ]
    x = [f"{c}:{show_token(lens.tokens[c])}" for c in cols]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=x,
            y=lens.layer_names,
            text=text,
            customdata=hover,
            texttemplate="%{text}",
            hovertemplate="%{y} at %{x}<br>%{customdata}<extra></extra>",
            colorscale="Viridis",
            zmin=0,
            zmax=1,
            colorbar={"title": "p(top guess)" if value == "top" else "p(actual next)"},
        )
    )
    fig.update_yaxes(autorange="reversed")
    fig.update_xaxes(tickangle=-60, title="input token (each column predicts the next one)")
    fig.update_layout(
        title="Logit lens: what each layer would predict if the model stopped there",
        # rows of 22 px for a real model's ~30 layers; taller when there are few (a stand-in)
        height=200 + max(22, min(60, 600 // len(lens.layer_names))) * len(lens.layer_names),
    )
    return fig


_UNITS = (("GB", 1e9, "1e9"), ("MB", 1e6, "1e6"), ("KB", 1e3, "1e3"))


def _byte_unit(largest: float) -> tuple[str, float]:
    """The largest unit the biggest value reaches one of, as (axis title, bytes per unit)."""
    for name, size, power in _UNITS:
        if largest >= size:
            return f"{name} ({power} bytes)", size
    return "bytes", 1.0


def memory_figure(measured: Mapping[str, float], predicted: Mapping[str, float]) -> go.Figure:
    """Bars: what was measured next to what the sizing calculator predicted (both in bytes).

    The unit follows the sizes (GB for a real distill, KB for the tiny stand-in), so the bars'
    numbers never read 0.00.
    """
    unit, size = _byte_unit(max([*measured.values(), *predicted.values(), 0.0]))
    fig = go.Figure()
    for name, values in (("predicted (course_lib.sizing)", predicted), ("measured", measured)):
        fig.add_trace(
            go.Bar(
                x=list(values),
                y=[v / size for v in values.values()],
                name=name,
                texttemplate="%{y:.3g}",
            )
        )
    fig.update_layout(
        title="Weight memory: predicted vs measured",
        yaxis_title=unit,
        height=380,
    )
    return fig


def budget_figure(summary: Sequence[Mapping[str, float]], title: str | None = None) -> go.Figure:
    """Accuracy vs thinking tokens actually used, one point per budget (``budget.budget_summary``),
    with its confidence interval as error bars where the rows carry ``ci_low``/``ci_high``, and the
    share of answers cut off by the token limit (counted apart from wrong ones) as a second line."""
    if not summary:
        raise ValueError("summary is empty; pass budget.budget_summary(results).")
    x = [row["mean_thinking_tokens"] for row in summary]
    y = [100 * row["accuracy"] for row in summary]
    labels = [f"budget {int(row['budget'])}" for row in summary]
    has_ci = all("ci_low" in row and "ci_high" in row for row in summary)
    error = None
    if has_ci:
        error = {
            "type": "data",
            "symmetric": False,
            "array": [100 * (row["ci_high"] - row["accuracy"]) for row in summary],
            "arrayminus": [100 * (row["accuracy"] - row["ci_low"]) for row in summary],
        }
    fig = go.Figure(
        go.Scatter(
            x=x,
            y=y,
            error_y=error,
            mode="lines+markers+text",
            text=labels,
            textposition="top center",
            name="correct",
            hovertemplate="%{text}: %{x:.0f} thinking tokens, %{y:.0f}% correct<extra></extra>",
        )
    )
    if all("cut off" in row for row in summary):
        fig.add_scatter(
            x=x,
            y=[100 * row["cut off"] for row in summary],
            mode="lines+markers",
            name="no answer: cut off by the token limit",
            line={"dash": "dot"},
        )
    n = summary[0].get("problems"), summary[0].get("samples")
    sub = f" ({n[0]} problems x {n[1]} samples" if all(n) else ""
    if sub and has_ci:
        sub += f", {100 * summary[0].get('level', 0.95):.0f}% interval over problems"
    fig.update_layout(
        title=(title or "Thinking budget: accuracy vs thinking tokens")
        + (sub + ")" if sub else ""),
        xaxis_title="mean thinking tokens used",
        yaxis={"title": "% of answers", "range": [-5, 105]},
        height=430,
        legend={"orientation": "h", "yanchor": "top", "y": -0.22, "x": 0},
        margin={"b": 110},
    )
    return fig
