"""The thinking-budget experiment: cut the thinking off after N tokens, force ``</think>``, and see
how accuracy depends on N.

This is the "budget forcing" idea of s1 (Muennighoff et al. 2025, arXiv 2501.19393), simplified: no
"Wait" extension, only the cut. Both phases (thinking, then the answer after the forced
``</think>``) are batched over the problems and their samples; answers are read from ``\\boxed{}``
and checked by :func:`course_lib.math_problems.is_correct`.

One sample per problem is one draw: with 16 problems, one problem moves accuracy by 6.25 points.
So each problem is answered ``samples`` times, and :func:`budget_summary` gives a confidence
interval from a bootstrap over problems (the unit that was drawn; a problem's samples are not
independent of each other). An answer that ran out of tokens before writing ``\\boxed{}`` is
counted as *cut off*, apart from the wrong ones: the budget experiment must not score a too-short
``max_answer_tokens`` as the model's mistake.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from course_lib import validate
from course_lib.data import left_pad
from course_lib.formats import THINK_END, extract_boxed
from course_lib.r1.chat import (
    TEMPERATURE,
    TOP_P,
    _token_id,
    chat_prompt,
    math_question,
    sampling_kwargs,
)
from course_lib.r1.loader import LoadedModel
from course_lib.r1.models import generation_guard

OUTCOMES = ("correct", "wrong", "no answer", "cut off")


@dataclass(frozen=True)
class BudgetAnswer:
    """One sample of one problem, answered with the thinking cut off at ``budget`` tokens."""

    budget: int
    problem: str
    expected: str
    thinking_tokens: int
    closed_by_model: bool  # the model wrote </think> itself before the budget ran out
    answer_text: str
    predicted: str | None
    correct: bool
    sample: int = 0  # which of the problem's samples
    answer_cut_off: bool = False  # the answer ran into max_answer_tokens without an end token

    @property
    def outcome(self) -> str:
        """ "correct", "wrong" (a boxed answer that does not match), "no answer" (the model ended
        without ``\\boxed{}``) or "cut off" (it ran out of answer tokens before one)."""
        if self.correct:
            return "correct"
        if self.predicted is not None:
            return "wrong"
        return "cut off" if self.answer_cut_off else "no answer"


def answer_with_budget(
    lm: LoadedModel,
    problems: Sequence,
    budget: int,
    max_answer_tokens: int = 64,
    temperature: float = TEMPERATURE,
    top_p: float = TOP_P,
    seed: int = 0,
    samples: int = 1,
) -> list[BudgetAnswer]:
    """Let the model think for at most ``budget`` tokens, force ``</think>``, then read its answer.

    ``problems`` are objects with ``.question`` and ``.answer`` (``course_lib.math_problems``); each
    is answered ``samples`` times (sampling differs between them). Both phases are one batched
    ``generate`` each, over all problems and samples; ``budget=0`` answers without any thinking.
    """
    from course_lib.math_problems import is_correct

    budget = validate.number(
        "budget", budget, "the thinking tokens allowed, e.g. 256 (0: no thinking).", low=0,
        integer=True,
    )  # fmt: skip
    problems = list(problems)
    if not problems:
        raise ValueError(
            "answer_with_budget needs at least one problem, e.g. math_problems.math_problems(1)."
        )
    missing = [p for p in problems if not (hasattr(p, "question") and hasattr(p, "answer"))]
    if missing:
        raise ValueError(
            f"each problem needs .question and .answer (a math_problems.MathProblem), got "
            f"{missing[0]!r}."
        )
    samples = validate.number(
        "samples", samples, "how many samples per problem, e.g. 4.", low=1, integer=True
    )
    max_answer_tokens = validate.number(
        "max_answer_tokens", max_answer_tokens, "the answer's token limit, e.g. 512.", low=1,
        integer=True,
    )  # fmt: skip
    tok = lm.tokenizer
    close_id = _token_id(tok, THINK_END)
    rows = [(p, k) for p in problems for k in range(samples)]  # problem-major: p0 s0, p0 s1, ...
    prompts = [chat_prompt(tok, math_question(p.question)).text for p, _ in rows]
    prompt_rows = [
        tok(t, add_special_tokens=False, return_tensors="pt")["input_ids"][0] for t in prompts
    ]
    force = tok("\n" + THINK_END + "\n\n", add_special_tokens=False, return_tensors="pt")
    force_ids = force["input_ids"][0]

    thinking_rows: list[torch.Tensor] = [torch.zeros(0, dtype=torch.long) for _ in rows]
    closed = [False] * len(rows)
    torch.manual_seed(seed)
    if budget > 0:
        ids, mask = left_pad(prompt_rows, tok.pad_token_id)
        kw = sampling_kwargs(lm, budget, temperature, top_p)
        stops = [tok.eos_token_id] + ([close_id] if close_id is not None else [])
        kw["eos_token_id"] = stops
        with torch.no_grad(), generation_guard(f"thinking with a budget of {budget} tokens"):
            out = lm.model.generate(
                input_ids=ids.to(lm.device), attention_mask=mask.long().to(lm.device), **kw
            )
        new = out[:, ids.shape[1] :].cpu()
        for i, row in enumerate(new):
            hits = [j for j, t in enumerate(row.tolist()) if t in stops]
            cut = hits[0] if hits else len(row)
            thinking_rows[i] = row[:cut]
            closed[i] = bool(hits) and row[hits[0]].item() == close_id

    answer_rows = [torch.cat([p, t, force_ids]) for p, t in zip(prompt_rows, thinking_rows)]
    ids, mask = left_pad(answer_rows, tok.pad_token_id)
    kw = sampling_kwargs(lm, max_answer_tokens, temperature, top_p)
    with torch.no_grad(), generation_guard("writing the answers"):
        out = lm.model.generate(
            input_ids=ids.to(lm.device), attention_mask=mask.long().to(lm.device), **kw
        )
    results = []
    for i, (p, k) in enumerate(rows):
        row = out[i, ids.shape[1] :].cpu()
        ends = (row == tok.eos_token_id).nonzero()
        if len(ends):
            row = row[: int(ends[0])]
        text = tok.decode(row, skip_special_tokens=True)
        predicted = extract_boxed(text)
        results.append(
            BudgetAnswer(
                budget,
                p.question,
                p.answer,
                len(thinking_rows[i]),
                closed[i],
                text,
                predicted,
                is_correct(predicted, p.answer),
                sample=k,
                answer_cut_off=not len(ends),
            )
        )
    return results


def thinking_budget_run(
    lm: LoadedModel,
    problems: Sequence,
    budgets: Sequence[int],
    max_answer_tokens: int = 64,
    seed: int = 0,
    progress: bool = True,
    samples: int = 1,
) -> list[BudgetAnswer]:
    """``answer_with_budget`` for every budget (a progress bar over budgets); all answers, flat."""
    from tqdm.auto import tqdm

    budgets = list(budgets)
    if not budgets:
        raise ValueError("thinking_budget_run needs at least one budget, e.g. [0, 64, 256].")
    results: list[BudgetAnswer] = []
    for budget in tqdm(budgets, desc="thinking budgets", disable=not progress, leave=False):
        results += answer_with_budget(
            lm, problems, budget, max_answer_tokens, seed=seed, samples=samples
        )
    return results


def decode_steps(budgets: Sequence[int], max_answer_tokens: int) -> int:
    """The most decoding steps ``thinking_budget_run`` can take: every budget's thinking phase
    runs to its budget and every answer phase to ``max_answer_tokens`` (fewer when all sequences of
    a batch stop early). Times the seconds of one batched step, that bounds the run's time."""
    return sum(int(b) for b in budgets) + len(budgets) * int(max_answer_tokens)


