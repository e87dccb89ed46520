"""A small set of math word problems for notebook 05's thinking-budget experiment.

Every answer is computed by code here, never typed in. The problems are short enough for a 1.5B
distill to solve with a few hundred thinking tokens and hard enough that thinking helps (counting,
modular arithmetic, small equations). Each comes with a short step-by-step ``trace`` in R1's style;
the stand-in model in ``course_lib.r1`` is fitted to those traces to learn R1's *format* only.

Answer checking mirrors the rule-based accuracy reward of [R1 §2.2.2]: the final answer is read from
``\\boxed{}`` and compared with the reference, by exact value where the reference is a number
(:func:`is_correct` says what is accepted: ``12.0`` and ``24/2`` are ``12``; ``1, 2`` and ``1e1``
are not ``12`` and ``10``).
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass
from fractions import Fraction


@dataclass(frozen=True)
class MathProblem:
    """A question, its answer (as a string) and a short worked trace."""

    question: str
    answer: str
    trace: str
    kind: str


def _divisors(n: int) -> int:
    return sum(1 for d in range(1, n + 1) if n % d == 0)


def _is_prime(n: int) -> bool:
    return n >= 2 and all(n % d for d in range(2, math.isqrt(n) + 1))


def _odd_sum(rng: random.Random) -> MathProblem:
    n = rng.randint(8, 30)
    total = sum(2 * k + 1 for k in range(n))
    return MathProblem(
        f"What is the sum of the first {n} positive odd integers?",
        str(total),
        f"The first {n} odd numbers are 1, 3, 5, ... Their sum is {n} squared. "
        f"Wait, let me check: {n} * {n} = {total}.",
        "odd_sum",
    )


def _divisor_count(rng: random.Random) -> MathProblem:
    n = rng.choice([72, 84, 90, 96, 120, 144, 180, 210, 240, 360])
    d = _divisors(n)
    return MathProblem(
        f"How many positive divisors does {n} have?",
        str(d),
        f"Factor {n} into primes, add one to each exponent and multiply. Hmm, so {n} has {d} divisors.",
        "divisors",
    )


def _power_mod(rng: random.Random) -> MathProblem:
    a, b, m = rng.randint(2, 9), rng.randint(20, 99), rng.choice([7, 9, 11, 13])
    r = pow(a, b, m)
    return MathProblem(
        f"What is the remainder when {a}^{b} is divided by {m}?",
        str(r),
        f"Powers of {a} modulo {m} repeat. Wait, reduce the exponent {b} by the cycle length. "
        f"The remainder is {r}.",
        "power_mod",
    )


def _rectangle(rng: random.Random) -> MathProblem:
    x = rng.randint(3, 12)
    y = x + rng.randint(1, 9)
    return MathProblem(
        f"A rectangle has perimeter {2 * (x + y)} and area {x * y}. How long is its longer side?",
        str(y),
        f"The sides add to {x + y} and multiply to {x * y}. They are roots of t^2 - {x + y}t + "
        f"{x * y} = 0, so {x} and {y}. Hmm, the longer side is {y}.",
        "rectangle",
    )


def _multiples(rng: random.Random) -> MathProblem:
    n, a, b = rng.randint(50, 200), rng.choice([3, 4]), rng.choice([5, 7])
    c = sum(1 for k in range(1, n + 1) if k % a == 0 or k % b == 0)
    return MathProblem(
        f"How many integers from 1 to {n} are divisible by {a} or {b}?",
        str(c),
        f"Count multiples of {a}, add multiples of {b}, subtract multiples of {a * b}. "
        f"Wait, that gives {c}.",
        "multiples",
    )


def _primes_below(rng: random.Random) -> MathProblem:
    n = rng.randint(30, 100)
    c = sum(1 for k in range(n) if _is_prime(k))
    return MathProblem(
        f"How many prime numbers are less than {n}?",
        str(c),
        f"List the primes 2, 3, 5, 7, 11, ... below {n} and count them: {c}.",
        "primes",
    )


def _digit_sum(rng: random.Random) -> MathProblem:
    k = rng.randint(10, 30)
    s = sum(int(ch) for ch in str(2**k))
    return MathProblem(
        f"What is the sum of the digits of 2^{k}?",
        str(s),
        f"2^{k} = {2**k}. Adding its digits gives {s}. Wait, let me add again: {s}.",
        "digit_sum",
    )


def _linear(rng: random.Random) -> MathProblem:
    x = rng.randint(-9, 15)
    a, b = rng.randint(2, 9), rng.randint(1, 30)
    c = a * x + b
    return MathProblem(
        f"Solve for x: {a}x + {b} = {c}.",
        str(x),
        f"Subtract {b}: {a}x = {c - b}. Divide by {a}: x = {x}.",
        "linear",
    )


_KINDS = (
    _odd_sum,
    _divisor_count,
    _power_mod,
    _rectangle,
    _multiples,
    _primes_below,
    _digit_sum,
    _linear,
)


def math_problems(per_kind: int = 2, seed: int = 0) -> list[MathProblem]:
    """``per_kind`` problems of each of the 8 kinds, in a fixed order given ``seed``."""
    if per_kind < 1:
        raise ValueError(f"per_kind must be >= 1, got {per_kind}; e.g. math_problems(2).")
    rng = random.Random(seed)
    return [make(rng) for _ in range(per_kind) for make in _KINDS]


# What counts as a number (see is_correct): digits with an optional sign, thousands separators
# only in groups of three, an optional decimal part; a fraction of two such integers; \frac{a}{b}.
# ASCII digits only (re.ASCII), so what is accepted is what the docstrings list.
_DECIMAL = re.compile(r"[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|[+-]?\.\d+", re.ASCII)
_SLASH = re.compile(r"([+-]?\d+)\s*/\s*(\d+)", re.ASCII)
_FRAC = re.compile(r"([+-]?)\\[dt]?frac\{([^{}]*)\}\{([^{}]*)\}")
_VARIABLE = re.compile(r"[A-Za-z]\s*=\s*")  # "x = 5"
_MAX_NUMBER_CHARS = 1000  # longer "numbers" compare as text (int() refuses > 4300 digits anyway)


def normalize(answer: str) -> str:
    """The answer as written, minus what never changes its meaning.

    Strips surrounding white space and ``$`` signs, one trailing period, a leading ``x =`` (any
    one-letter variable), and turns the Unicode minus ``−`` into ``-``; runs of white space become
    one space. Nothing inside the answer is removed: ``"1, 2"`` stays a list, ``"4 5"`` two numbers.
    """
    if not isinstance(answer, str):
        raise ValueError(f"an answer must be text, got {type(answer).__name__}: {answer!r}.")
    text = " ".join(answer.split()).strip(" $")
    if text.endswith("."):  # "42." and "$42$." end a sentence
        text = text[:-1].strip(" $")
    head = _VARIABLE.match(text)
    if head:
        text = text[head.end() :]
    return text.replace("\u2212", "-")


def number_value(answer: str) -> Fraction | None:
    """The exact value of an answer written as one number, or None if it is not one.

    Accepted: ``12``, ``-3``, ``+5``, ``012``, ``1,024`` (separators in groups of three only),
    ``12.0``, ``.5``, ``24/2``, ``\\frac{1}{2}`` (also ``\\dfrac``, ``\\tfrac``, signed). Not numbers:
    ``1e1`` (scientific notation), ``1_0``, ``inf``, ``nan``, ``1, 2``, ``4 5``, ``1,2``, ``x/0``.
    """
    text = normalize(answer)
    if len(text) > _MAX_NUMBER_CHARS:
        return None
    if _DECIMAL.fullmatch(text):
        return Fraction(text.replace(",", ""))
    m = _SLASH.fullmatch(text)
    if m and int(m.group(2)) != 0:
        return Fraction(int(m.group(1)), int(m.group(2)))
    m = _FRAC.fullmatch(text)
    if m:
        num, den = number_value(m.group(2)), number_value(m.group(3))
        if num is not None and den:
            return -num / den if m.group(1) == "-" else num / den
    return None


def is_correct(predicted: str | None, expected: str | int) -> bool:
    """Does a ``\\boxed{}`` answer mean the same as the reference? What a mathematician would accept.

    When the reference is a number (:func:`number_value`), the prediction must be a number with
    exactly the same value: ``12`` = ``12.0`` = ``24/2`` = ``\\frac{24}{2}``, ``0.5`` = ``1/2``,
    ``1,024`` = ``1024``, ``x = -3`` = ``-3``; but ``0.333`` ≠ ``1/3`` (exact, no tolerance) and
    ``1, 2`` / ``4 5`` / ``1e1`` are not the numbers ``12`` / ``45`` / ``10``. Otherwise the two
    texts must be equal after :func:`normalize`. ``predicted`` None (no boxed answer) is wrong.
    Linear in the length of the text (benchmarks/grading.py measures it on adversarial input).
    """
    if isinstance(expected, int) and not isinstance(expected, bool):
        expected = str(expected)
    if not isinstance(expected, str) or not normalize(expected):
        raise ValueError(
            f"the reference answer must be non-empty text such as '42', got {expected!r}."
        )
    if predicted is None:
        return False
    if not isinstance(predicted, str):
        raise ValueError(
            f"predicted must be the answer's text (or None), got {type(predicted).__name__}; "
            "read it from the reply with formats.extract_boxed."
        )
    want = number_value(expected)
    if want is not None:
        return number_value(predicted) == want
    return normalize(predicted) == normalize(expected)
