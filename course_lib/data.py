"""From text to tensors: packed token streams, prompt-masked SFT rows, left-padded prompts.

* Pre-training style (notebooks 01, 02): :func:`pack_examples` encodes every example as
  ``<bos>prompt<think>trace</think><answer>answer</answer><eos>``, concatenates them into one
  :class:`TokenStream` and :func:`sample_batch` cuts random windows from it (no padding, so MoE load
  statistics count real tokens only); a domain id travels with every token so routing can be
  broken down by domain.
* Supervised fine-tuning (SFT) style (notebooks 03, 04, the real model's stand-in):
  :func:`sft_rows` is the course's one builder of prompt-masked rows -- ``<bos> prompt completion
  <eos>``, right-padded, the loss on the completion only -- and :meth:`SFTRows.batches` draws
  random batches of them for :func:`course_lib.train.train`.
* Generation (every sampler): :func:`left_pad` lines prompts of different lengths up on the right,
  with a mask that is False on the padding.

Labels use ``IGNORE = -100`` where no loss is taken (PyTorch's and transformers' convention).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from course_lib.formats import format_target
from course_lib.tasks import DOMAINS, Example
from course_lib.tokenizer import CharTokenizer, default_tokenizer

IGNORE = -100


@dataclass
class Batch:
    """Inputs ``x`` (B, T), next-token targets ``y`` (B, T) and a domain id per token (B, T)."""

    x: torch.Tensor
    y: torch.Tensor
    domains: torch.Tensor | None = None


# --------------------------------------------------------------------------------------------
# Pre-training: one long stream of examples, random windows
# --------------------------------------------------------------------------------------------
@dataclass
class TokenStream:
    """Many examples as one long token stream, with the domain id of every token."""

    tokens: torch.Tensor  # (N,) long
    domains: torch.Tensor  # (N,) long, index into domain_names
    domain_names: tuple[str, ...]

    def __len__(self) -> int:
        return self.tokens.numel()


def pack_examples(
    examples: Sequence[Example],
    tokenizer: CharTokenizer | None = None,
    with_trace: bool = True,
    domain_names: Sequence[str] = DOMAINS,
) -> TokenStream:
    """Encode ``<bos>prompt target<eos>`` for every example and concatenate them."""
    tok = tokenizer or default_tokenizer()
    names = tuple(domain_names)
    ids: list[int] = []
    doms: list[int] = []
    for ex in examples:
        if ex.domain not in names:
            raise ValueError(f"domain {ex.domain!r} not in domain_names={names}; pass it there.")
        target = format_target(ex.answer, ex.trace if with_trace else None)
        seq = tok.encode(ex.prompt, add_bos=True) + tok.encode(target, add_eos=True)
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


# --------------------------------------------------------------------------------------------
# SFT: one row per (prompt, completion), loss on the completion only
# --------------------------------------------------------------------------------------------
@dataclass
class SFTRows:
    """Right-padded next-token rows: ``input_ids`` (N, L) and ``labels`` (N, L).

    ``labels[i, t]`` is the token that follows position ``t``, or ``IGNORE`` on the prompt and the
    padding, so only the completion (and its ``<eos>``) is learned.
    """

    input_ids: torch.Tensor  # (N, L) long
    labels: torch.Tensor  # (N, L) long

    def __len__(self) -> int:
        return self.input_ids.shape[0]

    def subset(self, n: int) -> SFTRows:
        """The first ``n`` rows (for data-scaling curves)."""
        if not 1 <= n <= len(self):
            raise ValueError(f"n must be between 1 and {len(self)}, got {n}.")
        return SFTRows(self.input_ids[:n], self.labels[:n])

    def batches(
        self, batch_size: int, seed: int = 0, device: torch.device | str | None = None
    ) -> Callable[[int], Batch]:
        """``batches(step) -> Batch`` of ``batch_size`` rows drawn at random (with replacement,
        from a generator seeded with ``seed``), all-padding columns dropped: the argument
        :func:`course_lib.train.train` takes."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
        gen = torch.Generator().manual_seed(seed)

        def batch(step: int) -> Batch:
            idx = torch.randint(len(self), (batch_size,), generator=gen)
            x, y = self.input_ids[idx], self.labels[idx]  # (B, L)
            width = int((y != IGNORE).nonzero()[:, 1].max()) + 1  # last column with a target
            return Batch(x[:, :width].to(device), y[:, :width].to(device))

        return batch


def sft_rows_from_ids(
    pairs: Sequence[tuple[Sequence[int], Sequence[int]]], pad_id: int, max_len: int | None = None
) -> SFTRows:
    """Rows from token ids: each pair is (prompt ids, completion ids), e.g. ``<bos> prompt`` and
    ``completion <eos>``. Works for any tokenizer (the stand-in of notebook 05 uses a BPE one).

    ``max_len`` (the model's context) bounds a row; a longer pair raises a ValueError rather than
    being silently cut.
    """
    if not pairs:
        raise ValueError("no prompt/completion pairs were given; pass at least one.")
    rows = []
    for prompt, completion in pairs:
        seq = list(prompt) + list(completion)
        if not prompt or not completion:
            raise ValueError("every pair needs a non-empty prompt (at least <bos>) and completion.")
        labels = [IGNORE] * (len(prompt) - 1) + seq[len(prompt) :]  # label t = token t + 1
        rows.append((seq[:-1], labels))
    width = max(len(x) for x, _ in rows)
    if max_len is not None and width > max_len:
        raise ValueError(
            f"the longest prompt+completion needs {width} positions but max_len={max_len}; raise "
            "the model's max_seq_len or use shorter problems."
        )
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    for i, (x, y) in enumerate(rows):
        ids[i, : len(x)] = torch.tensor(x)
        labels[i, : len(y)] = torch.tensor(y)
    return SFTRows(ids, labels)


def sft_rows(
    tokenizer: CharTokenizer,
    prompts: Sequence[str],
    completions: Sequence[str],
    max_len: int | None = None,
) -> SFTRows:
    """``<bos> + prompt`` and ``completion + <eos>`` encoded with the course's tokenizer, as rows."""
    if len(prompts) != len(completions):
        raise ValueError(
            f"got {len(prompts)} prompts but {len(completions)} completions; pair them 1:1."
        )
    pairs = [
        (tokenizer.encode(p, add_bos=True), tokenizer.encode(c, add_eos=True))
        for p, c in zip(prompts, completions)
    ]
    return sft_rows_from_ids(pairs, tokenizer.pad_id, max_len)


# --------------------------------------------------------------------------------------------
# Generation: prompts of different lengths, padded on the left
# --------------------------------------------------------------------------------------------
def left_pad(seqs: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-pad token lists into ids (B, T) and a mask (B, T), False on the padding.

    Decoder-only models generate after the last token, so every row must end at column T - 1.
    """
    T = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), T), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), T), dtype=torch.bool)
    for i, s in enumerate(seqs):
        if len(s):
            ids[i, T - len(s) :] = torch.as_tensor(s, dtype=torch.long)
            mask[i, T - len(s) :] = True
    return ids, mask
