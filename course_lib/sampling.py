"""Sampling from TinySeek and scoring what it writes: one batched sampler, one evaluation.

* :func:`sample`: ``n`` completions per prompt, generated in batches with TinySeek's KV cache
  (prompts of different lengths are left-padded), seeded. It returns the texts *and* the token ids
  with their masks, which GRPO needs to score the sampled tokens (:mod:`course_lib.grpo_trainer`);
  distillation's teacher uses the texts (:mod:`course_lib.distill`).
* :func:`evaluate`: accuracy and well-formed rate on a list of problems, greedy or as pass@1 over
  several samples at a temperature -- how R1 reports its results ([R1] §3: temperature 0.6, top-p
  0.95, several samples per question).

Simplified: the whole batch decodes until every row has written ``<eos>`` (no continuous batching).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn
from tqdm.auto import tqdm

from course_lib import validate
from course_lib.data import left_pad
from course_lib.formats import check_answer, is_well_formed
from course_lib.model import check_sampling


@dataclass
class Samples:
    """N = P·n sampled completions, ``n`` consecutive rows per prompt.

    ``ids`` (N, Tp + L): the left-padded prompt, then the L generated tokens (rows that stopped
    early are filled with ``<eos>``); ``key_mask`` (N, Tp + L) False on the prompt's padding;
    ``mask`` (N, L) 1 on completion tokens, up to and including the first ``<eos>``; ``truncated``
    (N,) True where no ``<eos>`` came within the budget; ``texts``: the completions decoded up to
    (not including) the first ``<eos>``, special tags kept so the format can be checked.
    """

    texts: list[str]
    ids: torch.Tensor
    key_mask: torch.Tensor
    prompt_len: int
    mask: torch.Tensor
    truncated: torch.Tensor


def completion_mask(gen: torch.Tensor, eos_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """For generated tokens (N, L): a mask up to and including the first eos, and which rows never ended."""
    is_eos = gen == eos_id
    seen_before = (is_eos.long().cumsum(dim=1) - is_eos.long()) > 0  # an eos strictly earlier
    return (~seen_before).long(), ~is_eos.any(dim=1)


@torch.no_grad()
def sample(
    model: nn.Module,
    tokenizer,
    prompts: Sequence[str],
    n: int = 1,
    max_new_tokens: int = 48,
    temperature: float = 1.0,
    top_p: float = 1.0,
    generator: torch.Generator | None = None,
    seed: int = 0,
    batch_size: int | None = 256,
    progress: bool = False,
) -> Samples:
    """Let ``model`` complete every prompt ``n`` times (temperature 0: greedy).

    Rows go through ``model.generate`` ``batch_size`` at a time (None: all at once), in order.
    Randomness comes from ``generator``, or from a new one seeded with ``seed``: the same call gives
    the same completions on the CPU.
    """
    if not prompts or isinstance(prompts, str):
        raise ValueError(
            "pass a list of prompts (at least one), e.g. [e.prompt for e in examples]."
        )
    n = validate.number("n", n, "completions per prompt, e.g. 8.", low=1, integer=True)
    max_new_tokens = validate.number(
        "max_new_tokens", max_new_tokens, "e.g. 48.", low=1, integer=True
    )
    if batch_size is not None:
        validate.number(
            "batch_size", batch_size, "e.g. 256, or None for one batch.", low=1, integer=True
        )
    check_sampling(temperature, top_p)
    device = next(model.parameters()).device
    if generator is None:
        generator = torch.Generator(device=device).manual_seed(seed)
    rows = [tokenizer.encode(p, add_bos=True) for p in prompts for _ in range(n)]
    step = batch_size or len(rows)
    chunks = []
    was_training = model.training
    model.eval()
    try:
        for start in tqdm(
            range(0, len(rows), step), desc="sampling", disable=not progress, leave=False
        ):
            idx, key_mask = left_pad(rows[start : start + step], tokenizer.pad_id)  # (b, Tp)
            idx, key_mask = idx.to(device), key_mask.to(device)
            out = model.generate(
                idx,
                max_new_tokens,
                temperature=temperature,
                top_p=top_p,
                eos_id=tokenizer.eos_id,
                generator=generator,
                key_mask=None if bool(key_mask.all()) else key_mask,
            )
            chunks.append((idx, key_mask, out[:, idx.shape[1] :]))  # ..., (b, L)
    finally:
        model.train(was_training)
    texts = []
    for _, _, gen in chunks:
        for row in gen.tolist():
            end = row.index(tokenizer.eos_id) if tokenizer.eos_id in row else len(row)
            texts.append(tokenizer.decode(row[:end]))
    # One tensor for all chunks: pad each chunk's prompts further left, its completions right.
    tp = max(idx.shape[1] for idx, _, _ in chunks)
    length = max(gen.shape[1] for _, _, gen in chunks)
    ids, key_masks, masks, truncs = [], [], [], []
    for idx, key_mask, gen in chunks:
        b, left, right = idx.shape[0], tp - idx.shape[1], length - gen.shape[1]
        mask, truncated = completion_mask(gen, tokenizer.eos_id)
        pad_left, pad_right = (
            idx.new_full((b, left), tokenizer.pad_id),
            gen.new_full((b, right), tokenizer.pad_id),
        )
        ids.append(torch.cat([pad_left, idx, gen, pad_right], dim=1))
        real = [
            torch.zeros_like(pad_left),
            key_mask,
            torch.ones_like(gen),
            torch.zeros_like(pad_right),
        ]
        key_masks.append(torch.cat([r.bool() for r in real], dim=1))
        masks.append(torch.cat([mask, mask.new_zeros(b, right)], dim=1))
        truncs.append(truncated)
    return Samples(
        texts, torch.cat(ids), torch.cat(key_masks), tp, torch.cat(masks), torch.cat(truncs)
    )


@dataclass
class EvalResult:
    """Accuracy of a model on problems, with the (first sample's) completions to look at."""

    accuracy: float  # share of completions whose answer is right
    format_rate: float  # share of well-formed completions (formats.is_well_formed)
    completions: list[str]
    correct: list[bool]
    mean_length: float = 0.0  # completion tokens per completion (with its <eos>), over all samples
    scores: dict[str, float] = field(default_factory=dict)  # each extra score's mean, all samples


def evaluate(
    model: nn.Module,
    tokenizer,
    examples: Sequence,
    max_new_tokens: int,
    temperature: float = 0.0,
    top_p: float = 1.0,
    samples: int = 1,
    seed: int = 0,
    batch_size: int = 256,
    scores: Mapping[str, Callable[[str, str, str], float]] | None = None,
) -> EvalResult:
    """Score ``model`` on ``examples`` (objects with ``.prompt`` and ``.answer``).

    ``temperature=0`` decodes greedily. With ``temperature > 0`` the accuracy is pass@1 averaged
    over ``samples`` samples per problem, sample ``k`` seeded with ``seed + k``. ``scores`` adds
    named scores ``fn(prompt, completion, answer) -> float`` (a reward function fits), each
    averaged over every sample into ``EvalResult.scores``.
    """
    if not examples:
        raise ValueError("evaluate needs at least one example, e.g. tasks.arithmetic(100, seed=3).")
    samples = validate.number("samples", samples, "1 for greedy decoding.", low=1, integer=True)
    check_sampling(temperature, top_p)
    if temperature == 0 and samples != 1:
        raise ValueError(f"samples={samples}: use 1 for greedy decoding, or >= 1 when sampling.")
    prompts = [e.prompt for e in examples]
    scores = dict(scores or {})
    first: tuple[list[str], list[bool]] | None = None
    n_right = n_format = n_tokens = 0
    sums = dict.fromkeys(scores, 0.0)
    for k in range(samples):
        out = sample(
            model, tokenizer, prompts, 1, max_new_tokens, temperature, top_p,
            seed=seed + k, batch_size=batch_size,
        )  # fmt: skip
        texts = out.texts
        correct = [check_answer(t, e.answer) for t, e in zip(texts, examples)]
        n_right += sum(correct)
        n_format += sum(is_well_formed(t) for t in texts)
        n_tokens += int(out.mask.sum())
        for name, fn in scores.items():
            sums[name] += sum(float(fn(e.prompt, t, e.answer)) for e, t in zip(examples, texts))
        first = first or (texts, correct)
    total = samples * len(examples)
    return EvalResult(
        n_right / total, n_format / total, first[0], first[1], n_tokens / total,
        {name: value / total for name, value in sums.items()},
    )  # fmt: skip
