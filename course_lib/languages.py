"""A toy world with a readability problem: two languages for the same arithmetic, and R1's
language-consistency score.

DeepSeek-R1-Zero reasoned well but its chains of thought mixed languages and were hard to read;
R1 fixed that with a cold start on readable data and a *language-consistency reward*, "the
proportion of target language words in the CoT", added to the accuracy reward during reasoning RL
([R1] §2.3.1-§2.3.2; docs/references.md "The R1 pipeline in miniature"). To show that on TinySeek
the toy world needs two languages a model can mix. Here they are two scripts for the same numbers:

* ``"digits"``: ``47+85=`` and the trace ``7+5=12;4+8+1=13``;
* ``"letters"``: every digit d written as the d-th letter (0 -> a, 1 -> b, ..., 9 -> j):
  ``eh+if=`` and ``h+f=bc;e+i+b=bd``.

The operators ``+ = ;`` are shared by both, as mathematical symbols are by English and Chinese.
A *word* is a maximal run of digits and letters a-j (a number); its language is the script it is
written in, or ``"mixed"`` for a word such as ``1c``. The question's script is the *target*
language; the answer is always written in it.

* :func:`to_script`, :func:`script_of`, :func:`words`, :func:`word_script`: the two scripts.
* :func:`language_consistency` / :func:`language_reward`: R1's score on the thinking, and the
  same as a GRPO reward function ``(prompt, completion, answer) -> float``.
* :func:`bilingual_additions`: problems asked in either script, with the trace and answer in it.
* :func:`translations`: a task that needs no reasoning, ``tr:472=`` -> ``ehc``: the toy world's
  stand-in for R1's non-reasoning data (writing, factual QA, translation, [R1] §2.3.3).
* :func:`mixed_student_text` / :func:`mixed_corpus`: the base model's pre-training text, written
  by notebook 04's careful, careless, lazy and plain students (:mod:`course_lib.students`) who
  switch language from one step to the next: R1-Zero's starting point in miniature.

Simplified: real language mixing is between natural languages with their own words and grammar; in
the toy the two languages share everything but the spelling of numbers, so writing in either costs
a model the same. Whether mixing then costs accuracy is exactly what the notebook measures.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

from course_lib.formats import THINK, THINK_END
from course_lib.students import STUDENTS, needs_carry, student_text
from course_lib.tasks import Example, arithmetic

SCRIPTS: tuple[str, ...] = ("digits", "letters")
DIGITS, LETTERS = "0123456789", "abcdefghij"
_TO = {"digits": str.maketrans(LETTERS, DIGITS), "letters": str.maketrans(DIGITS, LETTERS)}
_WORD = re.compile(f"[{DIGITS}{LETTERS}]+")
_TAG = re.compile(r"<[^<>]*>")  # <think>, <answer>, ...: their letters are not words
# One step of a trace: "7+5=12", "4+8+1=13" (in digits, before any translation).
_STEP = re.compile(r"\d+(?:[+*]\d+)*=\d+")


def _check_script(script: str) -> None:
    if script not in SCRIPTS:
        raise ValueError(f"script={script!r}; use one of {SCRIPTS}.")


def to_script(text: str, script: str) -> str:
    """Write every number of ``text`` in ``script``; everything else is left as it is.

    ``to_script("47+85=", "letters") == "eh+if="`` and back: ``to_script("eh+if=", "digits")``.
    Tags (anything in angle brackets, e.g. ``<answer>``, whose letters a and e are in the
    alphabet) are left untouched.
    """
    _check_script(script)
    if not isinstance(text, str):
        raise ValueError(f"text must be a string, got {type(text).__name__}.")
    parts = _TAG.split(text)
    tags = _TAG.findall(text)
    out = [parts[0].translate(_TO[script])]
    for tag, part in zip(tags, parts[1:]):
        out += [tag, part.translate(_TO[script])]
    return "".join(out)


def other(script: str) -> str:
    """The other script: ``other("digits") == "letters"``."""
    _check_script(script)
    return SCRIPTS[1 - SCRIPTS.index(script)]


def word_script(word: str) -> str:
    """``"digits"``, ``"letters"`` or ``"mixed"`` for one word (a run of digits and letters a-j)."""
    has_d = any(c in DIGITS for c in word)
    has_l = any(c in LETTERS for c in word)
    if has_d and has_l:
        return "mixed"
    if has_d:
        return "digits"
    if has_l:
        return "letters"
    raise ValueError(f"{word!r} is not a word of the toy languages (digits or letters a-j).")


def words(text: str) -> list[str]:
    """The words (numbers) of ``text`` in order: ``words("h+5=bc") == ["h", "5", "bc"]``."""
    return _WORD.findall(_TAG.sub(" ", text))


def script_of(prompt: str) -> str:
    """The language a question is asked in: the script of its words (the target language).

    Raises a ValueError when the prompt has no word or mixes scripts: a question has one language.
    """
    found = {word_script(w) for w in words(prompt)}
    if len(found) != 1 or "mixed" in found:
        raise ValueError(
            f"prompt {prompt!r} is not written in one script; ask in digits (47+85=) or letters (eh+if=)."
        )
    return found.pop()


def thinking_of(completion: str) -> str | None:
    """The text after the first ``<think>`` up to the next ``</think>`` (or the end), or None."""
    start = completion.find(THINK)
    if start < 0:
        return None
    start += len(THINK)
    end = completion.find(THINK_END, start)
    return completion[start:] if end < 0 else completion[start:end]


def language_consistency(completion: str, target: str) -> float:
    """R1's language consistency: the share of the thinking's words written in ``target``.

    ``language_consistency("<think>h+f=bc;4+8+1=13</think><answer>bdc</answer>", "letters")`` is
    3/7: three of the seven words of the thinking are in letters. The answer is not counted (R1
    scores the chain of thought); a completion without ``<think>`` or without a word in its thinking
    scores 0 (there is no readable thinking to pay for). Mixed words (``1c``) count as not target.
    """
    _check_script(target)
    if not isinstance(completion, str):
        return 0.0
    thinking = thinking_of(completion)
    found = words(thinking) if thinking is not None else []
    if not found:
        return 0.0
    return sum(word_script(w) == target for w in found) / len(found)


def language_reward(prompt: str, completion: str, answer: str | None = None) -> float:
    """The language-consistency reward of R1 §2.3.2: :func:`language_consistency` with the
    question's script as the target. A GRPO reward function; never raises on odd text."""
    try:
        return language_consistency(completion, script_of(prompt))
    except (ValueError, TypeError):
        return 0.0


