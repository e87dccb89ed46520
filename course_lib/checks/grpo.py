"""Exercise checkers for notebook 04 (GRPO, DeepSeekMath §4.1 and DeepSeek-R1 §2.2).

Each checker runs the learner's function on small cases with known answers (computed by
:mod:`course_lib.grpo`) and recognises the usual mistakes: advantages normalised over the whole
batch instead of per group, the clip applied on the wrong side, the KL estimator with the ratio
upside down.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from course_lib import grpo
from course_lib.checks.base import CheckResult, failed, passed

# Three groups of four rewards: different means and spreads, and one group with no spread.
_REWARDS = torch.tensor([[1.0, 0.0, 0.0, 1.0], [2.0, 2.0, 2.0, 2.0], [0.0, 0.0, 0.0, 1.5]])


def _call(fn: Callable, *args) -> tuple[torch.Tensor | None, CheckResult | None]:
    try:
        out = fn(*args)
    except Exception as err:  # the learner's code: report, don't crash the notebook
        return None, failed(
            f"your function raised {type(err).__name__}: {err}", "Run it on a small input first."
        )
    if not isinstance(out, torch.Tensor):
        return None, failed(f"return a torch.Tensor, got {type(out).__name__}.")
    return out.detach().to(torch.float64), None


def _close(a: torch.Tensor, b: torch.Tensor, tol: float = 1e-3) -> bool:
    return a.shape == b.shape and bool(torch.allclose(a, b.to(a.dtype), atol=tol, rtol=tol))


def check_group_advantages(fn: Callable[[torch.Tensor], torch.Tensor]) -> CheckResult:
    """Check ``fn(rewards (P, G)) -> advantages (P, G)``: ``(r − group mean) / group std``.

    Either standard deviation convention (÷G or ÷(G−1)) passes; a small epsilon is fine.
    """
    out, err = _call(fn, _REWARDS.clone())
    if err is not None:
        return err
    if out.shape != _REWARDS.shape:
        return failed(
            f"expected shape {tuple(_REWARDS.shape)} (one advantage per completion), got {tuple(out.shape)}."
        )
    if torch.isnan(out).any() or torch.isinf(out).any():
        return failed(
            "a group whose rewards are all equal gave NaN or inf.",
            "Its std is 0: add a small epsilon, e.g. / (std + 1e-4), so such a group gets advantage 0.",
        )
    mean = _REWARDS.mean(dim=1, keepdim=True)
    refs = [
        (_REWARDS - mean) / (_REWARDS.std(dim=1, keepdim=True, correction=c) + 1e-4) for c in (0, 1)
    ]
    if any(_close(out, r.double(), 1e-2) for r in refs):
        return passed(
            "advantages are (r − mean) / std within each group: the group mean is the baseline."
        )
    flat = _REWARDS.flatten()
    batch = ((flat - flat.mean()) / (flat.std() + 1e-4)).view_as(_REWARDS)
    batch0 = ((flat - flat.mean()) / (flat.std(correction=0) + 1e-4)).view_as(_REWARDS)
    if _close(out, batch.double(), 1e-2) or _close(out, batch0.double(), 1e-2):
        return failed(
            "you normalised over the whole batch, not per group.",
            "Take mean and std along the group dimension (dim=1, keepdim=True): each prompt is its own baseline.",
        )
    if _close(out, (_REWARDS - mean).double(), 1e-3):
        return failed(
            "you subtracted the group mean but did not divide by the group std: that is Dr. GRPO's advantage.",
            "GRPO (DeepSeekMath eq. 3) also divides by std(r) of the group.",
        )
    if out[1].abs().max() > 1e-3:
        return failed(
            "the group whose rewards are all 2.0 got non-zero advantages.",
            "Subtract the group's mean: equal rewards carry no signal about which completion was better.",
        )
    return failed(
        "the values differ from (r − group mean) / group std.",
        "Print your output next to the rewards, group by group.",
    )


def check_clipped_surrogate(
    fn: Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor],
) -> CheckResult:
    """Check ``fn(ratio, advantages, epsilon) -> per-token objective`` (to be maximised)."""
    ratio = torch.tensor([0.5, 0.9, 1.0, 1.1, 1.5, 0.5, 0.9, 1.1, 1.5, 3.0], dtype=torch.float64)
    adv = torch.tensor([1.0, 1.0, 1.0, 1.0, 1.0, -1.0, -1.0, -1.0, -1.0, -2.0], dtype=torch.float64)
    eps = 0.2
    out, err = _call(fn, ratio.clone(), adv.clone(), eps)
    if err is not None:
        return err
    ref = grpo.clipped_surrogate(ratio, adv, eps)
    if _close(out, ref, 1e-6):
        return passed(
            "min(ρ·A, clip(ρ, 1−ε, 1+ε)·A): the policy gains nothing by moving more than ε away."
        )
    if _close(out, torch.maximum(ratio * adv, ratio.clamp(1 - eps, 1 + eps) * adv), 1e-6):
        return failed(
            "you took the max of the two terms: the clip now works on the wrong side (it rewards big moves).",
            "PPO is pessimistic: take torch.minimum of the unclipped and the clipped term.",
        )
    if _close(out, ratio.clamp(1 - eps, 1 + eps) * adv, 1e-6):
        return failed(
            "you return only the clipped term, so a ratio that already moved the wrong way gets no correction.",
            "Take the minimum with the unclipped ρ·A: for A > 0, ρ < 1−ε must still be pushed up.",
        )
    if _close(out, ratio * adv.clamp(-eps, eps), 1e-6) or _close(
        out, ratio * adv.clamp(1 - eps, 1 + eps), 1e-6
    ):
        return failed("you clipped the advantage; clip the ratio ρ into [1−ε, 1+ε].")
    if _close(out, ratio * adv, 1e-6):
        return failed(
            "there is no clipping at all: this is the plain importance-weighted objective."
        )
    return failed(
        "the values differ from min(ρ·A, clip(ρ, 1−ε, 1+ε)·A).",
        "Try ratio = 1.5 and A = 1 by hand: the answer is 1.2.",
    )


def check_kl_estimator(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> CheckResult:
    """Check ``fn(logp, ref_logp) -> per-token KL`` = π_ref/π_θ − log(π_ref/π_θ) − 1 (DSM eq. 4)."""
    logp = torch.log(torch.tensor([0.5, 0.25, 0.1, 0.8, 0.3], dtype=torch.float64))
    ref = torch.log(torch.tensor([0.5, 0.5, 0.3, 0.4, 0.05], dtype=torch.float64))
    out, err = _call(fn, logp.clone(), ref.clone())
    if err is not None:
        return err
    want = grpo.kl_k3(logp, ref)
    if _close(out, want, 1e-6):
        return passed(
            "π_ref/π_θ − log(π_ref/π_θ) − 1: never negative, and its mean under π_θ is the KL."
        )
    if (out < -1e-9).any():
        return failed(
            "some values are negative; this estimator is never negative (x − log x − 1 ≥ 0).",
            "Check the sign of the log term and that you used ratio = π_ref/π_θ = exp(ref_logp − logp).",
        )
    if _close(out, grpo.kl_k3(ref, logp), 1e-6):
        return failed(
            "the ratio is upside down: you used π_θ/π_ref.",
            "DeepSeekMath eq. 4 uses π_ref/π_θ = exp(ref_logp − logp); the tokens are sampled from π_θ.",
        )
    return failed(
        "the values differ from π_ref/π_θ − log(π_ref/π_θ) − 1.",
        "With π_θ = 0.25, π_ref = 0.5 the value is 1 − log 2 ≈ 0.307.",
    )
