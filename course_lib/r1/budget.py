"""The thinking-budget experiment: cut the thinking off after N tokens, force ``</think>``, and see
how accuracy depends on N.

This is the "budget forcing" idea of s1 (Muennighoff et al. 2025, arXiv 2501.19393), simplified: no
"Wait" extension, only the cut. Both phases (thinking, then the answer after the forced
``</think>``) are batched over the problems; answers are read from ``\\boxed{}`` and checked by
:func:`course_lib.math_problems.is_correct`.
"""

from __future__ import annotations

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
from course_lib.r1.models import oom_guard


@dataclass(frozen=True)
class BudgetAnswer:
    """One problem answered with the thinking cut off at ``budget`` tokens."""

    budget: int
    problem: str
    expected: str
    thinking_tokens: int
    closed_by_model: bool  # the model wrote </think> itself before the budget ran out
    answer_text: str
    predicted: str | None
    correct: bool


def answer_with_budget(
    lm: LoadedModel,
    problems: Sequence,
    budget: int,
    max_answer_tokens: int = 64,
    temperature: float = TEMPERATURE,
    top_p: float = TOP_P,
    seed: int = 0,
) -> list[BudgetAnswer]:
    """Let the model think for at most ``budget`` tokens, force ``</think>``, then read its answer.

    ``problems`` are objects with ``.question`` and ``.answer`` (``course_lib.math_problems``).
    Both phases are batched over the problems; ``budget=0`` answers without any thinking.
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
    tok = lm.tokenizer
    close_id = _token_id(tok, THINK_END)
    prompts = [chat_prompt(tok, math_question(p.question)).text for p in problems]
    prompt_rows = [
        tok(t, add_special_tokens=False, return_tensors="pt")["input_ids"][0] for t in prompts
    ]
    force = tok("\n" + THINK_END + "\n\n", add_special_tokens=False, return_tensors="pt")
    force_ids = force["input_ids"][0]

    thinking_rows: list[torch.Tensor] = [torch.zeros(0, dtype=torch.long) for _ in problems]
    closed = [False] * len(problems)
    torch.manual_seed(seed)
    if budget > 0:
        ids, mask = left_pad(prompt_rows, tok.pad_token_id)
        kw = sampling_kwargs(lm, budget, temperature, top_p)
        stops = [tok.eos_token_id] + ([close_id] if close_id is not None else [])
        kw["eos_token_id"] = stops
        with torch.no_grad(), oom_guard(f"thinking with a budget of {budget} tokens"):
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
    with torch.no_grad(), oom_guard("writing the answers"):
        out = lm.model.generate(
            input_ids=ids.to(lm.device), attention_mask=mask.long().to(lm.device), **kw
        )
    results = []
    for i, p in enumerate(problems):
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
) -> list[BudgetAnswer]:
    """``answer_with_budget`` for every budget (a progress bar over budgets); all answers, flat."""
    from tqdm.auto import tqdm

    budgets = list(budgets)
    if not budgets:
        raise ValueError("thinking_budget_run needs at least one budget, e.g. [0, 64, 256].")
    results: list[BudgetAnswer] = []
    for budget in tqdm(budgets, desc="thinking budgets", disable=not progress, leave=False):
        results += answer_with_budget(lm, problems, budget, max_answer_tokens, seed=seed)
    return results


def budget_summary(results: Sequence[BudgetAnswer]) -> list[dict]:
    """Per budget: accuracy, mean thinking tokens used, and how often the model closed by itself."""
    rows = []
    for budget in sorted({r.budget for r in results}):
        group = [r for r in results if r.budget == budget]
        rows.append(
            {
                "budget": budget,
                "n": len(group),
                "accuracy": sum(r.correct for r in group) / len(group),
                "mean_thinking_tokens": sum(r.thinking_tokens for r in group) / len(group),
                "closed_by_model": sum(r.closed_by_model for r in group) / len(group),
            }
        )
    return rows
