"""Exercise checkers for notebook 03 (distillation).

Each checker runs the learner's function on cases with known answers (computed by
:mod:`course_lib.distill`), and when the result is wrong it tries the usual mistakes -- the KL in the
wrong direction, the ``T**2`` factor forgotten or written as ``T``, a temperature applied to one side
only, ``kl_div``'s ``reduction='mean'`` (which also averages over the vocabulary), an answer check that
ignores the format -- to say which one was made. The soft cross-entropy ``-sum p log q`` is not
rejected: it differs from the KL by the teacher's entropy, a constant, so it trains the same.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from course_lib import distill
from course_lib.checks.base import CheckResult, failed, passed


def _cases(seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor, float]]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for temperature, (n, v) in zip([1.0, 2.0, 4.0, 0.5], [(3, 5), (6, 7), (4, 11), (2, 4)]):
        s = torch.randn(n, v, generator=g) * 2
        t = torch.randn(n, v, generator=g) * 2
        out.append((s, t, temperature))
    return out


def _as_float(value) -> float | None:
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            return None
        return float(value.detach())
    if isinstance(value, int | float):
        return float(value)
    return None


def _close(a: float, b: float, tol: float = 1e-4) -> bool:
    return abs(a - b) <= tol * max(1.0, abs(b))


def _entropy(logits: torch.Tensor, temperature: float) -> float:
    """mean over rows of the entropy of softmax(logits / T)."""
    log_p = torch.log_softmax(logits / temperature, -1)
    return float(-(log_p.exp() * log_p).sum(-1).mean())


def _kl(p_logits: torch.Tensor, q_logits: torch.Tensor, tp: float, tq: float) -> float:
    """mean over rows of KL(softmax(p/tp) || softmax(q/tq))."""
    log_p = torch.log_softmax(p_logits / tp, -1)
    log_q = torch.log_softmax(q_logits / tq, -1)
    return float((log_p.exp() * (log_p - log_q)).sum(-1).mean())


def check_kd_loss(fn: Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]) -> CheckResult:
    """Check ``fn(student_logits (N, V), teacher_logits (N, V), T) -> scalar``.

    The expected value is ``T**2 * mean over the N rows of KL(softmax(teacher/T) || softmax(student/T))``.
    """
    soft_cross_entropy = 0  # cases where fn gave T**2 * (KL + H(teacher)) instead of T**2 * KL
    for i, (s, t, temperature) in enumerate(_cases()):
        try:
            got = _as_float(fn(s.clone(), t.clone(), temperature))
        except Exception as err:  # the learner's code may raise anything
            return failed(
                f"your function raised {type(err).__name__}: {err}",
                "It receives two (N, V) tensors of logits and a float T; return a scalar tensor.",
            )
        if got is None:
            return failed(
                "your function should return one number (a scalar tensor) for the whole batch.",
                "Average the per-row KL over the N rows with .mean().",
            )
        want = float(distill.kd_loss(s, t, temperature))
        if _close(got, want):
            continue
        t2 = temperature**2
        n, vocab = s.shape
        if _close(got, want + t2 * _entropy(t, temperature)):
            soft_cross_entropy += 1
            continue
        diagnoses = [
            (
                t2 * _kl(s, t, temperature, temperature),
                "the KL is the wrong way round",
                "Distillation uses KL(teacher || student): the teacher's probabilities p weight "
                "log p - log q. Swap the roles of the two distributions.",
            ),
            (
                _kl(t, s, temperature, temperature),
                "the T**2 factor is missing",
                "Softening by T shrinks the gradients by 1/T**2; multiply the KL by T**2 "
                "(Hinton et al., 2015) so the soft loss keeps its size as T changes.",
            ),
            (
                temperature * _kl(t, s, temperature, temperature),
                "the KL is multiplied by T, not T**2",
                "Softening by T shrinks the soft term's gradient by about 1/T**2 (for large T), so "
                "Hinton et al. multiply by T**2: write T**2, not T.",
            ),
            (
                want / vocab,
                "the KL is also averaged over the vocabulary (kl_div's reduction='mean')",
                "F.kl_div(..., reduction='mean') divides by every element, rows times vocabulary "
                "size; the KL sums over the vocabulary. Use reduction='batchmean' (sum, then / N) "
                "or (p * (log p - log q)).sum(-1).mean().",
            ),
            (
                t2 * _kl(t, s, 1.0, temperature),
                "the teacher's logits are not divided by T",
                "Soften both distributions: softmax(teacher / T) and log_softmax(student / T).",
            ),
            (
                t2 * _kl(t, s, temperature, 1.0),
                "the student's logits are not divided by T",
                "Soften both distributions: softmax(teacher / T) and log_softmax(student / T).",
            ),
            (
                t2 * _kl(t, s, 1.0, 1.0),
                "neither distribution is softened by T",
                "Divide both sets of logits by T before the softmax.",
            ),
            (
                want * n,
                "the KL is summed over rows instead of averaged",
                "Take the mean over the N positions (sum over the vocabulary only).",
            ),
        ]
        for value, what, hint in diagnoses:
            if _close(got, value) and not _close(value, want):
                return failed(f"case {i + 1} (T={temperature}): {what}.", hint)
        return failed(
            f"case {i + 1} (T={temperature}): expected {want:.5f}, got {got:.5f}.",
            "Compute p = softmax(teacher/T), log q = log_softmax(student/T), "
            "KL = (p * (log p - log q)).sum(-1).mean(), and return T**2 * KL.",
        )
    if soft_cross_entropy:
        return passed(
            "this is the soft cross-entropy T**2 * mean(-sum p log q), not the KL: the two differ by "
            "T**2 times the teacher's entropy, a constant the student cannot change, so their "
            "gradients (and the training they drive) are identical. The library reports the KL, "
            "which is 0 for a student that matches the teacher: write p * (log p - log q) to see that."
        )
    # the equal-inputs case must give zero
    s, _, _ = _cases(1)[0]
    zero = _as_float(fn(s.clone(), s.clone(), 2.0))
    if zero is None or abs(zero) > 1e-5:
        return failed(
            "when the student equals the teacher the loss should be 0.",
            "KL(p || p) = 0: check that you use log-probabilities of the same softened distributions.",
        )
    return passed(
        "T**2 * KL(teacher_T || student_T), averaged over positions: this is the logit-KD loss."
    )


def check_soft_targets(fn: Callable[[torch.Tensor, float], torch.Tensor]) -> CheckResult:
    """Check ``fn(logits (..., V), T) -> probabilities (..., V)`` equals ``softmax(logits / T)``."""
    for i, (logits, _, temperature) in enumerate(_cases(2)):
        try:
            got = fn(logits.clone(), temperature)
        except Exception as err:
            return failed(
                f"your function raised {type(err).__name__}: {err}",
                "Return softmax(logits / T) along the last dimension.",
            )
        if not isinstance(got, torch.Tensor) or got.shape != logits.shape:
            return failed(
                f"case {i + 1}: expected a tensor of shape {tuple(logits.shape)}.",
                "Keep the shape: apply the softmax along dim=-1.",
            )
        want = distill.soft_targets(logits, temperature)
        if torch.allclose(got.float(), want, atol=1e-5):
            continue
        if not torch.allclose(got.float().sum(-1), torch.ones(logits.shape[0]), atol=1e-4):
            return failed(
                f"case {i + 1}: the probabilities in a row do not add up to 1.",
                "Normalise: exp(z / T) / exp(z / T).sum(-1), or just torch.softmax(z / T, -1).",
            )
        if temperature != 1.0 and torch.allclose(
            got.float(), torch.softmax(logits * temperature, -1), atol=1e-5
        ):
            return failed(
                f"case {i + 1}: the logits are multiplied by T.",
                "Divide by T: a larger T must make the distribution flatter.",
            )
        if temperature != 1.0 and torch.allclose(got.float(), torch.softmax(logits, -1), atol=1e-5):
            return failed(
                f"case {i + 1}: T is not used.", "Divide the logits by T before the softmax."
            )
        return failed(
            f"case {i + 1} (T={temperature}): the probabilities differ from softmax(logits / T).",
            "Use torch.softmax(logits / T, dim=-1).",
        )
    return passed("softmax(logits / T): T > 1 flattens the distribution, T < 1 sharpens it.")


# (completion, reference answer, keep?, what a wrong verdict reveals)
_FILTER_CASES: list[tuple[str, str, bool, str]] = [
    (
        "<think>12+30=42</think><answer>42</answer>",
        "42",
        True,
        "a correct, well-formed trace was rejected",
    ),
    (
        "<think>9+1=10</think><answer>10</answer>",
        "10",
        True,
        "a correct, well-formed trace was rejected",
    ),
    (
        "<think>12+30=43</think><answer>43</answer>",
        "42",
        False,
        "a wrong answer was kept: check the answer",
    ),
    (
        "<think>12+30=42</think><answer>421</answer>",
        "42",
        False,
        "'421' was accepted for 42: compare the whole answer, not a substring",
    ),
    (
        "<think>1+3=4</think><answer>14</answer>",
        "4",
        False,
        "'14' was accepted for 4: compare the whole answer, not a substring",
    ),
    (
        "<answer>42</answer>",
        "42",
        False,
        "a completion with no <think>...</think> was kept: check the format too",
    ),
    (
        "<think>12+30=42</think><answer>42</answer>!!",
        "42",
        False,
        "a completion with text after </answer> was kept: the format must match exactly",
    ),
    (
        "<think>12+30=42<answer>42</answer>",
        "42",
        False,
        "a completion whose </think> is missing was kept: check the format too",
    ),
    (
        "<think>12+30=</think><answer>42",
        "42",
        False,
        "a completion with no closing </answer> was kept",
    ),
]


def check_keep(fn: Callable[[str, str], bool]) -> CheckResult:
    """Check a rejection-sampling rule ``fn(completion, answer) -> bool``.

    Keep exactly the well-formed completions (:func:`course_lib.formats.is_well_formed`:
    ``<think>...</think><answer>A</answer>``, nothing but white space around the blocks) whose
    ``A`` equals the reference answer.
    """
    for completion, answer, keep, what in _FILTER_CASES:
        try:
            got = fn(completion, answer)
        except Exception as err:
            return failed(
                f"your function raised {type(err).__name__} on {completion!r}: {err}",
                "It gets the completion text and the reference answer; return True or False.",
            )
        if not isinstance(got, bool):
            return failed(f"your function returned {got!r}; return True (keep) or False (reject).")
        if got != keep:
            return failed(
                f"{what} ({completion!r}, reference {answer!r}).",
                "R1 kept a sample only when its answer checked out AND it was readable: "
                "test both, e.g. a regex for the format and an exact match of the answer.",
            )
    return passed(
        "answer AND format: this is the rejection-sampling rule R1 used for its reasoning data."
    )
