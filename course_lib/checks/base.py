"""The shared shape of an exercise check: pass/fail, a message, a hint. Rendered nicely in notebooks."""

from __future__ import annotations

import html
import inspect
from dataclasses import dataclass


@dataclass
class CheckResult:
    """Outcome of checking a learner's solution. Truthy when it passed."""

    passed: bool
    message: str
    hint: str = ""

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        head = ("PASS: " if self.passed else "NOT YET: ") + self.message
        return head + (f"\nHint: {self.hint}" if self.hint and not self.passed else "")

    def _repr_html_(self) -> str:
        colour = "#1b7f3b" if self.passed else "#b25d00"
        icon = "&#9989;" if self.passed else "&#129300;"
        hint = (
            f"<div style='margin-top:4px'><i>Hint:</i> {html.escape(self.hint)}</div>"
            if self.hint and not self.passed
            else ""
        )
        return (
            f"<div style='border-left:4px solid {colour};padding:6px 10px'>{icon} "
            f"<b>{'Correct' if self.passed else 'Not yet'}</b>: {html.escape(self.message)}{hint}</div>"
        )


def passed(message: str) -> CheckResult:
    return CheckResult(True, message)


def failed(message: str, hint: str = "") -> CheckResult:
    return CheckResult(False, message, hint)


def call_learner(
    fn, args: tuple, signature: str, hint: str = ""
) -> tuple[object, CheckResult | None]:
    """Call the learner's ``fn(*args)`` positionally, so renamed parameters do not matter.

    Returns ``(result, None)``, or ``(None, a failed CheckResult)`` saying which signature is
    expected (when ``fn`` cannot take ``len(args)`` positional arguments) or what it raised.
    """
    try:
        inspect.signature(fn).bind(*args)
    except TypeError:
        return None, failed(
            f"your function must take {len(args)} arguments, in this order: {signature}.",
            "Keep the first line (the def) of the exercise's cell as it was given.",
        )
    except ValueError:  # no signature to inspect (a builtin): just call it
        pass
    try:
        return fn(*args), None
    except Exception as err:  # the learner's code may raise anything
        return None, failed(f"your function raised {type(err).__name__}: {err}", hint)
