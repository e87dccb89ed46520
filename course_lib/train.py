"""One small training loop for TinySeek, with data helpers, a metric history and a live-plot hook.

* ``pack_examples`` / ``sample_batch``: language-model pre-training style. Examples are encoded as
  ``<bos>prompt<think>trace</think><answer>answer</answer><eos>``, concatenated into one stream
  and cut into random windows (no padding, so MoE load statistics count real tokens only); a
  domain id travels with every token so routing can be broken down by domain.
* ``sft_batch``: supervised fine-tuning style, one example per row, right-padded, loss on the
  completion only (prompt and padding get the ignore index -100).
* ``train``: AdamW, linear warm-up then cosine decay, gradient clipping, a tqdm bar, a
  :class:`History` of metrics, an optional evaluation and a ``hook(history)`` called every few
  steps (e.g. to redraw a plot). The loss is cross-entropy plus the model's ``aux_loss`` (MoE
  balance loss) when it has one; ``model.after_optimizer_step()`` runs after every update (the
  auxiliary-loss-free bias update of [V3] §2.1.2 happens there).

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

from course_lib.formats import format_target
from course_lib.tasks import DOMAINS, Example
from course_lib.tokenizer import CharTokenizer, default_tokenizer

IGNORE = -100


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------
@dataclass
class Batch:
    """Inputs ``x`` (B, T), next-token targets ``y`` (B, T) and a domain id per token (B, T)."""

    x: torch.Tensor
    y: torch.Tensor
    domains: torch.Tensor | None = None


@dataclass
class TokenStream:
    """Many examples as one long token stream, with the domain id of every token."""

    tokens: torch.Tensor  # (N,) long
    domains: torch.Tensor  # (N,) long, index into domain_names
    domain_names: tuple[str, ...]

    def __len__(self) -> int:
        return self.tokens.numel()


def encode_example(
    ex: Example, tokenizer: CharTokenizer | None = None, with_trace: bool = True
) -> tuple[list[int], int]:
    """``<bos>prompt`` + target + ``<eos>`` as ids, and the prompt's length (bos included)."""
    tok = tokenizer or default_tokenizer()
    prompt = tok.encode(ex.prompt, add_bos=True)
    target = format_target(ex.answer, ex.trace if with_trace else None)
    return prompt + tok.encode(target, add_eos=True), len(prompt)


def pack_examples(
    examples: Sequence[Example],
    tokenizer: CharTokenizer | None = None,
    with_trace: bool = True,
    domain_names: Sequence[str] = DOMAINS,
) -> TokenStream:
    """Encode and concatenate examples into one :class:`TokenStream`."""
    names = tuple(domain_names)
    ids: list[int] = []
    doms: list[int] = []
    for ex in examples:
        if ex.domain not in names:
            raise ValueError(f"domain {ex.domain!r} not in domain_names={names}; pass it there.")
        seq, _ = encode_example(ex, tokenizer, with_trace)
        ids += seq
        doms += [names.index(ex.domain)] * len(seq)
    return TokenStream(
        torch.tensor(ids, dtype=torch.long), torch.tensor(doms, dtype=torch.long), names
    )


def sample_batch(
    stream: TokenStream, batch_size: int, seq_len: int, generator: torch.Generator | None = None
) -> Batch:
    """``batch_size`` random windows of ``seq_len`` tokens; targets are the next tokens."""
    if len(stream) <= seq_len + 1:
        raise ValueError(
            f"stream has {len(stream)} tokens; need more than seq_len + 1 = {seq_len + 1}."
        )
    starts = torch.randint(0, len(stream) - seq_len - 1, (batch_size,), generator=generator)
    offs = starts[:, None] + torch.arange(seq_len)  # (B, T)
    return Batch(stream.tokens[offs], stream.tokens[offs + 1], stream.domains[offs])


def fixed_batches(
    stream: TokenStream, n_batches: int, batch_size: int, seq_len: int, seed: int = 0
) -> list[Batch]:
    """A fixed list of batches (e.g. for validation), reproducible from ``seed``."""
    g = torch.Generator().manual_seed(seed)
    return [sample_batch(stream, batch_size, seq_len, g) for _ in range(n_batches)]


