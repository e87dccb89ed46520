"""Checks on what a notebook passes in: types, finiteness and ranges, each error naming the fix.

The course's public functions call these at their boundary, so a wrong argument stops with a
course message (``bits must be a number in [1, 32], got 100; pass bits per weight, e.g. 16, 8, 4
or 1.58.``) instead of a wrong number or a stack trace from deep inside torch. Nothing here knows
about models or papers; it imports nothing from the course, so every module may use it.

Conventions the checks enforce:

* A number is an ``int`` or ``float`` (NumPy scalars too), never a ``bool`` or a string, and
  always finite: ``inf`` and ``nan`` are refused everywhere.
* A count (``integer=True``) is a whole number; ``4096.0`` is read as ``4096``, ``2.5`` refused.
* Memory is in **bytes** in every argument and return value (``sizing.GB`` = 1e9 bytes converts);
  GB appears only in printed text and in the published specs' ``*_gb`` fields.
"""

from __future__ import annotations

import math
import numbers


def number(
    name: str,
    value,
    fix: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    integer: bool = False,
):
    """``value`` as a float (an int with ``integer=True``) if it is a finite number in range.

    The range is ``[low, high]``; ``low_open`` / ``high_open`` exclude an end. Otherwise raises a
    ValueError: ``"{name} must be ..., got {value!r}; {fix}"``.
    """
    kind = "a whole number" if integer else "a number"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be {kind}, got {value!r} (a {type(value).__name__}); {fix}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be a finite number, got {value!r}; {fix}")
    if integer:
        if not v.is_integer():
            raise ValueError(f"{name} must be a whole number, got {value!r}; {fix}")
        v = int(v)
    too_low = low is not None and (v <= low if low_open else v < low)
    too_high = high is not None and (v >= high if high_open else v > high)
    if too_low or too_high:
        raise ValueError(
            f"{name} must be {_range(low, high, low_open, high_open)}, got {value!r}; {fix}"
        )
    return v


def _range(low, high, low_open: bool, high_open: bool) -> str:
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if low is not None:
        return f"{'>' if low_open else '>='} {low:g}"
    return f"{'<' if high_open else '<='} {high:g}"


def choice(name: str, value, options, fix: str = ""):
    """``value`` if it is one of ``options`` (compared with ==, types included), else ValueError."""
    if not any(value == o and type(value) is type(o) for o in options):
        raise ValueError(
            f"{name}={value!r}; use one of {tuple(options)}" + (f" ({fix})." if fix else ".")
        )
    return value


def text(name: str, value, fix: str) -> str:
    """``value`` if it is a string with something besides white space in it, else ValueError."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be non-empty text, got {value!r}; {fix}")
    return value
