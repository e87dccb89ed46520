"""course_lib.validate: what counts as a number, a count, a choice; every message names the fix."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from course_lib import validate


@pytest.mark.parametrize(
    "value, kwargs, needle",
    [
        ("2", {}, "x must be a number, got '2' (a str); FIX"),
        (True, {}, "x must be a number, got True (a bool)"),
        (None, {"integer": True}, "x must be a whole number, got None (a NoneType)"),
        (math.inf, {}, "x must be a finite number, got inf"),
        (math.nan, {"low": 0}, "x must be a finite number, got nan"),
        (2.5, {"integer": True}, "x must be a whole number, got 2.5"),
        (-1, {"low": 0}, "x must be >= 0, got -1"),
        (0, {"low": 0, "low_open": True}, "x must be > 0, got 0"),
        (100, {"low": 0.5, "high": 32}, "x must be in [0.5, 32], got 100"),
        (1, {"low": 0, "high": 1, "high_open": True}, "x must be in [0, 1), got 1"),
        (5, {"high": 4}, "x must be <= 4, got 5"),
    ],
)
def test_number_refuses_with_the_fix(value, kwargs, needle):
    with pytest.raises(ValueError) as err:
        validate.number("x", value, "FIX", **kwargs)
    assert needle in str(err.value) and str(err.value).endswith("FIX")


def test_number_accepts_and_converts():
    assert validate.number("x", 4096.0, "", integer=True) == 4096
    assert isinstance(validate.number("x", 4096.0, "", integer=True), int)
    assert validate.number("x", np.float32(0.5), "", low=0, high=1) == 0.5
    assert validate.number("x", np.int64(3), "", integer=True, low=1) == 3
    assert validate.number("x", 0, "", low=0) == 0.0


@given(st.floats(allow_nan=True, allow_infinity=True), st.floats(-10, 10), st.floats(0, 10))
def test_number_returns_only_finite_values_in_range(value, low, width):
    high = low + width
    try:
        got = validate.number("x", value, "", low=low, high=high)
    except ValueError:
        assert not (math.isfinite(value) and low <= value <= high)
    else:
        assert math.isfinite(got) and low <= got <= high and got == value


def test_choice_and_text():
    assert validate.choice("mode", "a", ("a", "b")) == "a"
    with pytest.raises(ValueError, match=r"mode='c'; use one of \('a', 'b'\) \(pick one\)\."):
        validate.choice("mode", "c", ("a", "b"), "pick one")
    with pytest.raises(ValueError, match="use one of"):
        validate.choice("quantize", 1, (True, False, "auto"))  # 1 == True, but not the same type
    assert validate.text("q", "hi", "") == "hi"
    with pytest.raises(ValueError, match="q must be non-empty text, got '  '; ask something"):
        validate.text("q", "  ", "ask something")
