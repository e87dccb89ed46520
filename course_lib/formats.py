"""R1's output format, in one place: the tags, writing a target, reading an answer, the strict check.

DeepSeek-R1-Zero's template asks the model to reason inside ``<think> ... </think>`` and to answer
inside ``<answer> ... </answer>``, and its rule-based *format reward* pays for exactly that
([R1] §2.2.1 Table 1, §2.2.2; docs/references.md "GRPO and R1-Zero"). The toy world (TinySeek's
tokenizer, the tasks, distillation's rejection filter, GRPO's rewards, the exercise checkers) and
the real distills (notebook 05) all read and write text through the functions here.

* :func:`format_target`: ``<think>trace</think><answer>answer</answer>`` (or the answer alone).
* :func:`extract_answer` / :func:`check_answer`: the last ``<answer>...</answer>`` after the
  thinking (:func:`graded_part`) and an exact match with the reference -- R1-Zero's accuracy
  reward is such a rule. An answer written inside ``<think>`` is never graded.
* :func:`is_well_formed`: the strict check (see its docstring for what it accepts and why).
* :func:`split_thinking` / :func:`extract_boxed`: reading a real distill's reply, which closes its
  thinking with ``</think>`` and puts a math answer in ``\\boxed{}`` (the model card's advice).

Simplified: the real R1 format reward was a rule on the same tags; its exact code is not published,
so the whitespace and empty-block rules of :func:`is_well_formed` are the course's reading of it.
"""

from __future__ import annotations

from dataclasses import dataclass

THINK, THINK_END = "<think>", "</think>"
ANSWER, ANSWER_END = "<answer>", "</answer>"
TAGS: tuple[str, ...] = (THINK, THINK_END, ANSWER, ANSWER_END)


def format_target(answer: str, trace: str | None = None) -> str:
    """What a model should write after the prompt.

    ``format_target("132", "7+5=12;4+8+1=13") == "<think>7+5=12;4+8+1=13</think><answer>132</answer>"``;
    without a ``trace`` (None) it is ``<answer>132</answer>`` (answers only).
    """
    body = f"{ANSWER}{answer}{ANSWER_END}"
    return body if trace is None else f"{THINK}{trace}{THINK_END}{body}"


def graded_part(completion: str) -> str:
    """The part of a completion an answer may come from: what follows the thinking.

    R1's template puts the answer *after* the reasoning ([R1] Table 1), so an ``<answer>`` block
    written inside ``<think> ... </think>`` is thinking, never graded. The graded part starts after
    the last ``</think>`` (at the start when there is none) and stops at a ``<think>`` that opens
    after it: thinking that never closes runs to the end.
    """
    close = completion.rfind(THINK_END)
    start = 0 if close < 0 else close + len(THINK_END)
    stop = completion.find(THINK, start)
    return completion[start:] if stop < 0 else completion[start:stop]


def extract_answer(completion: str) -> str | None:
    """The text inside the LAST ``<answer>...</answer>`` pair after the thinking (stripped), or None.

    Pairs are read left to right: an ``<answer>``, then the first ``</answer>`` after it, then the
    next ``<answer>`` after that (the same pairs as the regular expression
    ``<answer>(.*?)</answer>``). One forward scan, so the time grows linearly with the text, even
    for adversarial text such as ``"<answer>5" * 100_000`` (benchmarks/grading.py). Only
    :func:`graded_part` is searched: an answer inside the thinking earns nothing.
    """
    if not isinstance(completion, str):
        raise ValueError(
            f"completion must be a string (the model's text), got {type(completion).__name__}; "
            "decode token ids with the tokenizer first."
        )
    text, pos, found = graded_part(completion), 0, None
    while True:
        i = text.find(ANSWER, pos)
        if i < 0:
            break
        j = text.find(ANSWER_END, i + len(ANSWER))
        if j < 0:
            break
        found, pos = text[i + len(ANSWER) : j], j + len(ANSWER_END)
    return None if found is None else found.strip()


def check_answer(completion: str, answer: str | int) -> bool:
    """Exact match of the extracted answer with the reference answer (whitespace-stripped).

    The reference must be a non-empty string (or an int): an empty reference would pay an empty
    ``<answer></answer>``, so it is refused with a ValueError rather than graded.
    """
    if isinstance(answer, bool) or not isinstance(answer, (str, int)) or not str(answer).strip():
        raise ValueError(
            f"the reference answer must be non-empty text such as '132', got {answer!r}; check "
            "that every example (or dataset row) carries its answer."
        )
    got = extract_answer(completion)
    return got is not None and got == str(answer).strip()


