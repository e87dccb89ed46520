"""The toy world: synthetic tasks with exact answers, shared by notebooks 01-04.

* ``arithmetic``: multi-term addition and multiplication by a digit, with a column-by-column
  trace (carries written out). The trace is what a small model needs: reading off a long sum in
  one go is hard for a 2-layer model, one column at a time is easy. Difficulty is set by the
  number of digits and terms, so distillation can test on longer problems than it trained on and
  GRPO can start from a weak model.
* ``domain_mixture``: four clearly different domains (arithmetic, string reversal, sorting
  letters, a tiny natural-language set) so the experts of a Mixture-of-Experts can specialise.

Every example carries a ``trace`` and an ``answer``; :func:`course_lib.formats.format_target` writes
them in R1's ``<think>trace</think><answer>answer</answer>`` format and
:func:`course_lib.formats.check_answer` grades a completion against ``answer``.

Simplified: the real R1 training data are math/code problems in natural language; ours are
generated, tiny and exactly checkable. Every generator is deterministic given ``seed``.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from course_lib import validate

DOMAINS: tuple[str, ...] = ("arithmetic", "reverse", "sort", "language")


@dataclass(frozen=True)
class Example:
    """One problem: the ``prompt`` the model sees, a step-by-step ``trace``, the exact ``answer``."""

    prompt: str
    trace: str
    answer: str
    domain: str


# --------------------------------------------------------------------------------------------
# Arithmetic with column-by-column traces
# --------------------------------------------------------------------------------------------
def _range(value: int | tuple[int, int], name: str, low: int) -> tuple[int, int]:
    lo, hi = (value, value) if isinstance(value, int) else tuple(value)
    if lo < low or hi < lo:
        raise ValueError(
            f"{name}={value!r} is not a valid range; use an int >= {low} or (lo, hi), lo <= hi."
        )
    return int(lo), int(hi)


def addition_trace(terms: Sequence[int], forget_carries: bool = False) -> tuple[str, str]:
    """Column-by-column addition, least significant column first.

    ``addition_trace([47, 85]) == ("7+5=12;4+8+1=13", "132")``: each step adds the column's digits
    and the carry (written only when it is not zero); the answer is the last column's sum followed
    by the other columns' last digits, read back to front.

    ``forget_carries=True`` is the careless student of notebook 04 (:mod:`course_lib.students`):
    ``("7+5=12;4+8=12", "122")``. Problems without a carry come out right either way.
    """
    if len(terms) < 1 or any(t < 0 for t in terms):
        raise ValueError("addition_trace needs one or more non-negative integers.")
    digits = [str(t)[::-1] for t in terms]
    n_cols = max(len(d) for d in digits)
    steps, units, carry, total = [], [], 0, 0
    for c in range(n_cols):
        col = [int(d[c]) for d in digits if c < len(d)]
        parts = [str(x) for x in col] + ([str(carry)] if carry else [])
        total = sum(col) + carry
        steps.append("+".join(parts) + f"={total}")
        units.append(total % 10)
        carry = 0 if forget_carries else total // 10
    answer = str(total) + "".join(str(u) for u in reversed(units[:-1]))
    return ";".join(steps), answer


def multiplication_trace(a: int, b: int) -> tuple[str, str]:
    """Multiply ``a`` by a single digit ``b`` column by column, carries written out.

    ``multiplication_trace(47, 6) == ("7*6=42;4*6+4=28", "282")``.
    """
    if a < 0 or not 0 <= b <= 9:
        raise ValueError("multiplication_trace needs a >= 0 and a single digit b (0..9).")
    steps, units, carry, total = [], [], 0, 0
    for ch in str(a)[::-1]:
        total = int(ch) * b + carry
        steps.append(f"{ch}*{b}" + (f"+{carry}" if carry else "") + f"={total}")
        units.append(total % 10)
        carry = total // 10
    answer = str(total) + "".join(str(u) for u in reversed(units[:-1]))
    return ";".join(steps), answer


def arithmetic(
    n: int,
    seed: int = 0,
    digits: int | tuple[int, int] = (1, 2),
    terms: int | tuple[int, int] = 2,
    ops: str | Sequence[str] = "+",
) -> list[Example]:
    """``n`` arithmetic problems with column-by-column traces.

    ``digits``: digits per operand (an int or an inclusive ``(lo, hi)`` range).
    ``terms``: how many numbers are added (``"+"`` only; ``"*"`` is always a number times a digit).
    ``ops``: ``"+"``, ``"*"`` or both (``"+*"`` / ``("+", "*")``), picked at random per problem.

    >>> arithmetic(1, seed=3, digits=2)[0].prompt[-1]
    '='
    """
    n = validate.number("n", n, "the number of problems, e.g. 500.", low=0, integer=True)
    d_lo, d_hi = _range(digits, "digits", 1)
    t_lo, t_hi = _range(terms, "terms", 2)
    ops = tuple(ops)
    if not ops or any(o not in "+*" for o in ops):
        raise ValueError(f"ops={ops!r}: use '+', '*' or both ('+*').")
    rng = random.Random(f"arithmetic-{seed}")

    def number() -> int:
        nd = rng.randint(d_lo, d_hi)
        return rng.randint(0 if nd == 1 else 10 ** (nd - 1), 10**nd - 1)

    out = []
    for _ in range(n):
        op = rng.choice(ops)
        if op == "+":
            nums = [number() for _ in range(rng.randint(t_lo, t_hi))]
            trace, answer = addition_trace(nums)
            assert int(answer) == sum(nums)
        else:
            nums = [number(), rng.randint(2, 9)]
            trace, answer = multiplication_trace(*nums)
            assert int(answer) == nums[0] * nums[1]
        out.append(Example(op.join(map(str, nums)) + "=", trace, answer, "arithmetic"))
    return out


# --------------------------------------------------------------------------------------------
# The other domains of the mixture
# --------------------------------------------------------------------------------------------
_LETTERS = "abcdefghijklmnopqrstuvwxyz"

_OPPOSITES = {
    "hot": "cold", "big": "small", "up": "down", "fast": "slow", "day": "night", "old": "new",
    "wet": "dry", "full": "empty", "hard": "soft", "light": "dark", "open": "shut", "high": "low",
    "rich": "poor", "early": "late", "happy": "sad", "loud": "quiet", "long": "short", "in": "out",
}  # fmt: skip
_PLURALS = {
    "cat": "cats", "dog": "dogs", "fox": "foxes", "box": "boxes", "city": "cities", "baby": "babies",
    "child": "children", "mouse": "mice", "foot": "feet", "tooth": "teeth", "bus": "buses",
    "leaf": "leaves", "wolf": "wolves", "man": "men", "book": "books", "tree": "trees",
}  # fmt: skip
_COLOURS = {
    "grass": "green", "sky": "blue", "snow": "white", "coal": "black", "blood": "red",
    "sun": "yellow", "lemon": "yellow", "night": "black", "sea": "blue", "leaf": "green",
}  # fmt: skip
_SOUNDS = {
    "dog": "woof", "cat": "meow", "cow": "moo", "duck": "quack", "sheep": "baa", "owl": "hoot",
    "lion": "roar", "snake": "hiss", "bee": "buzz", "horse": "neigh", "frog": "croak",
}  # fmt: skip
_FACTS = (
    ("the opposite of {} is", _OPPOSITES),
    ("the plural of {} is", _PLURALS),
    ("the colour of {} is", _COLOURS),
    ("a {} says", _SOUNDS),
)


def _word(rng: random.Random, lo: int, hi: int) -> str:
    return "".join(rng.choice(_LETTERS) for _ in range(rng.randint(lo, hi)))


def reverse_task(n: int, seed: int = 0, length: tuple[int, int] = (3, 8)) -> list[Example]:
    """Reverse a random lowercase string: ``rev:abc=`` -> ``cba`` (no trace)."""
    rng = random.Random(f"reverse-{seed}")
    out = []
    for _ in range(n):
        w = _word(rng, *length)
        out.append(Example(f"rev:{w}=", "", w[::-1], "reverse"))
    return out


def sort_task(n: int, seed: int = 0, length: tuple[int, int] = (3, 8)) -> list[Example]:
    """Sort the letters of a random string: ``sort:dbca=`` -> ``abcd`` (no trace)."""
    rng = random.Random(f"sort-{seed}")
    out = []
    for _ in range(n):
        w = _word(rng, *length)
        out.append(Example(f"sort:{w}=", "", "".join(sorted(w)), "sort"))
    return out


def language_task(n: int, seed: int = 0) -> list[Example]:
    """A tiny natural-language set of facts: ``the plural of fox is`` -> ``foxes`` (no trace)."""
    rng = random.Random(f"language-{seed}")
    out = []
    for _ in range(n):
        template, table = rng.choice(_FACTS)
        key = rng.choice(sorted(table))
        out.append(Example(template.format(key) + "?", "", table[key], "language"))
    return out


def domain_mixture(
    n: int,
    seed: int = 0,
    domains: Sequence[str] = DOMAINS,
    weights: Sequence[float] | None = None,
    arithmetic_kwargs: dict | None = None,
) -> list[Example]:
    """``n`` examples drawn from several clearly different domains, shuffled together.

    ``domains``: any of ``DOMAINS``. ``weights``: relative frequencies (equal by default).
    ``arithmetic_kwargs``: passed to :func:`arithmetic` (default: 1-3 digits, 2 terms, + and *).
    """
    unknown = [d for d in domains if d not in DOMAINS]
    if unknown or not domains:
        raise ValueError(f"unknown domains {unknown}; choose from {DOMAINS}.")
    if weights is not None and (
        len(weights) != len(domains) or min(weights) < 0 or sum(weights) <= 0
    ):
        raise ValueError("weights needs one non-negative number per domain, not all zero.")
    rng = random.Random(f"mixture-{seed}")
    picks = rng.choices(list(domains), weights=weights, k=n)
    counts = {d: picks.count(d) for d in domains}
    akw = {"digits": (1, 3), "terms": 2, "ops": "+*"} | (arithmetic_kwargs or {})
    pools = {
        "arithmetic": lambda k: arithmetic(k, seed, **akw),
        "reverse": lambda k: reverse_task(k, seed),
        "sort": lambda k: sort_task(k, seed),
        "language": lambda k: language_task(k, seed),
    }
    iters = {d: iter(pools[d](counts[d])) for d in domains}
    return [next(iters[d]) for d in picks]
