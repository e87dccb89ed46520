"""GRPO: Group Relative Policy Optimization, R1-Zero's reinforcement-learning recipe -- the math.

Follows DeepSeekMath §4.1 (arXiv 2402.03300) and DeepSeek-R1 §2.2 (arXiv 2501.12948), with the
Dr. GRPO variant from "Understanding R1-Zero-Like Training" (arXiv 2503.20783) and DAPO's
token-level loss (arXiv 2503.14476); docs/references.md "GRPO and R1-Zero". The pieces, in the order
a training step uses them:

1. **Rewards** (R1 §2.2.2): plain rule-based functions of ``(prompt, completion, answer)``: an
   accuracy reward (the course's answer checker) and a strict format reward (the course's format
   check, :func:`course_lib.formats.is_well_formed`). A deliberately naive format reward
   ("contains ``<answer>``") is here too, for the reward-hacking demo.
2. **Group-relative advantages** (DSM eq. 3, outcome supervision): every token of output *i* gets
   ``(r_i - mean(r)) / std(r)`` over its group of G outputs for the same prompt. The group mean
   replaces PPO's value model. Dr. GRPO drops the division by ``std``.
3. **The clipped surrogate** with per-token ratios ``ρ = π_θ / π_old`` (PPO's clip, ε), minus
   ``β`` times the per-token KL estimator to a frozen reference model,
   ``π_ref/π_θ − log(π_ref/π_θ) − 1`` (Schulman's k3; never negative).
4. **Aggregation** of the per-token objective into one number: GRPO's per-sequence mean
   (``1/|o_i|`` then mean over outputs), Dr. GRPO's constant normaliser (``max_new_tokens``)
   and DAPO's token-level mean over the whole batch.
5. **Log-probabilities** of the sampled tokens under a model, the ingredient of the ratio and KL.

The rollouts and the long run are :mod:`course_lib.grpo_trainer`; the base model it starts from,
:mod:`course_lib.students`; the same rewards in TRL, :mod:`course_lib.hf_bridge`. The loss is
tested against a hand-worked two-completion group and against TRL's ``GRPOTrainer`` loss
(``loss_type`` "grpo", "dr_grpo", "dapo"; value and gradient) in ``tests/test_grpo.py``.

What is simplified, plainly: ``std`` is the unbiased sample standard deviation, as in TRL's
``GRPOTrainer`` (the paper does not say which); rewards are outcome rewards only (no process
supervision).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from course_lib import validate
from course_lib.formats import ANSWER, check_answer, is_well_formed

RewardFn = Callable[[str, str, str], float]
Aggregation = Literal["grpo", "dr_grpo", "dapo"]
AGGREGATIONS: tuple[str, ...] = ("grpo", "dr_grpo", "dapo")

# --------------------------------------------------------------------------------------------
# 1. Rule-based rewards: plain functions of (prompt, completion, answer) -> float.
# --------------------------------------------------------------------------------------------


def accuracy_reward(prompt: str, completion: str, answer: str) -> float:
    """1.0 when the answer inside ``<answer>…</answer>`` is right, else 0.0 (R1 §2.2.2).

    Uses the course's answer checker (:func:`course_lib.formats.check_answer`), so the completion
    must put its final answer inside the answer tags, after the thinking; text elsewhere, and an
    answer block inside ``<think>…</think>``, is never graded. A completion that is not text scores
    0.0; a missing or empty reference ``answer`` is a mistake in the data and raises ValueError.
    """
    if not isinstance(completion, str):
        return 0.0
    return 1.0 if check_answer(completion, answer) else 0.0


def strict_format_reward(prompt: str, completion: str, answer: str | None = None) -> float:
    """1.0 when the completion is well formed, else 0.0 (R1-Zero's format reward).

    Well formed is :func:`course_lib.formats.is_well_formed`: one ``<think>`` block with some
    thinking, then one ``<answer>`` block with an answer, only white space around them.
    """
    return 1.0 if is_well_formed(completion) else 0.0


def naive_format_reward(prompt: str, completion: str, answer: str | None = None) -> float:
    """1.0 whenever ``<answer>`` appears anywhere. Deliberately naive: a policy learns to game it.

    This is the kind of shortcut reward the R1 paper warns about (reward hacking, R1 §2.2.2):
    it pays for the tag, not for a well-formed response. Compare :func:`strict_format_reward`.
    """
    if not isinstance(completion, str):
        return 0.0
    return 1.0 if ANSWER in completion else 0.0


@dataclass(frozen=True)
class WeightedReward:
    """One named reward function with its weight in the total."""

    name: str
    fn: RewardFn
    weight: float = 1.0


def combine_rewards(
    parts: Sequence[WeightedReward],
    prompts: Sequence[str],
    completions: Sequence[str],
    answers: Sequence[str],
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Score every completion with every reward; return (weighted total, per-reward values).

    ``prompts``, ``completions`` and ``answers`` have one entry per completion (length N).
    Returns a float tensor of shape (N,) and a dict name -> (N,) tensor.
    """
    if not parts:
        raise ValueError(
            "combine_rewards needs at least one reward, e.g. [WeightedReward('accuracy', accuracy_reward)]."
        )
    if not (len(prompts) == len(completions) == len(answers)):
        raise ValueError(
            f"prompts ({len(prompts)}), completions ({len(completions)}) and answers ({len(answers)}) "
            "must have one entry per completion; repeat each prompt G times."
        )
    values: dict[str, torch.Tensor] = {}
    total = torch.zeros(len(completions))
    for part in parts:
        vals = torch.tensor(
            [float(part.fn(p, c, a)) for p, c, a in zip(prompts, completions, answers)],
            dtype=torch.float32,
        )
        values[part.name] = vals
        total = total + part.weight * vals
    return total, values


# --------------------------------------------------------------------------------------------
# 2. Group-relative advantages.
# --------------------------------------------------------------------------------------------


def group_advantages(
    rewards: torch.Tensor, group_size: int, scale: bool = True, eps: float = 1e-4
) -> torch.Tensor:
    """Advantages ``(r_i − mean_group) / (std_group + eps)``; with ``scale=False``, Dr. GRPO's ``r_i − mean``.

    ``rewards`` is flat (N,) with N = number of prompts × ``group_size``, ordered group by group
    (the G completions of prompt 0 first). Returns (N,). A group whose rewards are all equal gets
    zero advantages: it teaches nothing (see :func:`zero_std_fraction`).
    """
    rewards = torch.as_tensor(rewards)
    if not rewards.is_floating_point():
        rewards = rewards.float()
    if rewards.dim() != 1:
        raise ValueError(
            f"rewards must be flat (N,), got shape {tuple(rewards.shape)}; use rewards.flatten()."
        )
    validate.number(
        "group_size", group_size, "a group baseline needs G >= 2 completions per prompt.",
        low=2, integer=True,
    )  # fmt: skip
    if not bool(torch.isfinite(rewards).all()):
        raise ValueError(
            "rewards hold NaN or inf; every reward function must return a finite number "
            "(check the one that produced them, e.g. with combine_rewards' per-reward values)."
        )
    if rewards.numel() % group_size:
        raise ValueError(
            f"{rewards.numel()} rewards do not split into groups of {group_size}; "
            "pass G completions for every prompt."
        )
    grouped = rewards.view(-1, group_size)  # (P, G)
    adv = grouped - grouped.mean(dim=1, keepdim=True)
    if scale:
        adv = adv / (grouped.std(dim=1, keepdim=True) + eps)  # unbiased std, as TRL
    return adv.reshape(-1)


def zero_std_fraction(rewards: torch.Tensor, group_size: int) -> float:
    """Fraction of groups whose rewards are all equal (zero advantage, no learning signal)."""
    grouped = torch.as_tensor(rewards, dtype=torch.float32).view(-1, group_size)
    return float((grouped.max(dim=1).values == grouped.min(dim=1).values).float().mean())


# --------------------------------------------------------------------------------------------
# 3. Per-token pieces of the objective.
# --------------------------------------------------------------------------------------------


def kl_k3(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """Per-token KL estimator ``π_ref/π_θ − log(π_ref/π_θ) − 1`` (DSM eq. 4); elementwise, ≥ 0.

    Unbiased for KL(π_θ || π_ref) when tokens are sampled from π_θ, and never negative.
    """
    log_ratio = ref_logp - logp
    return torch.exp(log_ratio) - log_ratio - 1.0


def _check_clip(epsilon: float, epsilon_high: float | None) -> None:
    validate.number(
        "epsilon", epsilon, "the clip range; 0.2 is usual.", low=0, high=1, low_open=True,
        high_open=True,
    )  # fmt: skip
    if epsilon_high is not None:
        validate.number(
            "epsilon_high", epsilon_high, "the upper clip range; None uses epsilon.", low=0,
            low_open=True,
        )  # fmt: skip


def clipped_surrogate(
    ratio: torch.Tensor,
    advantages: torch.Tensor,
    epsilon: float = 0.2,
    epsilon_high: float | None = None,
) -> torch.Tensor:
    """PPO's per-token objective ``min(ρ·A, clip(ρ, 1−ε, 1+ε_high)·A)`` (to be maximised).

    The ``min`` makes it pessimistic: a ratio outside the band can only lower the objective, never
    raise it, so the policy gains nothing by moving further than ε from the sampling policy.
    ``advantages`` broadcasts against ``ratio`` (e.g. (N, 1) against (N, T)).
    """
    _check_clip(epsilon, epsilon_high)
    hi = epsilon if epsilon_high is None else epsilon_high
    return torch.minimum(
        ratio * advantages, torch.clamp(ratio, 1.0 - epsilon, 1.0 + hi) * advantages
    )


def aggregate(
    per_token: torch.Tensor,
    mask: torch.Tensor,
    how: Aggregation = "grpo",
    max_tokens: int | None = None,
) -> torch.Tensor:
    """Reduce a per-token quantity (N, T) over completion tokens (``mask`` 1) to a scalar.

    - ``"grpo"``: ``mean_i (1/|o_i|) Σ_t x_it`` — each output weighs the same (DSM eq. 3).
    - ``"dr_grpo"``: ``Σ_it x_it / (N · max_tokens)`` — a constant normaliser, no length bias.
    - ``"dapo"``: ``Σ_it x_it / Σ_i |o_i|`` — every token weighs the same (DAPO).
    """
    mask = mask.to(per_token.dtype)
    masked = per_token * mask
    if how == "grpo":
        lengths = mask.sum(dim=1).clamp(min=1.0)
        return (masked.sum(dim=1) / lengths).mean()
    if how == "dr_grpo":
        if max_tokens is None or max_tokens < 1:
            raise ValueError(
                "aggregation 'dr_grpo' needs max_tokens (the generation budget, e.g. 32)."
            )
        return masked.sum() / (per_token.shape[0] * max_tokens)
    if how == "dapo":
        return masked.sum() / mask.sum().clamp(min=1.0)
    raise ValueError(f"aggregation {how!r} is not one of {AGGREGATIONS}.")


@dataclass
class LossOutput:
    """The GRPO loss (to minimise) and what it is made of, for metrics."""

    loss: torch.Tensor
    objective: float  # aggregated surrogate − β·KL (what GRPO maximises)
    kl: float  # mean per-token KL to the reference over completion tokens
    clip_fraction: float  # share of completion tokens whose gradient the clip removed
    ratio_mean: float


def grpo_loss(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    ref_logp: torch.Tensor | None = None,
    beta: float = 0.04,
    epsilon: float = 0.2,
    epsilon_high: float | None = None,
    aggregation: Aggregation = "grpo",
    max_tokens: int | None = None,
) -> LossOutput:
    """The GRPO loss for a batch of completions: −aggregate(min(ρA, clip(ρ)A) − β·KL).

    Shapes: ``logp``, ``old_logp``, ``ref_logp``, ``mask``: (N, T) per completion token (the
    log-probability each policy gave the sampled token); ``advantages``: (N,). ``logp`` carries
    the gradient; ``old_logp`` and ``ref_logp`` are treated as constants.
    """
    if logp.shape != old_logp.shape or logp.shape != mask.shape:
        raise ValueError(
            f"logp {tuple(logp.shape)}, old_logp {tuple(old_logp.shape)} and mask {tuple(mask.shape)} "
            "must share one (N, T) shape."
        )
    if advantages.shape != (logp.shape[0],):
        raise ValueError(
            f"advantages must be (N,) = ({logp.shape[0]},), got {tuple(advantages.shape)}."
        )
    validate.number("beta", beta, "0 turns the KL penalty off; 0.04 is DeepSeekMath's.", low=0)
    _check_clip(epsilon, epsilon_high)
    if beta > 0 and ref_logp is None:
        raise ValueError("beta > 0 needs ref_logp from the frozen reference model (or set beta=0).")
    adv = advantages.detach().unsqueeze(1)  # (N, 1)
    ratio = torch.exp(logp - old_logp.detach())  # (N, T)
    per_token = clipped_surrogate(ratio, adv, epsilon, epsilon_high)
    maskf = mask.to(logp.dtype)
    n_tok = maskf.sum().clamp(min=1.0)
    if ref_logp is not None:
        kl = kl_k3(logp, ref_logp.detach())
        kl_mean = float((kl.detach() * maskf).sum() / n_tok)
        if beta > 0:
            per_token = per_token - beta * kl
    else:
        kl_mean = 0.0
    objective = aggregate(per_token, mask, aggregation, max_tokens)
    hi = epsilon if epsilon_high is None else epsilon_high
    with torch.no_grad():
        clipped = ((ratio < 1 - epsilon) & (adv < 0)) | ((ratio > 1 + hi) & (adv > 0))
        clip_frac = float((clipped.to(maskf.dtype) * maskf).sum() / n_tok)
        ratio_mean = float((ratio * maskf).sum() / n_tok)
    return LossOutput(-objective, float(objective.detach()), kl_mean, clip_frac, ratio_mean)


# --------------------------------------------------------------------------------------------
# 4. Log-probabilities of sampled tokens under a model.
# --------------------------------------------------------------------------------------------


def token_logprobs(
    model: nn.Module,
    input_ids: torch.Tensor,
    temperature: float = 1.0,
    with_entropy: bool = False,
    key_mask: torch.Tensor | None = None,
    start: int = 0,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Log-probability of every next token under ``model`` (logits divided by ``temperature``).

    ``input_ids`` (N, T) -> log-probs (N, T−1−start), where entry t scores token start+t+1 given
    the tokens before it; with ``with_entropy`` also the entropy of each next-token distribution.
    ``model`` is a TinySeek; ``key_mask`` (N, T) is False at left padding. The temperature is part of the sampling policy,
    so the ratio and the KL use it too (as TRL does).
    """
    logits = model(input_ids, key_mask=key_mask)[:, start:-1].float() / temperature  # (N, T', V)
    logp_all = F.log_softmax(logits, dim=-1)
    targets = input_ids[:, start + 1 :]
    logp = logp_all.gather(-1, targets.unsqueeze(-1)).squeeze(-1)  # (N, T')
    entropy = None
    if with_entropy:
        entropy = -(logp_all.exp() * logp_all).sum(dim=-1)
    return logp, entropy