def bootstrap_interval(
    per_problem: Sequence[float], level: float = 0.95, n_boot: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """A percentile-bootstrap interval for the mean of ``per_problem`` (one score per problem).

    Problems are resampled with replacement ``n_boot`` times (seeded: the same input gives the same
    interval); a problem's samples stay together, since they share its difficulty.
    """
    if not per_problem:
        raise ValueError("bootstrap_interval needs at least one problem's score.")
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, got {level}; e.g. 0.95.")
    rng = random.Random(seed)
    n = len(per_problem)
    means = sorted(sum(rng.choices(per_problem, k=n)) / n for _ in range(n_boot))
    lo = means[int((1 - level) / 2 * (n_boot - 1))]
    hi = means[int((1 + level) / 2 * (n_boot - 1))]
    return lo, hi


def budget_summary(
    results: Sequence[BudgetAnswer], level: float = 0.95, seed: int = 0
) -> list[dict]:
    """Per budget: accuracy with a bootstrap interval over problems, each outcome's share
    (:data:`OUTCOMES`: cut-off answers are counted apart, not as wrong), mean thinking tokens used,
    and how often the model closed its thinking by itself."""
    rows = []
    for budget in sorted({r.budget for r in results}):
        group = [r for r in results if r.budget == budget]
        by_problem: dict[str, list[BudgetAnswer]] = {}
        for r in group:
            by_problem.setdefault(r.problem, []).append(r)
        per_problem = [sum(a.correct for a in g) / len(g) for g in by_problem.values()]
        lo, hi = bootstrap_interval(per_problem, level, seed=seed)
        row = {
            "budget": budget,
            "n": len(group),
            "problems": len(by_problem),
            "samples": len(group) // len(by_problem),
            "accuracy": sum(r.correct for r in group) / len(group),
            "ci_low": lo,
            "ci_high": hi,
            "level": level,
            "mean_thinking_tokens": sum(r.thinking_tokens for r in group) / len(group),
            "closed_by_model": sum(r.closed_by_model for r in group) / len(group),
        }
        for outcome in OUTCOMES:
            row[outcome] = sum(r.outcome == outcome for r in group) / len(group)
        rows.append(row)
    return rows
