"""Exercise checkers for notebook 04 (GRPO, DeepSeekMath §4.1 and DeepSeek-R1 §2.2).

Each checker runs the learner's function on small cases with known answers (computed by
:mod:`course_lib.grpo`) and recognises the usual mistakes: advantages normalised over the whole
batch instead of per group, the clip applied on the wrong side (or flipped to a max for negative
advantages), the KL estimator with the ratio upside down, and, for the assembled objective, a flipped
advantage, the loss returned for the objective, the KL added, DAPO's upper clip ignored, padding
counted and one aggregation taken for another.
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


_WHERE_CLIP = (
    "you take the min for A ≥ 0 but the max for A < 0: for negative advantages the max keeps the "
    "term that rewards pushing ρ far below 1 − ε, so the clip no longer holds the update back."
)
_WHERE_CLIP_HINT = (
    "No case split is needed: with A < 0 the products flip order, so torch.minimum of ρ·A and "
    "clip(ρ)·A already picks the pessimistic one on both sides. Use torch.minimum for every token."
)


def _where_clip(unclipped: torch.Tensor, clipped: torch.Tensor, adv: torch.Tensor) -> torch.Tensor:
    """The sign-conditional clip learners write: min for A >= 0, max for A < 0."""
    return torch.where(
        adv >= 0, torch.minimum(unclipped, clipped), torch.maximum(unclipped, clipped)
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
    if _close(out, _where_clip(ratio * adv, ratio.clamp(1 - eps, 1 + eps) * adv, adv), 1e-6):
        return failed(_WHERE_CLIP, _WHERE_CLIP_HINT)
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


# --------------------------------------------------------------------------------------------
# The assembled objective: ratio -> clipped surrogate (ε_low, ε_high) -> − β·KL -> aggregation.
# --------------------------------------------------------------------------------------------

_AGG_WORDS = {
    "grpo": "GRPO's per-answer mean (each answer's token sum over its own length |o_i|, then the mean over answers)",
    "dapo": "DAPO's token-level mean (the sum over every completion token of the batch / their number)",
    "dr_grpo": "Dr. GRPO's constant normaliser (the sum over every completion token / (N · max_tokens))",
}


def _objective_cases() -> list[dict]:
    """Six completions of different lengths, ratios on both sides of the band, mixed advantages."""
    g = torch.Generator().manual_seed(4)
    n, t = 6, 5
    logp = -torch.rand(n, t, generator=g, dtype=torch.float64) - 0.1
    old = logp + 0.35 * torch.randn(n, t, generator=g, dtype=torch.float64)  # ρ from ~0.5 to ~2
    ref = logp + 0.5 * torch.randn(n, t, generator=g, dtype=torch.float64)
    mask = torch.tensor([[1] * k + [0] * (t - k) for k in (5, 2, 4, 1, 3, 5)])
    adv = torch.tensor([1.2, -0.7, 0.4, -1.5, 0.9, -0.3], dtype=torch.float64)
    base = dict(logp=logp, old_logp=old, ref_logp=ref, advantages=adv, mask=mask, max_tokens=8)
    return [
        base | dict(beta=0.04, eps_low=0.2, eps_high=0.28, how=how)
        for how in ("grpo", "dapo", "dr_grpo")
    ] + [base | dict(beta=0.1, eps_low=0.1, eps_high=0.3, how="grpo")]


def _objective(c: dict, mistake: str | None = None) -> torch.Tensor:
    """The objective for case ``c``, or the value one typical ``mistake`` gives."""
    lo, hi = c["eps_low"], c["eps_high"]
    if mistake == "symmetric clip":
        hi = lo
    if mistake == "swapped clip":
        lo, hi = hi, lo
    adv = (-c["advantages"] if mistake == "flipped advantage" else c["advantages"]).unsqueeze(1)
    ratio = torch.exp(c["logp"] - c["old_logp"])
    unclipped, clipped = ratio * adv, ratio.clamp(1 - lo, 1 + hi) * adv
    if mistake == "where clip":
        surrogate = _where_clip(unclipped, clipped, adv)
    elif mistake == "no min":
        surrogate = clipped
    else:
        surrogate = torch.minimum(unclipped, clipped)
    if mistake == "kl upside down":
        kl = grpo.kl_k3(c["ref_logp"], c["logp"])
    else:
        kl = grpo.kl_k3(c["logp"], c["ref_logp"])
    sign = {"kl added": 1.0, "no kl": 0.0}.get(mistake or "", -1.0)
    per_token = surrogate + sign * c["beta"] * kl
    mask = torch.ones_like(c["mask"]) if mistake == "padding counted" else c["mask"]
    how = mistake.split(":", 1)[1] if mistake and mistake.startswith("as:") else c["how"]
    value = grpo.aggregate(per_token, mask, how, c["max_tokens"])
    return -value if mistake == "loss" else value


def _objective_diagnosis(mistake: str, c: dict) -> tuple[str, str]:
    if mistake.startswith("as:"):
        used = mistake.split(":", 1)[1]
        return (
            f"for how={c['how']!r} you aggregated as {used!r}: {_AGG_WORDS[used]}.",
            f"how={c['how']!r} asks for {_AGG_WORDS[c['how']]}; always multiply by the mask first, "
            "so padding counts for nothing.",
        )
    return {
        "where clip": (_WHERE_CLIP, _WHERE_CLIP_HINT),
        "flipped advantage": (
            "the advantage enters with the wrong sign: answers better than their group would be "
            "made less likely.",
            "The surrogate is min(ρ·A, clip(ρ)·A) with A as given; maximising it raises the "
            "probability of tokens whose A is positive.",
        ),
        "loss": (
            "you returned the loss (−J), the objective with its sign flipped.",
            "This exercise asks for the objective J that GRPO maximises; negate it only when you "
            "hand it to an optimiser that minimises (as grpo.grpo_loss does).",
        ),
        "kl added": (
            "the KL term is added: + β·KL would reward drifting away from the reference model.",
            "Subtract it: per token, min(ρ·A, clip(ρ)·A) − β·KL.",
        ),
        "no kl": (
            "the β·KL term is missing (β is not used).",
            "Subtract β times the per-token KL, (π_ref/π_θ) − log(π_ref/π_θ) − 1, before aggregating.",
        ),
        "kl upside down": (
            "the KL estimator has its ratio upside down: you used π_θ/π_ref.",
            "DeepSeekMath eq. 4 uses x = π_ref/π_θ = exp(ref_logp − logp), then x − log x − 1.",
        ),
        "symmetric clip": (
            "the upper clip uses ε_low: ε_high is ignored.",
            "DAPO's clip-higher clips ρ into [1 − ε_low, 1 + ε_high]: "
            "ratio.clamp(1 - eps_low, 1 + eps_high).",
        ),
        "swapped clip": (
            "ε_low and ε_high are swapped: the band is [1 − ε_high, 1 + ε_low].",
            "The lower edge is 1 − ε_low, the upper 1 + ε_high.",
        ),
        "no min": (
            "you kept only the clipped term, so a ratio that moved the wrong way gets no correction.",
            "Take torch.minimum of ρ·A and clip(ρ)·A.",
        ),
        "padding counted": (
            "padding positions count: the mask is not applied.",
            "Multiply the per-token objective by the mask before summing, and count only real tokens.",
        ),
    }[mistake]


_MISTAKES = (
    "loss", "flipped advantage", "where clip", "no min", "kl added", "no kl", "kl upside down",
    "symmetric clip", "swapped clip", "padding counted", "as:grpo", "as:dapo", "as:dr_grpo",
)  # fmt: skip


def check_grpo_objective(fn: Callable) -> CheckResult:
    """Check ``fn(logp, old_logp, ref_logp, advantages, mask, beta, eps_low, eps_high, how,
    max_tokens) -> J``: the GRPO objective (to be maximised) for aggregation ``how``.

    ``logp``, ``old_logp``, ``ref_logp`` and ``mask`` are (N, T); ``advantages`` (N,). The value must
    equal ``-grpo.grpo_loss(..., epsilon=eps_low, epsilon_high=eps_high).loss`` for every
    aggregation ("grpo", "dapo", "dr_grpo").
    """
    for i, c in enumerate(_objective_cases()):
        args = {k: (v.clone() if isinstance(v, torch.Tensor) else v) for k, v in c.items()}
        try:
            out = fn(**args)
        except Exception as err:  # the learner's code: report, don't crash the notebook
            return failed(
                f"your function raised {type(err).__name__}: {err}",
                "Keep the signature (logp, old_logp, ref_logp, advantages, mask, beta, eps_low, "
                "eps_high, how, max_tokens) and build it in order: ratio, clipped surrogate, "
                "− β·KL, then aggregate over the mask.",
            )
        if not isinstance(out, torch.Tensor) or out.numel() != 1:
            return failed(
                "return one number (a scalar tensor): the objective aggregated over the batch.",
                "Aggregate the (N, T) per-token objective as `how` says.",
            )
        got = out.detach().double().reshape(())
        want = -grpo.grpo_loss(
            c["logp"], c["old_logp"], c["advantages"], c["mask"], c["ref_logp"], c["beta"],
            c["eps_low"], c["eps_high"], c["how"], c["max_tokens"],
        ).loss.detach()  # fmt: skip
        if _close(got, want, 1e-6):
            continue
        for mistake in _MISTAKES:
            value = _objective(c, mistake)
            if _close(got, value, 1e-6) and not _close(value, want, 1e-6):
                what, hint = _objective_diagnosis(mistake, c)
                return failed(f"case {i + 1} (how={c['how']!r}): {what}", hint)
        return failed(
            f"case {i + 1} (how={c['how']!r}, β={c['beta']}, ε=({c['eps_low']}, {c['eps_high']})): "
            f"expected {float(want):.6f}, got {float(got):.6f}.",
            "Per token: ρ = exp(logp − old_logp); min(ρ·A, clip(ρ, 1−ε_low, 1+ε_high)·A) − β·KL; "
            "then aggregate over the mask.",
        )
    return passed(
        "ratio → clipped surrogate → − β·KL → aggregate: the objective GRPO maximises, for all "
        "three aggregations."
    )
