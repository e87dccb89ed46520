"""The course's one training loop, and the next-token loss it minimises by default.

:func:`train` is a plain loop: draw a batch, compute the loss, step AdamW (linear warm-up, then
cosine decay; gradient clipping), record a row of metrics in a :class:`History`. What is special to
one experiment is passed in, plainly:

* ``loss_fn(model, batch) -> (loss, metrics)``: the default :func:`next_token_loss` is
  cross-entropy plus TinySeek's MoE balance loss; distillation passes its KD mix
  (:func:`course_lib.distill.train_on`), the MoE lab adds routing statistics;
* ``eval_fn(model) -> metrics``, every ``eval_every`` steps and after the last one;
* ``after_step(model)`` after every optimizer step: the auxiliary-loss-free bias update of
  [V3] §2.1.2 (``model.after_optimizer_step``) goes there.

Simplified: single device, float32, no gradient accumulation or checkpointing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from course_lib import validate
from course_lib.data import IGNORE, Batch


@dataclass
class History:
    """One dict of metrics per recorded step; ``series("loss")`` gives (steps, values)."""

    rows: list[dict] = field(default_factory=list)

    def append(self, row: dict) -> None:
        self.rows.append(row)

    def series(self, key: str) -> tuple[list[int], list]:
        pairs = [(r["step"], r[key]) for r in self.rows if key in r]
        return [p[0] for p in pairs], [p[1] for p in pairs]

    def last(self, key: str, default=None):
        for r in reversed(self.rows):
            if key in r:
                return r[key]
        return default

    def __len__(self) -> int:
        return len(self.rows)


def lm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy over the labels that are not ``IGNORE``.

    ``logits (B, T, V)`` and ``labels (B, T)`` are aligned: ``labels[:, t]`` follows position t.
    """
    if logits.shape[:-1] != labels.shape:
        raise ValueError(
            f"logits {tuple(logits.shape)} and labels {tuple(labels.shape)} do not line up; "
            "labels must have the logits' shape without the vocabulary dimension."
        )
    if not (labels != IGNORE).any():
        raise ValueError(
            f"all labels are {IGNORE}: there is no target token to learn from; "
            "check the prompt/completion split and max_len."
        )
    return F.cross_entropy(
        logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=IGNORE
    )


def next_token_loss(model: nn.Module, batch: Batch) -> tuple[torch.Tensor, dict]:
    """TinySeek's training loss: cross-entropy plus its MoE balance loss (zero for a dense model)."""
    ce = lm_loss(model(batch.x), batch.y)
    aux = model.aux_loss
    return ce + aux, {"ce": ce.item(), "aux": aux.item()}


@torch.no_grad()
def evaluate_loss(model: nn.Module, batches: Sequence[Batch]) -> float:
    """Mean cross-entropy of ``model`` over fixed batches (eval mode; MoE biases untouched)."""
    was = model.training
    model.eval()
    losses = [float(lm_loss(model(b.x), b.y)) for b in batches]
    model.train(was)
    return sum(losses) / len(losses)


def lr_at(
    step: int, steps: int, lr: float, warmup_steps: int = 0, min_lr_ratio: float = 0.1
) -> float:
    """Linear warm-up to ``lr``, then cosine decay to ``min_lr_ratio * lr`` at the last step."""
    if warmup_steps and step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, steps - warmup_steps)
    return lr * (
        min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    )


def train(
    model: nn.Module,
    batches: Callable[[int], Batch],
    steps: int,
    loss_fn: Callable[[nn.Module, Batch], tuple[torch.Tensor, dict]] = next_token_loss,
    lr: float = 3e-3,
    warmup_steps: int = 0,
    grad_clip: float | None = 1.0,
    eval_fn: Callable[[nn.Module], dict] | None = None,
    eval_every: int = 0,
    after_step: Callable[[nn.Module], None] | None = None,
    desc: str = "train",
    progress: bool = True,
) -> History:
    """Train ``model`` for ``steps`` AdamW updates on ``batches(step)``; return the History.

    Each row holds ``step``, ``loss``, ``lr`` and the metrics ``loss_fn`` returns; ``eval_fn``'s
    metrics join the row of every ``eval_every``-th step and of the last one.
    """
    steps = validate.number("steps", steps, "e.g. 200.", low=1, integer=True)
    lr = validate.number("lr", lr, "e.g. 3e-3 for TinySeek (0 trains nothing).", low=0)
    warmup_steps = validate.number(
        "warmup_steps", warmup_steps, "e.g. 0 or 20.", low=0, integer=True
    )
    eval_every = validate.number(
        "eval_every", eval_every, "0 evaluates at the end only.", low=0, integer=True
    )
    if grad_clip is not None:
        validate.number(
            "grad_clip", grad_clip, "e.g. 1.0, or None for no clipping.", low=0, low_open=True
        )
    history = History()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    model.train()
    # At most one refresh a second: a notebook kernel is not flooded with widget messages.
    bar = tqdm(range(steps), desc=desc, disable=not progress, leave=False, mininterval=1.0)
    for step in bar:
        for group in opt.param_groups:
            group["lr"] = lr_at(step, steps, lr, warmup_steps)
        loss, metrics = loss_fn(model, batches(step))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip:
            nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        opt.step()
        if after_step is not None:
            after_step(model)
        row = {"step": step, "loss": loss.item(), "lr": opt.param_groups[0]["lr"], **metrics}
        if eval_fn is not None and (
            (eval_every and (step + 1) % eval_every == 0) or step == steps - 1
        ):
            row.update(eval_fn(model))
            model.train()
        history.append(row)
        bar.set_postfix(loss=f"{row['loss']:.3f}", refresh=False)
    return history
