"""Exercise checkers for notebook 05: entropy of a next-token distribution, splitting thinking from
the answer, and reading the logit lens. Each returns a ``CheckResult`` with a hint when it fails."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from course_lib import formats, look_inside
from course_lib.checks.base import CheckResult, failed, passed


def check_entropy(fn: Callable[[torch.Tensor], float]) -> CheckResult:
    """``fn(logits)`` should return the entropy in nats of softmax(logits) for a 1-D tensor."""
    gen = torch.Generator().manual_seed(0)
    cases = [
        torch.zeros(4),
        torch.tensor([10.0, 0.0, 0.0]),
        torch.randn(50, generator=gen) * 3,
        torch.tensor([1000.0, 999.0, -1000.0]),  # large logits: softmax must not overflow
    ]
    for logits in cases:
        want = float(look_inside.entropy(logits))
        try:
            got = float(fn(logits.clone()))
        except Exception as err:  # the learner's code may fail in any way
            return failed(
                f"your function raised {type(err).__name__}: {err}", "Start from softmax."
            )
        if math.isnan(got):
            return failed(
                f"got nan for logits {logits.tolist()}",
                "Subtract the max logit before exp, or use torch.log_softmax.",
            )
        if not math.isclose(got, want, rel_tol=1e-4, abs_tol=1e-5):
            if math.isclose(got, want / math.log(2), rel_tol=1e-4, abs_tol=1e-5):
                return failed("that is the entropy in bits", "Use the natural log (nats).")
            return failed(
                f"for logits {logits.tolist()[:4]}... expected {want:.4f}, got {got:.4f}",
                "H = -sum_i p_i log p_i with p = softmax(logits).",
            )
    return passed("entropy matches for uniform, peaked, random and huge logits")


SPLIT_CASES = [
    "2 + 3 is 5.\n</think>\n\nThe answer is 5.",
    "Still going, no end yet",
    "First try.</think>Hmm, again.</think>\n\nFinal: 7",
    "<think>\nopened twice</think>answer",
]


def _splits_at_first(text: str) -> set[tuple[str, str]]:
    """The usual slip, splitting at the first </think>, with or without the tags removed after."""
    head, sep, tail = text.partition(formats.THINK_END)
    if not sep:
        return set()

    def clean(part: str) -> str:
        return part.replace(formats.THINK_END, "").replace(formats.THINK, "").strip()

    return {(head.strip(), tail.strip()), (clean(head), clean(tail)), (clean(head), tail.strip())}


def check_split(fn: Callable[[str], tuple[str, str]]) -> CheckResult:
    """``fn(completion)`` should return ``(thinking, answer)`` like ``formats.split_thinking``.

    The prompt already opened ``<think>``; tags must not appear in either part; strip whitespace.
    """
    for text in SPLIT_CASES:
        want = formats.split_thinking(text)
        try:
            got = tuple(fn(text))
        except Exception as err:
            return failed(f"your function raised {type(err).__name__}: {err}", "Try str.rfind.")
        if got != (want.thinking, want.answer):
            hint = "The answer follows the LAST </think>; with none, it is all thinking."
            if got in _splits_at_first(text):
                hint = (
                    "You split at the FIRST </think>. A model may close its thinking more than once "
                    "(here it writes </think> twice); the answer is what follows the LAST one: "
                    "use text.rfind, not text.find."
                )
            elif formats.THINK_END in "".join(map(str, got)) or formats.THINK in "".join(
                map(str, got)
            ):
                hint = "Remove the <think> and </think> tags from both parts."
            return failed(
                f"for {text!r} expected {(want.thinking, want.answer)!r}, got {got!r}", hint
            )
    return passed("thinking and answer split correctly, repeated and missing tags included")


def first_settled_layer(lens: look_inside.LogitLens, position: int = -1) -> int:
    """The first layer row from which the top guess at ``position`` never changes again."""
    top = lens.top_ids[:, position, 0]  # (L+1,)
    final = top[-1]
    row = len(top) - 1
    while row > 0 and top[row - 1] == final:
        row -= 1
    return row


def check_settled_layer(answer: int, lens: look_inside.LogitLens) -> CheckResult:
    """From which row of the logit lens (0 = embeddings) is the last position's guess final?"""
    want = first_settled_layer(lens)
    if answer == want:
        return passed(f"from row {want} ({lens.layer_names[want]}) on, the guess stays the same")
    return failed(
        f"row {answer} is not it",
        "Look at the last column; go up from the bottom row while the top token stays the same.",
    )
