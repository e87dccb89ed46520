"""A small set of math word problems for notebook 05's thinking-budget experiment.

Every answer is computed by code here, never typed in. The problems are short enough for a 1.5B
distill to solve with a few hundred thinking tokens and hard enough that thinking helps (counting,
modular arithmetic, small equations). Each comes with a short step-by-step ``trace`` in R1's style;
the stand-in model in ``course_lib.r1`` is fitted to those traces to learn R1's *format* only.

Answer checking mirrors the rule-based accuracy reward of [R1 §2.2.2]: the final answer is read from
``\\boxed{}`` and compared with the reference, numerically where both are numbers.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass


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


def normalize(answer: str) -> str:
    """Strip spaces, dollar signs, ``\\text{}``-free trailing dots and thousands separators."""
    text = answer.strip().strip("$").strip()
    text = text.rstrip(".").replace(",", "").replace(" ", "")
    if text.startswith("x="):
        text = text[2:]
    return text


def is_correct(predicted: str | None, expected: str) -> bool:
    """Does a ``\\boxed{}`` answer match the reference? Numbers compare by value."""
    if predicted is None:
        return False
    p, e = normalize(predicted), normalize(expected)
    try:
        return math.isclose(float(p), float(e), rel_tol=1e-9, abs_tol=1e-9)
    except ValueError:
        return p == e
