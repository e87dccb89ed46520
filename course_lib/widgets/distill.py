"""Interactive views for notebook 03 (distillation), composed from :mod:`course_lib.plots.distill`.

Each returns a :class:`course_lib.widgets.base.Dashboard`, which carries its own static figure
for exported HTML (no kernel), so the notebook shows it once.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from course_lib.plots import distill as plots


def _position_label(context: Sequence[str], pos: int) -> str:
    before = "".join(context[: pos + 1])
    return before[-40:]


def soft_target_viewer(
    teacher_logits: torch.Tensor,
    student_logits: torch.Tensor,
    context: Sequence[str],
    vocab: Sequence[str],
    position: int | None = None,
    temperature: float = 1.0,
    top_k: int = 12,
):
    """Teacher vs student next-token distributions with a position slider and a temperature slider.

    ``teacher_logits`` and ``student_logits`` are ``(T, V)``: the logits after each of the ``T``
    tokens in ``context`` (the token strings); ``vocab[i]`` names token ``i``. Moving the temperature
    up shows the "dark knowledge" -- the teacher's ranking of the wrong tokens -- that logit
    distillation passes on and sequence-level distillation (R1's recipe) does not.
    """
    import ipywidgets as W

    from course_lib.widgets.base import live_view

    teacher_logits = torch.as_tensor(teacher_logits)
    student_logits = torch.as_tensor(student_logits)
    if teacher_logits.shape != student_logits.shape or teacher_logits.ndim != 2:
        raise ValueError(
            f"teacher {tuple(teacher_logits.shape)} and student {tuple(student_logits.shape)} "
            "logits must both be (T, V) for the same text."
        )
    n = teacher_logits.shape[0]
    if len(context) != n:
        raise ValueError(f"context has {len(context)} tokens but the logits cover {n} positions.")
    start = n - 1 if position is None else position
    if not 0 <= start < n:
        raise ValueError(f"position must be in [0, {n - 1}], got {position}.")

    pos_w = W.IntSlider(
        value=start, min=0, max=n - 1, description="position", continuous_update=False
    )
    temp_w = W.FloatLogSlider(
        value=temperature,
        base=10,
        min=-0.7,
        max=1.0,
        step=0.05,
        description="T",
        continuous_update=False,
        readout_format=".2f",
    )

    def draw(position: int, temperature: float) -> list:
        title = f"after …{_position_label(context, position)!r}"
        return [
            plots.next_token_distributions(
                teacher_logits[position], student_logits[position], vocab, temperature, top_k, title
            )
        ]

    return live_view(
        draw, {"position": pos_w, "temperature": temp_w}, columns=[["position"], ["temperature"]]
    )