def is_well_formed(completion: str) -> bool:
    """True for exactly one ``<think>T</think>`` followed by exactly one ``<answer>A</answer>``.

    * Each of the four tags appears once, in that order (none repeated, nested or missing).
    * Only whitespace may stand before ``<think>``, between ``</think>`` and ``<answer>`` and after
      ``</answer>``: R1's own template writes ``</think> <answer>`` with a space, so white space
      cannot make the format wrong.
    * ``T`` and ``A`` hold more than whitespace: an empty block does not put any thinking (or any
      answer) inside the tags, which is what the format reward pays for.

    Trailing ``<eos>`` is not part of a completion (the samplers cut it off before calling this).
    """
    if not isinstance(completion, str) or any(completion.count(tag) != 1 for tag in TAGS):
        return False
    i_think, i_think_end, i_answer, i_answer_end = (completion.index(tag) for tag in TAGS)
    if not i_think < i_think_end < i_answer < i_answer_end:
        return False
    thinking = completion[i_think + len(THINK) : i_think_end]
    answer = completion[i_answer + len(ANSWER) : i_answer_end]
    outside = (
        completion[:i_think]
        + completion[i_think_end + len(THINK_END) : i_answer]
        + completion[i_answer_end + len(ANSWER_END) :]
    )
    return not outside.strip() and bool(thinking.strip()) and bool(answer.strip())


# --------------------------------------------------------------------------------------------
# A real distill's reply: the thinking ends with </think>, the answer follows
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Thought:
    """A completion cut into the reasoning and the final answer."""

    thinking: str
    answer: str
    finished: bool  # the thinking was closed with </think>


def _strip_tags(text: str) -> str:
    """``text`` with every ``<think>`` / ``</think>`` removed, including tags that only form once
    another is removed (``"<thi<think>nk>"``), in one pass: each character goes on a stack and a
    tag that appears on top of it is popped. (The two tags cannot overlap, so this is the same as
    removing them over and over until none is left, without the quadratic time.)"""
    out: list[str] = []
    for ch in text:
        out.append(ch)
        if ch == ">":
            for tag in (THINK, THINK_END):
                n = len(tag)
                if len(out) >= n and "".join(out[-n:]) == tag:
                    del out[-n:]
                    break
    return "".join(out)


def split_thinking(text: str, think_open_in_prompt: bool = True) -> Thought:
    """Split a completion into thinking and answer, robust to missing or repeated tags.

    - The answer is what follows the last ``</think>`` (R1's chat template keeps the same part of
      earlier assistant turns); everything before it is thinking.
    - No ``</think>``: if thinking was opened (in the prompt, the default, or by a ``<think>`` in the
      text) the whole text is unfinished thinking; otherwise it is all answer.
    - Tags never appear in either part; both are stripped of surrounding whitespace.
    """
    if not isinstance(text, str):
        raise ValueError(f"text must be a string, got {type(text).__name__}.")
    close_at = text.rfind(THINK_END)
    if close_at >= 0:
        thinking, answer, finished = text[:close_at], text[close_at + len(THINK_END) :], True
    elif think_open_in_prompt or THINK in text:
        thinking, answer, finished = text, "", False
    else:
        thinking, answer, finished = "", text, False
    return Thought(_strip_tags(thinking).strip(), _strip_tags(answer).strip(), finished)


_BOXED = "\\boxed{"


def extract_boxed(text: str) -> str | None:
    """The content of the last ``\\boxed{...}`` whose brace closes (nested braces allowed), or None.

    One pass matches every brace with a stack (a brace's partner depends only on the text after
    it), so an unclosed ``\\boxed{`` costs nothing extra: the time is linear even for adversarial
    text such as ``"\\boxed{" * 100_000``.
    """
    if not isinstance(text, str):
        raise ValueError(f"text must be a string, got {type(text).__name__}.")
    closes: dict[int, int] = {}
    stack: list[int] = []
    for i, ch in enumerate(text):
        if ch == "{":
            stack.append(i)
        elif ch == "}" and stack:
            closes[stack.pop()] = i
    start = text.rfind(_BOXED)
    while start >= 0:
        brace = start + len(_BOXED) - 1
        if brace in closes:
            return text[brace + 1 : closes[brace]].strip()
        start = text.rfind(_BOXED, 0, start)  # unclosed: try an earlier one
    return None
