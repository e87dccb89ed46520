"""A base model for R1-Zero-style RL to start from: text written by careful and careless students.

R1-Zero's RL started from DeepSeek-V3-Base, which had read careful and careless text alike, so its
samples were sometimes right and sometimes well formed -- enough for rewards to tell apart
([R1] §2.2). The toy world's version: a pre-training corpus of additions solved by four kinds of
"student" (:data:`STUDENTS`), and :func:`pretrain_base`, which trains TinySeek on it. The careless
student forgets every carry, so the base model is wrong exactly on the problems that carry
(:func:`needs_carry`): the ones GRPO trains on in notebook 04.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from torch import nn

from course_lib.data import sft_rows
from course_lib.formats import ANSWER, format_target
from course_lib.tasks import Example, addition_trace
from course_lib.train import History, train


def needs_carry(prompt: str) -> bool:
    """True when the addition in ``prompt`` (e.g. ``"47+85="``) carries into a later column.

    Exactly the problems the careless student gets wrong (a carry out of the top column is
    harmless: the last column's sum is written out in full).
    """
    terms = [int(t) for t in prompt.rstrip("=").split("+")]
    return addition_trace(terms, forget_carries=True)[1] != str(sum(terms))


STUDENTS: tuple[str, ...] = ("careful", "careless", "lazy", "plain")


def student_text(ex: Example, student: str) -> str:
    """How one kind of student writes the solution to an addition problem (the text after the prompt).

    - ``careful``: ``<think>7+5=12;4+8+1=13</think><answer>132</answer>`` (the course's target);
    - ``careless``: the same format, every carry forgotten: ``…4+8=12</think><answer>122</answer>``;
    - ``lazy``: no reasoning, an answer tag and a careless guess, never closed: ``<answer>122``;
    - ``plain``: no tags at all: ``7+5=12;4+8+1=13 so 132``.
    """
    terms = [int(t) for t in ex.prompt.rstrip("=").split("+")]
    if student == "careful":
        trace, answer = addition_trace(terms)
        return format_target(answer, trace)
    trace, answer = addition_trace(terms, forget_carries=True)
    if student == "careless":
        return format_target(answer, trace)
    if student == "lazy":
        return f"{ANSWER}{answer}"
    if student == "plain":
        trace, answer = addition_trace(terms)
        return f"{trace} so {answer}"
    raise ValueError(f"student={student!r}; use one of {STUDENTS}.")


def base_corpus(
    examples: Sequence[Example], mix: dict[str, float], seed: int = 0
) -> list[tuple[str, str]]:
    """A pre-training corpus of (prompt, text) pairs written by a mix of students.

    ``mix`` gives each student's share, e.g. ``{"careful": 0.3, "careless": 0.5, "lazy": 0.1,
    "plain": 0.1}``. A model pre-trained on it imitates all of them: the base policy R1-Zero-style
    RL starts from (DeepSeek-V3-Base had read careful and careless text alike).
    Only additions (``"a+b="``) are supported.
    """
    unknown = [k for k in mix if k not in STUDENTS]
    if unknown or not mix or min(mix.values()) < 0 or sum(mix.values()) <= 0:
        raise ValueError(f"mix needs non-negative shares for students among {STUDENTS}, got {mix}.")
    if any("+" not in ex.prompt or "*" in ex.prompt for ex in examples):
        raise ValueError("base_corpus takes additions only: tasks.arithmetic(..., ops='+').")
    rng = random.Random(f"base-corpus-{seed}")
    names, weights = list(mix), list(mix.values())
    return [(ex.prompt, student_text(ex, rng.choices(names, weights)[0])) for ex in examples]


def pretrain_base(
    model: nn.Module,
    corpus: Sequence[tuple[str, str]],
    tokenizer,
    steps: int = 600,
    batch_size: int = 32,
    lr: float = 3e-3,
    seed: int = 0,
    progress: bool = True,
    desc: str = "pre-train base",
) -> History:
    """Pre-train ``model`` on the corpus: next-token loss on each student's text (not the prompt),
    with the course's SFT rows (:func:`course_lib.data.sft_rows`) and loop (:func:`course_lib.train.train`)."""
    if not corpus:
        raise ValueError("the corpus is empty; build one with base_corpus(...).")
    rows = sft_rows(tokenizer, [p for p, _ in corpus], [t for _, t in corpus])
    return train(
        model,
        rows.batches(batch_size, seed),
        steps,
        lr=lr,
        desc=desc,
        progress=progress,
    )
