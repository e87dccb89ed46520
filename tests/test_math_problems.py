"""The shipped math problems: answers checked by independent methods, and answer matching."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from course_lib.math_problems import is_correct, math_problems, normalize


def _factor_divisor_count(n: int) -> int:
    count, p = 1, 2
    while n > 1:
        e = 0
        while n % p == 0:
            n //= p
            e += 1
        count *= e + 1
        p += 1
    return count


def _sieve(n: int) -> int:
    flags = [True] * max(n, 2)
    flags[0] = flags[1] = False
    for i in range(2, int(n**0.5) + 1):
        if flags[i]:
            flags[i * i :: i] = [False] * len(flags[i * i :: i])
    return sum(flags[:n])


def _ints(text: str) -> list[int]:
    return [int(x) for x in re.findall(r"-?\d+", text)]


def test_every_answer_by_an_independent_method():
    problems = math_problems(per_kind=3, seed=5)
    assert len(problems) == 24 and len({p.kind for p in problems}) == 8
    for p in problems:
        nums = _ints(p.question)
        if p.kind == "odd_sum":
            expected = nums[0] ** 2
        elif p.kind == "divisors":
            expected = _factor_divisor_count(nums[0])
        elif p.kind == "power_mod":
            a, b, m = nums
            r = 1
            for _ in range(b):
                r = r * a % m
            expected = r
        elif p.kind == "rectangle":
            per, area = nums
            expected = max(x for x in range(1, per) if x * (per // 2 - x) == area)
        elif p.kind == "multiples":
            n, a, b = nums[-3:]  # "from 1 to n ... by a or b"
            expected = n // a + n // b - n // (a * b)
        elif p.kind == "primes":
            expected = _sieve(nums[0])
        elif p.kind == "digit_sum":
            expected = sum(map(int, str(1 << nums[1])))
        elif p.kind == "linear":
            a, b, c = nums[-3:]
            expected = (c - b) // a
            assert a * expected + b == c
        else:
            raise AssertionError(p.kind)
        assert p.answer == str(expected), p
        assert p.answer in p.trace  # the trace ends at the right answer


def test_problems_are_deterministic_and_seeded():
    assert math_problems(2, seed=0) == math_problems(2, seed=0)
    assert math_problems(2, seed=0) != math_problems(2, seed=1)
    with pytest.raises(ValueError, match="per_kind"):
        math_problems(0)


def test_answer_matching():
    assert is_correct("42", "42") and is_correct(" 42. ", "42") and is_correct("$42$", "42")
    assert is_correct("1,024", "1024") and is_correct("42.0", "42") and is_correct("x = -3", "-3")
    assert not is_correct("41", "42") and not is_correct(None, "42")
    assert is_correct("\\frac{1}{2}", "\\frac{1}{2}") and not is_correct("\\frac12", "\\frac{1}{2}")
    assert normalize(" $x = 1,000.$ ") == "1,000"  # what never changes the meaning goes
    assert normalize(" $1, 000$ ") == "1, 000"  # nothing inside the answer is removed


# ----- is_correct: what a mathematician would call the same number -----------------------------


@pytest.mark.parametrize(
    "predicted, expected",
    [
        ("1, 2", "12"),  # a list is not a number
        ("4 5", "45"),  # neither are two numbers
        ("1e1", "10"),  # scientific notation is not how an answer is written
        ("1,2", "12"),  # a comma that does not separate thousands
        ("1,0000", "10000"),
        ("1_0", "10"),  # Python's digit separator
        ("0.333", "1/3"),  # exact values, no tolerance
        ("0.5 ", "1/3"),
        ("12 apples", "12"),
        ("inf", "1000"),
        ("nan", "nan0"),
        ("\\frac{1}{0}", "1"),
        ("", "0"),
        ("١٢", "12"),  # only ASCII digits are digits here
    ],
)
def test_is_correct_refuses_what_is_not_the_same_number(predicted, expected):
    assert not is_correct(predicted, expected)


@pytest.mark.parametrize(
    "predicted, expected",
    [
        ("12.0", "12"),
        ("012", "12"),
        ("+12", "12"),
        ("24/2", "12"),
        ("24 / 2", "12"),
        ("\\frac{24}{2}", "12"),
        ("\\dfrac{1}{2}", "0.5"),
        ("-\\frac{1}{2}", "-0.5"),
        ("\u22123", "-3"),  # the Unicode minus sign
        (".5", "1/2"),
        ("1,024", "1024"),
        ("1,234,567.50", "1234567.5"),
        ("x = -3", "-3"),
        ("$42$.", "42"),
        ("a + b", " a  +  b "),  # text answers: equal after white space is tidied
    ],
)
def test_is_correct_accepts_equal_values_in_other_notations(predicted, expected):
    assert is_correct(predicted, expected)
    assert is_correct(expected, predicted)  # and the other way round


def test_is_correct_refuses_a_missing_reference():
    for bad in ("", "  $ $ ", None, 1.5, True):
        with pytest.raises(ValueError, match="reference answer"):
            is_correct("42", bad)
    with pytest.raises(ValueError, match="extract_boxed"):
        is_correct(42, "42")
    assert is_correct("42", 42)  # an int reference is read as its digits


_big_ints = st.integers(-(10**30), 10**30)


@given(_big_ints)
def test_is_correct_on_integers_in_every_accepted_notation(n):
    for written in (str(n), f"{n:,}", f"{n}.0", f"{2 * n}/2", f"\\frac{{{3 * n}}}{{3}}"):
        assert is_correct(written, str(n)), written
    assert not is_correct(str(n + 1), str(n))
    assert not is_correct(f"{n}e0", str(n))


@given(st.integers(10, 10**12), st.data())
def test_is_correct_never_joins_separated_digits(n, data):
    digits = str(n)
    cut = data.draw(st.integers(1, len(digits) - 1))
    sep = data.draw(st.sampled_from([" ", ", ", ",", "  ", ";", "\n"]))
    split = digits[:cut] + sep + digits[cut:]
    grouped = sep == "," and (len(digits) - cut) % 3 == 0 and f"{n:,}" == split
    assert is_correct(split, digits) is grouped


_answer_text = st.one_of(
    st.text(max_size=30),
    st.lists(
        st.sampled_from(
            ["1", "2", "0", ",", ".", "-", "/", " ", "$", "e", "x=", "\\frac{", "}{", "}"]
        ),
        max_size=12,
    ).map("".join),
)


@given(_answer_text, _answer_text.filter(lambda s: normalize(s) != ""))
def test_is_correct_never_raises_and_is_symmetric_on_text(predicted, expected):
    got = is_correct(predicted, expected)
    assert got in (True, False)
    if normalize(predicted):
        assert is_correct(expected, predicted) == got


@pytest.mark.parametrize(
    "text",
    ["1" * 200_000, "1," * 100_000, "1/" * 100_000, "\\frac{" * 50_000, " " * 200_000 + "7"],
    ids=["digits", "commas", "slashes", "fracs", "spaces"],
)
def test_is_correct_on_adversarial_long_text(text):
    # Correct results on 200 KB inputs (the time per call is benchmarks/grading.py's job).
    assert is_correct(text, text) == bool(normalize(text))
    assert not is_correct(text, "12")
