"""Spending compute at test time: majority voting over samples, and a budget for the thinking.

* **Majority voting.** R1 reports ``cons@64`` next to ``pass@1``: sample 64 answers and take the
  most common one ([R1] §2.2.4 Table 2: R1-Zero's AIME 2024 pass@1 71.0%, cons@64 86.7%).
  :func:`majority_vote` is the vote, :func:`cons_at_k` the accuracy for several ``k``, with
  ``pass@1`` as ``k = 1``.
* **A thinking budget.** Stop the thinking after ``b`` tokens by writing ``</think><answer>`` for
  the model and let it answer (as notebook 05 does with a real distill, :mod:`course_lib.r1.budget`):
  :func:`budget_accuracy` is accuracy against ``b``.
* **Thinking length.** :func:`accuracy_by_length`: how often the model's own samples are right, for
  each length of their thinking (R1-Zero's answers grew longer as they got better, [R1] §2.2.4).

Simplified: R1 estimates pass@1 from 64 samples at temperature 0.6 and top-p 0.95 (§3.1); here
``k`` samples per problem, the same temperature and top-p, and every ``cons@k`` averaged over the
disjoint blocks of ``k`` samples the pool holds (lower variance than one block).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from torch import nn

from course_lib.formats import ANSWER, THINK_END, check_answer, extract_answer
from course_lib.languages import thinking_of
from course_lib.sampling import sample


def majority_vote(answers: Sequence[str | None]) -> str | None:
    """The most common answer; ``None`` (no answer could be read) never votes; a tie goes to the
    answer that was sampled first. None when no answer could be read at all.

    ``majority_vote(["12", None, "13", "13", "12"]) == "12"`` (two each; "12" came first).
    """
    counts = Counter(a for a in answers if a is not None)  # keeps first-seen order among ties
    return counts.most_common(1)[0][0] if counts else None


def cons_at_k(
    model: nn.Module,
    tokenizer,
    examples: Sequence,
    ks: Sequence[int] = (1, 2, 4, 8, 16),
    max_new_tokens: int = 40,
    temperature: float = 0.6,
    top_p: float = 0.95,
    seed: int = 0,
) -> dict[int, float]:
    """Majority-vote accuracy ``cons@k`` for every ``k`` in ``ks`` from one pool of ``max(ks)``
    samples per problem: each ``k`` votes in every disjoint block of ``k`` samples, and the
    accuracy is averaged over blocks and problems (``k = 1`` is pass@1)."""
    if not examples or not ks or min(ks) < 1:
        raise ValueError("pass at least one example and ks of positive sample counts, e.g. (1, 4).")
    pool = max(ks)
    if any(pool % k for k in ks):
        raise ValueError(f"every k must divide the largest ({pool}), got ks={tuple(ks)}.")
    texts = sample(
        model, tokenizer, [e.prompt for e in examples], pool, max_new_tokens, temperature, top_p,
        seed=seed,
    ).texts  # fmt: skip
    answers = [extract_answer(t) for t in texts]  # (P * pool,), pool consecutive per problem
    out = {}
    for k in sorted(ks):
        right = 0
        for i, ex in enumerate(examples):
            mine = answers[i * pool : (i + 1) * pool]
            votes = [majority_vote(mine[j : j + k]) for j in range(0, pool, k)]
            right += sum(v == str(ex.answer).strip() for v in votes) / len(votes)
        out[k] = right / len(examples)
    return out


def budget_accuracy(
    model: nn.Module,
    tokenizer,
    examples: Sequence,
    budgets: Sequence[int],
    answer_tokens: int = 12,
    temperature: float = 0.6,
    top_p: float = 0.95,
    seed: int = 0,
) -> dict[int, float]:
    """Accuracy when the thinking may use at most ``b`` tokens, for every ``b`` in ``budgets``.

    The model writes up to ``1 + b`` tokens (its ``<think>`` and ``b`` more); a thinking that has
    not closed by then is cut, ``</think><answer>`` is written for it, and the model completes the
    answer in at most ``answer_tokens`` tokens. A thinking that closed in time continues as usual.
    """
    if not examples or not budgets or min(budgets) < 0:
        raise ValueError("pass at least one example and budgets of non-negative token counts.")
    prompts = [e.prompt for e in examples]
    out = {}
    for b in budgets:
        head = sample(model, tokenizer, prompts, 1, 1 + b, temperature, top_p, seed=seed)
        done = [not cut for cut in head.truncated.tolist()]  # wrote <eos> within the budget
        # Cut where the thinking did not close; a closed one goes on from where it stopped.
        forced = [
            t if ok or THINK_END in t else t + THINK_END + ANSWER for t, ok in zip(head.texts, done)
        ]
        todo = [i for i, ok in enumerate(done) if not ok]
        finals = list(forced)
        if todo:
            tail = sample(
                model, tokenizer, [prompts[i] + forced[i] for i in todo], 1, answer_tokens,
                temperature, top_p, seed=seed + 1,
            ).texts  # fmt: skip
            for i, t in zip(todo, tail):
                finals[i] = forced[i] + t
        right = [check_answer(f, e.answer) for f, e in zip(finals, examples)]
        out[b] = sum(right) / len(right)
    return out


def accuracy_by_length(
    model: nn.Module,
    tokenizer,
    examples: Sequence,
    samples: int = 4,
    max_new_tokens: int = 40,
    temperature: float = 0.6,
    top_p: float = 0.95,
    seed: int = 0,
) -> dict[int, tuple[int, int]]:
    """``{thinking length in tokens: (right, samples)}`` over ``samples`` samples per problem;
    samples without a ``<think>`` block are left out."""
    if not examples or samples < 1:
        raise ValueError("pass at least one example and samples >= 1.")
    texts = sample(
        model, tokenizer, [e.prompt for e in examples], samples, max_new_tokens, temperature,
        top_p, seed=seed,
    ).texts  # fmt: skip
    counts: dict[int, list[int]] = {}
    for i, text in enumerate(texts):
        thinking = thinking_of(text)
        if thinking is None:
            continue
        right = check_answer(text, examples[i // samples].answer)
        tally = counts.setdefault(len(tokenizer.encode(thinking)), [0, 0])
        tally[0] += int(right)
        tally[1] += 1
    return {n: (r, k) for n, (r, k) in sorted(counts.items())}