def sft_batch(
    examples: Sequence[Example],
    tokenizer: CharTokenizer | None = None,
    with_trace: bool = True,
    prompt_loss: bool = False,
) -> Batch:
    """One row per example, right-padded with ``<pad>``. Targets are -100 on padding, and on the
    prompt unless ``prompt_loss``; ``domains`` here is the key mask (True on real tokens)."""
    tok = tokenizer or default_tokenizer()
    rows = [encode_example(ex, tok, with_trace) for ex in examples]
    T = max(len(ids) for ids, _ in rows) - 1
    x = torch.full((len(rows), T), tok.pad_id, dtype=torch.long)
    y = torch.full((len(rows), T), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(rows), T), dtype=torch.bool)
    for i, (ids, n_prompt) in enumerate(rows):
        seq = torch.tensor(ids)
        x[i, : len(ids) - 1] = seq[:-1]
        y[i, : len(ids) - 1] = seq[1:]
        mask[i, : len(ids) - 1] = True
        if not prompt_loss:
            y[i, : n_prompt - 1] = IGNORE
    return Batch(x, y, mask)


# --------------------------------------------------------------------------------------------
# History
# --------------------------------------------------------------------------------------------
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


# --------------------------------------------------------------------------------------------
# The loop
# --------------------------------------------------------------------------------------------
def lm_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy over non-ignored targets. logits (B, T, V), targets (B, T)."""
    return F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=IGNORE
    )


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
    lr: float = 3e-3,
    weight_decay: float = 0.0,
    warmup_steps: int = 0,
    grad_clip: float | None = 1.0,
    eval_fn: Callable[[nn.Module], dict] | None = None,
    eval_every: int = 0,
    record_fn: Callable[[nn.Module, Batch], dict] | None = None,
    hook: Callable[[History], None] | None = None,
    hook_every: int = 10,
    progress: bool = True,
    desc: str = "train",
    history: History | None = None,
    loss_fn: Callable[[torch.Tensor, Batch, torch.Tensor], torch.Tensor] | None = None,
) -> History:
    """Train ``model`` for ``steps`` updates on ``batches(step) -> Batch``; returns the History.

    The loss is the next-token cross-entropy ``ce`` (plus an MoE model's balance loss), unless
    ``loss_fn(logits, batch, ce)`` returns another one to use instead of ``ce`` (e.g. the logit
    distillation mix of :func:`course_lib.distill.train_on`); ``ce`` is recorded either way.

    Every step records ``loss`` (total), ``ce``, ``aux`` and ``lr``; MoE models also record
    ``load`` (a (n_moe_layers, E) list of tokens per expert) and ``max_over_mean`` (mean over
    layers). ``record_fn(model, batch)`` may add more (it runs right after the forward pass).
    ``eval_fn(model)`` runs every ``eval_every`` steps and after the last one; its dict is merged
    into that step's row. ``hook(history)`` runs every ``hook_every`` steps and at the end.
    """
    if steps < 1:
        raise ValueError(f"steps={steps} must be >= 1.")
    history = history if history is not None else History()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    model.train()
    # At most one refresh a second: a notebook kernel is not flooded with widget messages.
    bar = tqdm(range(steps), desc=desc, disable=not progress, leave=False, mininterval=1.0)
    for step in bar:
        for group in opt.param_groups:
            group["lr"] = lr_at(step, steps, lr, warmup_steps)
        batch = batches(step)
        logits = model(batch.x)
        ce = lm_loss(logits, batch.y)
        main = ce if loss_fn is None else loss_fn(logits, batch, ce)
        aux = getattr(model, "aux_loss", None)
        loss = main + aux if isinstance(aux, torch.Tensor) else main
        row: dict = {
            "step": step,
            "loss": loss.item(),
            "ce": ce.item(),
            "lr": opt.param_groups[0]["lr"],
        }
        row["aux"] = aux.item() if isinstance(aux, torch.Tensor) else 0.0
        routing = model.routing() if hasattr(model, "routing") else []
        if routing:
            loads = torch.stack([r.counts.float() for r in routing])  # (L, E)
            row["load"] = loads.tolist()
            row["max_over_mean"] = float((loads.max(1).values / loads.mean(1)).mean())
        if record_fn is not None:
            row.update(record_fn(model, batch))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip:
            nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        opt.step()
        if hasattr(model, "after_optimizer_step"):
            model.after_optimizer_step()
        last = step == steps - 1
        if eval_fn is not None and ((eval_every and (step + 1) % eval_every == 0) or last):
            row.update(eval_fn(model))
            model.train()
        history.append(row)
        if progress:
            bar.set_postfix(loss=f"{row['loss']:.3f}", refresh=False)
        if hook is not None and ((step + 1) % hook_every == 0 or last):
            hook(history)
    return history
