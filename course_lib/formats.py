"""R1's output format, in one place: the tags, writing a target, reading an answer, the strict check.

DeepSeek-R1-Zero's template asks the model to reason inside ``<think> ... </think>`` and to answer
inside ``<answer> ... </answer>``, and its rule-based *format reward* pays for exactly that
([R1] §2.2.1 Table 1, §2.2.2; docs/references.md "GRPO and R1-Zero"). The toy world (TinySeek's
tokenizer, the tasks, distillation's rejection filter, GRPO's rewards, the exercise checkers) and
the real distills (notebook 05) all read and write text through the functions here.

* :func:`format_target`: ``<think>trace</think><answer>answer</answer>`` (or the answer alone).
* :func:`extract_answer` / :func:`check_answer`: the last ``<answer>...</answer>`` and an exact
  match with the reference -- R1-Zero's accuracy reward is such a rule.
* :func:`is_well_formed`: the strict check (see its docstring for what it accepts and why).
* :func:`split_thinking` / :func:`extract_boxed`: reading a real distill's reply, which closes its
  thinking with ``</think>`` and puts a math answer in ``\\boxed{}`` (the model card's advice).

Simplified: the real R1 format reward was a rule on the same tags; its exact code is not published,
so the whitespace and empty-block rules of :func:`is_well_formed` are the course's reading of it.
"""

from __future__ import annotations

import re
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


_ANSWER_RE = re.compile(re.escape(ANSWER) + r"(.*?)" + re.escape(ANSWER_END), re.DOTALL)


def extract_answer(completion: str) -> str | None:
    """The text inside the LAST ``<answer>...</answer>`` pair (stripped), or None without one."""
    found = _ANSWER_RE.findall(completion)
    return found[-1].strip() if found else None


def check_answer(completion: str, answer: str) -> bool:
    """Exact match of the extracted answer with the reference answer (whitespace-stripped)."""
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
    # Loop: removing one tag can join two halves into a new one ("<thi<think>nk>").
    while THINK in text or THINK_END in text:
        text = text.replace(THINK, "").replace(THINK_END, "")
    return text


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


def extract_boxed(text: str) -> str | None:
    """The content of the last ``\\boxed{...}`` in ``text`` (nested braces allowed), or None."""
    start = text.rfind("\\boxed{")
    while start >= 0:
        i, depth = start + len("\\boxed{"), 1
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        if depth == 0:
            return text[start + len("\\boxed{") : i - 1].strip()
        start = text.rfind("\\boxed{", 0, start)  # unclosed: try an earlier one
    return None