# --------------------------------------------------------------------------------------------
# Problems and the base model's mixed-language corpus
# --------------------------------------------------------------------------------------------
def translate_example(ex: Example, script: str) -> Example:
    """The same problem asked, reasoned and answered in ``script``."""
    return Example(to_script(ex.prompt, script), to_script(ex.trace, script),
                   to_script(ex.answer, script), ex.domain)  # fmt: skip


def bilingual_additions(
    n: int,
    seed: int = 0,
    digits: int | tuple[int, int] = 2,
    carry_only: bool = False,
    letters_share: float = 0.5,
) -> list[Example]:
    """``n`` additions, each asked in letters with probability ``letters_share``, else in digits.

    ``carry_only=True`` keeps only problems that carry (:func:`course_lib.students.needs_carry`):
    the ones a careless student gets wrong, where RL has something to learn (notebook 04).
    """
    if n < 0 or not 0 <= letters_share <= 1:
        raise ValueError(f"need n >= 0 and 0 <= letters_share <= 1, got n={n}, {letters_share}.")
    rng = random.Random(f"bilingual-{seed}")
    out: list[Example] = []
    batch = 0
    while len(out) < n:
        for ex in arithmetic(max(64, 2 * n), seed=seed * 1000 + batch, digits=digits):
            if carry_only and not needs_carry(ex.prompt):
                continue
            script = "letters" if rng.random() < letters_share else "digits"
            out.append(translate_example(ex, script))
            if len(out) == n:
                break
        batch += 1
    return out


def mix_steps(text: str, target: str, p_target: float, rng: random.Random) -> str:
    """Write each step of ``text`` (digits) in ``target`` with probability ``p_target``, else in the
    other script; every other number (the answer) in ``target``.

    ``mix_steps("<think>7+5=12;4+8+1=13</think><answer>132</answer>", "letters", 0.5, rng)`` might
    give ``"<think>h+f=bc;4+8+1=13</think><answer>bdc</answer>"``.
    """
    _check_script(target)
    if not 0 <= p_target <= 1:
        raise ValueError(f"p_target={p_target} must lie in [0, 1].")
    out, last = [], 0
    for m in _STEP.finditer(text):
        out.append(to_script(text[last : m.start()], target))
        out.append(to_script(m.group(), target if rng.random() < p_target else other(target)))
        last = m.end()
    out.append(to_script(text[last:], target))
    return "".join(out)


def mixed_student_text(ex: Example, student: str, p_target: float, rng: random.Random) -> str:
    """How a student of :data:`course_lib.students.STUDENTS` writes the solution when each step's
    language is a coin flip (``p_target`` for the question's language); the answer is always in
    the question's language."""
    target = script_of(ex.prompt)
    in_digits = Example(
        to_script(ex.prompt, "digits"), "", to_script(ex.answer, "digits"), ex.domain
    )
    return mix_steps(student_text(in_digits, student), target, p_target, rng)


def mixed_corpus(
    examples: Sequence[Example], mix: dict[str, float], p_target: float, seed: int = 0
) -> list[tuple[str, str]]:
    """(prompt, text) pairs written by a mix of students who switch language between steps.

    ``mix`` gives each student's share as in :func:`course_lib.students.base_corpus`; a model
    pre-trained on it is the base both R1-Zero and R1 start from.
    """
    unknown = [k for k in mix if k not in STUDENTS]
    if unknown or not mix or min(mix.values()) < 0 or sum(mix.values()) <= 0:
        raise ValueError(f"mix needs non-negative shares for students among {STUDENTS}, got {mix}.")
    rng = random.Random(f"mixed-corpus-{seed}")
    names, weights = list(mix), list(mix.values())
    return [
        (ex.prompt, mixed_student_text(ex, rng.choices(names, weights)[0], p_target, rng))
        for ex in examples
    ]


TRANSLATE = "tr:"


def translations(n: int, seed: int = 0, digits: tuple[int, int] = (1, 3)) -> list[Example]:
    """``n`` requests to write a number in the other script: ``tr:472=`` -> ``ehc`` and
    ``tr:ehc=`` -> ``472`` (half each way, at random). The trace spells it out digit by digit,
    ``4=e;7=h;2=c``: a chain of thought the request hardly needs."""
    if n < 0:
        raise ValueError(f"n={n} must be >= 0.")
    lo, hi = digits
    if not 1 <= lo <= hi:
        raise ValueError(f"digits={digits!r} must be (lo, hi) with 1 <= lo <= hi.")
    rng = random.Random(f"translations-{seed}")
    out = []
    for _ in range(n):
        number = "".join(rng.choice(DIGITS) for _ in range(rng.randint(lo, hi)))
        src = rng.choice(SCRIPTS)
        word, target = to_script(number, src), to_script(number, other(src))
        trace = ";".join(f"{a}={b}" for a, b in zip(word, target))
        out.append(Example(f"{TRANSLATE}{word}=", trace, target, "translation"))
    return out
