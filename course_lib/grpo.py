"""GRPO: Group Relative Policy Optimization, R1-Zero's reinforcement-learning recipe.

Follows DeepSeekMath §4.1 (arXiv 2402.03300) and DeepSeek-R1 §2.2 (arXiv 2501.12948), with the
Dr. GRPO variant from "Understanding R1-Zero-Like Training" (arXiv 2503.20783) and DAPO's
token-level loss (arXiv 2503.14476). The pieces, in the order a training step uses them:

1. **Rewards** (R1 §2.2.2): plain rule-based functions of ``(prompt, completion, answer)``: an
   accuracy reward (the course's answer checker) and a strict format reward
   (``<think>…</think><answer>…</answer>``, each tag exactly once, in order). A deliberately
   naive format reward ("contains ``<answer>``") is here too, for the reward-hacking demo.
2. **Group-relative advantages** (DSM eq. 3, outcome supervision): every token of output *i* gets
   ``(r_i - mean(r)) / std(r)`` over its group of G outputs for the same prompt. The group mean
   replaces PPO's value model. Dr. GRPO drops the division by ``std``.
3. **The clipped surrogate** with per-token ratios ``ρ = π_θ / π_old`` (PPO's clip, ε), minus
   ``β`` times the per-token KL estimator to a frozen reference model,
   ``π_ref/π_θ − log(π_ref/π_θ) − 1`` (Schulman's k3; never negative).
4. **Aggregation** of the per-token objective into one number: GRPO's per-sequence mean
   (``1/|o_i|`` then mean over outputs), Dr. GRPO's constant normaliser (``max_new_tokens``)
   and DAPO's token-level mean over the whole batch.
5. **Rollouts and the trainer**: G sampled completions per prompt from the current policy
   (temperature, TinySeek's batched KV-cache generation), their log-probabilities under the
   sampling policy kept, several optimisation steps per batch of rollouts (so the ratio moves
   away from 1 and the clip matters), metrics per step and a live-plot callback.
6. **A base model to start from**: a pre-training corpus written by careful, careless, lazy and
   plain "students", so the base policy sometimes does the right thing (as V3-Base did for R1-Zero).
7. **The road to scale**: our tokenizer and a dense TinySeek converted to ``transformers``
   (``LlamaForCausalLM``), so the same reward functions can drive TRL's ``GRPOTrainer``.

The loss is tested against a hand-worked two-completion group and against TRL's ``GRPOTrainer``
loss (``loss_type`` "grpo", "dr_grpo", "dapo"; value and gradient) in ``tests/test_grpo.py``.

What is simplified, plainly: one process and one device; the "old" policy's log-probabilities are
recomputed with a teacher-forced forward pass right after sampling (as TRL does) rather than taken
from the sampler's own arithmetic; ``std`` is the unbiased sample standard deviation, as in TRL's
``GRPOTrainer`` (the paper does not say which); the reference model stays frozen for the whole
run; the learning rate is constant; rewards are outcome rewards only (no process supervision).
"""

from __future__ import annotations

import copy
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from course_lib.formats import ANSWER, TAGS, check_answer, format_target, is_well_formed
from course_lib.tasks import Example, addition_trace
from course_lib.tokenizer import BOS, EOS, PAD, CharTokenizer, default_tokenizer
from course_lib.train import IGNORE, Batch, train

RewardFn = Callable[[str, str, str], float]
Aggregation = Literal["grpo", "dr_grpo", "dapo"]
AGGREGATIONS: tuple[str, ...] = ("grpo", "dr_grpo", "dapo")

# --------------------------------------------------------------------------------------------
# 1. Rule-based rewards: plain functions of (prompt, completion, answer) -> float.
# --------------------------------------------------------------------------------------------


def accuracy_reward(prompt: str, completion: str, answer: str) -> float:
    """1.0 when the answer inside ``<answer>…</answer>`` is right, else 0.0 (R1 §2.2.2).

    Uses the course's answer checker (:func:`course_lib.formats.check_answer`), so the completion
    must put its final answer inside the answer tags; text elsewhere is never graded.
    """
    try:
        return 1.0 if check_answer(completion, answer) else 0.0
    except Exception:  # a reward must never crash a training run on odd text
        return 0.0


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


def to_trl_reward(fn: RewardFn, answer_column: str = "answer") -> Callable[..., list[float]]:
    """Wrap one of our reward functions into the shape TRL's ``GRPOTrainer`` calls.

    TRL calls ``reward(prompts=..., completions=..., **dataset_columns)`` and expects one float
    per completion; the dataset's ``answer`` column arrives as a keyword list.
    """

    def reward(prompts, completions, **kwargs) -> list[float]:
        answers = kwargs.get(answer_column) or [""] * len(completions)
        out = []
        for p, c, a in zip(prompts, completions, answers):
            if not isinstance(c, str):  # conversational datasets pass [{"role":..., "content":...}]
                c = c[-1]["content"] if c else ""
            if not isinstance(p, str):
                p = p[-1]["content"] if p else ""
            out.append(float(fn(p, c, a)))
        return out

    reward.__name__ = getattr(fn, "__name__", "reward")
    return reward


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
    if group_size < 2:
        raise ValueError(f"group_size must be >= 2 for a group baseline, got {group_size}.")
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


def _logits(
    model: nn.Module, idx: torch.Tensor, key_mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Call the model and return its logits (B, T, V), whether it returns a tensor or an object."""
    out = model(idx) if key_mask is None else model(idx, key_mask=key_mask)
    return out if isinstance(out, torch.Tensor) else out.logits


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
    ``key_mask`` (N, T) is False at left padding. The temperature is part of the sampling policy,
    so the ratio and the KL use it too (as TRL does).
    """
    logits = _logits(model, input_ids, key_mask)[:, start:-1].float() / temperature  # (N, T', V)
    logp_all = F.log_softmax(logits, dim=-1)
    targets = input_ids[:, start + 1 :]
    logp = logp_all.gather(-1, targets.unsqueeze(-1)).squeeze(-1)  # (N, T')
    entropy = None
    if with_entropy:
        entropy = -(logp_all.exp() * logp_all).sum(dim=-1)
    return logp, entropy


# --------------------------------------------------------------------------------------------
# 5. Rollouts: G sampled completions per prompt from the current policy.
# --------------------------------------------------------------------------------------------


@dataclass
class Rollouts:
    """One batch of rollouts: P prompts × G completions, group by group (N = P·G rows).

    ``input_ids`` (N, Tp + L): left-padded prompt then the L generated tokens; ``key_mask`` False
    at the prompt's left padding; ``mask`` (N, L) 1 on completion tokens (up to and including the
    first ``<eos>``); ``old_logp``/``ref_logp`` (N, L): log-probs of the sampled tokens under the
    sampling policy and the frozen reference.
    """

    prompts: list[str]
    answers: list[str]
    completions: list[str]
    input_ids: torch.Tensor
    key_mask: torch.Tensor
    prompt_len: int
    mask: torch.Tensor
    old_logp: torch.Tensor
    ref_logp: torch.Tensor | None
    rewards: torch.Tensor
    reward_parts: dict[str, torch.Tensor]
    advantages: torch.Tensor
    group_size: int
    truncated: torch.Tensor

    @property
    def lengths(self) -> torch.Tensor:
        return self.mask.sum(dim=1)

    def group(self, i: int) -> dict:
        """The i-th group as plain lists: prompt, completions, rewards, advantages."""
        sl = slice(i * self.group_size, (i + 1) * self.group_size)
        return {
            "prompt": self.prompts[sl.start],
            "answer": self.answers[sl.start],
            "completions": self.completions[sl],
            "rewards": self.rewards[sl].tolist(),
            "advantages": self.advantages[sl].tolist(),
        }


def left_pad(seqs: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-pad token lists into ids (B, T) and a key mask (B, T), False on the padding."""
    T = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), T), pad_id, dtype=torch.long)
    key_mask = torch.zeros((len(seqs), T), dtype=torch.bool)
    for i, s in enumerate(seqs):
        if s:
            ids[i, T - len(s) :] = torch.tensor(list(s), dtype=torch.long)
            key_mask[i, T - len(s) :] = True
    return ids, key_mask


def completion_mask(gen: torch.Tensor, eos_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """For generated tokens (N, L): a mask up to and including the first eos, and which rows never ended."""
    is_eos = gen == eos_id
    seen_before = (is_eos.long().cumsum(dim=1) - is_eos.long()) > 0  # an eos strictly earlier
    mask = (~seen_before).long()
    return mask, ~is_eos.any(dim=1)


@torch.no_grad()
def sample_completions(
    model: nn.Module,
    tokenizer,
    prompts: Sequence[str],
    n: int = 1,
    max_new_tokens: int = 48,
    temperature: float = 1.0,
    top_p: float = 1.0,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor, int, list[str]]:
    """Generate ``n`` completions per prompt in one batched, KV-cached call (temperature 0: greedy).

    Returns ids (P·n, Tp + L), key mask, the padded prompt length Tp, and the completion texts
    (cut at the first ``<eos>``; special tags kept, so the format can be rewarded).
    """
    device = next(model.parameters()).device
    enc = [tokenizer.encode(p, add_bos=True) for p in prompts for _ in range(n)]
    idx, key_mask = left_pad(enc, tokenizer.pad_id)
    idx, key_mask = idx.to(device), key_mask.to(device)
    out = model.generate(
        idx,
        max_new_tokens,
        temperature=temperature,
        top_p=top_p,
        eos_id=tokenizer.eos_id,
        generator=generator,
        key_mask=key_mask,
    )
    tp = idx.shape[1]
    gen = out[:, tp:]
    mask, _ = completion_mask(gen, tokenizer.eos_id)
    texts = []
    for row, m in zip(gen.tolist(), mask.tolist()):
        toks = [t for t, k in zip(row, m) if k and t != tokenizer.eos_id]
        texts.append(tokenizer.decode(toks))
    full_mask = torch.cat([key_mask, torch.ones_like(gen, dtype=torch.bool)], dim=1)
    return out, full_mask, tp, texts


# --------------------------------------------------------------------------------------------
# 6. The trainer.
# --------------------------------------------------------------------------------------------


@dataclass
class GRPOConfig:
    """Every knob of a GRPO run. Defaults suit TinySeek on a CPU, not a 7B model.

    DeepSeekMath used lr 1e-6, β 0.04, G 64, batch 1024 [DSM §4.2]; a 0.1M-parameter model on a
    toy task learns with a far larger learning rate and far smaller batches.
    """

    group_size: int = 8  # G: completions per prompt
    prompts_per_step: int = 8  # P: prompts per batch of rollouts
    max_new_tokens: int = 48
    temperature: float = 1.0
    top_p: float = 1.0
    lr: float = 1e-3
    beta: float = 0.04  # weight of the KL penalty to the reference
    epsilon: float = 0.2  # the clip range
    epsilon_high: float | None = None  # DAPO's wider upper clip; None: = epsilon
    iterations: int = 2  # μ: optimisation steps on each batch of rollouts
    scale_rewards: bool = True  # divide by the group std (GRPO); False: Dr. GRPO
    aggregation: str = "grpo"  # "grpo" | "dr_grpo" | "dapo"
    grad_clip: float | None = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.group_size < 2:
            raise ValueError(
                f"group_size={self.group_size}: GRPO needs G >= 2 completions per prompt."
            )
        for name in ("prompts_per_step", "max_new_tokens", "iterations"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be >= 1.")
        if not 0 < self.epsilon < 1:
            raise ValueError(f"epsilon={self.epsilon} must be in (0, 1); 0.2 is usual.")
        if self.beta < 0:
            raise ValueError(f"beta={self.beta} must be >= 0 (0 turns the KL penalty off).")
        if self.temperature <= 0:
            raise ValueError("temperature must be > 0 for sampling rollouts (1.0 is usual).")
        if self.aggregation not in AGGREGATIONS:
            raise ValueError(f"aggregation={self.aggregation!r}; use one of {AGGREGATIONS}.")

    @classmethod
    def dr_grpo(cls, **kwargs) -> GRPOConfig:
        """Dr. GRPO: no std in the advantage, a constant normaliser in the loss [DrG]."""
        return cls(**({"scale_rewards": False, "aggregation": "dr_grpo"} | kwargs))


def default_rewards() -> list[WeightedReward]:
    """R1-Zero's two rule-based rewards: accuracy and (strict) format, equally weighted."""
    return [
        WeightedReward("accuracy", accuracy_reward, 1.0),
        WeightedReward("format", strict_format_reward, 1.0),
    ]


@torch.no_grad()
def evaluate(
    model: nn.Module,
    tokenizer,
    examples: Sequence,
    max_new_tokens: int = 48,
    batch_size: int = 128,
    temperature: float = 0.0,
    generator: torch.Generator | None = None,
) -> dict[str, float]:
    """Held-out accuracy and strict-format rate, greedy by default (temperature 0)."""
    if not examples:
        raise ValueError("evaluate needs at least one example.")
    acc = fmt = 0.0
    length = 0.0
    for i in range(0, len(examples), batch_size):
        chunk = examples[i : i + batch_size]
        _, _, _, texts = sample_completions(
            model,
            tokenizer,
            [e.prompt for e in chunk],
            1,
            max_new_tokens,
            temperature=temperature,
            generator=generator,
        )
        acc += sum(accuracy_reward(e.prompt, t, e.answer) for e, t in zip(chunk, texts))
        fmt += sum(strict_format_reward(e.prompt, t) for e, t in zip(chunk, texts))
        length += sum(len(tokenizer.encode(t)) for t in texts)
    n = len(examples)
    return {"accuracy": acc / n, "format": fmt / n, "length": length / n}


class GRPOTrainer:
    """GRPO on a TinySeek policy: sample groups, score them, several clipped updates per batch.

    ``rewards`` is a list of :class:`WeightedReward` (default: accuracy + strict format). The
    reference model is a frozen copy of the policy at the start (pass ``ref_model`` to share one).
    ``train(steps, callback=...)`` calls ``callback(trainer, metrics)`` after every step; the
    history of metrics is ``trainer.history`` (one dict per step), sample completions are in
    ``trainer.samples``.
    """

    def __init__(
        self,
        policy: nn.Module,
        tokenizer,
        train_examples: Sequence,
        config: GRPOConfig | None = None,
        rewards: Sequence[WeightedReward] | None = None,
        ref_model: nn.Module | None = None,
        eval_examples: Sequence | None = None,
        eval_every: int = 10,
        sample_every: int = 10,
    ) -> None:
        self.config = config or GRPOConfig()
        if not train_examples:
            raise ValueError("train_examples is empty; pass e.g. tasks.arithmetic(512, seed=1).")
        self.policy = policy
        self.tokenizer = tokenizer
        self.train_examples = list(train_examples)
        self.rewards = list(rewards) if rewards is not None else default_rewards()
        self.ref = ref_model if ref_model is not None else copy.deepcopy(policy)
        self.ref.eval()
        for p in self.ref.parameters():
            p.requires_grad_(False)
        self.eval_examples = list(eval_examples) if eval_examples else []
        self.eval_every = eval_every
        self.sample_every = sample_every
        self.optimizer = torch.optim.AdamW(policy.parameters(), lr=self.config.lr, weight_decay=0.0)
        self.generator = torch.Generator().manual_seed(self.config.seed)
        self.history: list[dict] = []
        self.samples: list[dict] = []
        self.step_count = 0
        self.elapsed = 0.0
        self._order: list[int] = []
        self.last_rollouts: Rollouts | None = None

    # -- rollouts -------------------------------------------------------------------------------
    def _next_examples(self) -> list:
        out = []
        while len(out) < self.config.prompts_per_step:
            if not self._order:
                self._order = torch.randperm(
                    len(self.train_examples), generator=self.generator
                ).tolist()
            out.append(self.train_examples[self._order.pop()])
        return out

    @torch.no_grad()
    def rollout(self, examples: Sequence) -> Rollouts:
        """Sample G completions for each example, score them, and keep the sampling log-probs."""
        cfg, G = self.config, self.config.group_size
        ids, key_mask, tp, texts = sample_completions(
            self.policy,
            self.tokenizer,
            [e.prompt for e in examples],
            G,
            cfg.max_new_tokens,
            cfg.temperature,
            cfg.top_p,
            self.generator,
        )
        mask, truncated = completion_mask(ids[:, tp:], self.tokenizer.eos_id)
        old_logp, _ = token_logprobs(
            self.policy, ids, cfg.temperature, key_mask=key_mask, start=tp - 1
        )
        ref_logp, _ = token_logprobs(
            self.ref, ids, cfg.temperature, key_mask=key_mask, start=tp - 1
        )
        prompts = [e.prompt for e in examples for _ in range(G)]
        answers = [e.answer for e in examples for _ in range(G)]
        total, parts = combine_rewards(self.rewards, prompts, texts, answers)
        adv = group_advantages(total, G, scale=cfg.scale_rewards)
        return Rollouts(
            prompts,
            answers,
            texts,
            ids,
            key_mask,
            tp,
            mask,
            old_logp,
            ref_logp,
            total,
            parts,
            adv,
            G,
            truncated,
        )

    # -- one step -------------------------------------------------------------------------------
    def step(self) -> dict:
        """One GRPO step: a batch of rollouts, then ``iterations`` clipped updates on it."""
        cfg = self.config
        t0 = time.perf_counter()
        ro = self.rollout(self._next_examples())
        self.last_rollouts = ro
        self.policy.train()
        stats = {"loss": 0.0, "kl": 0.0, "clip_fraction": 0.0, "ratio_mean": 0.0}
        entropy = 0.0
        for it in range(cfg.iterations):
            logp, ent = token_logprobs(
                self.policy,
                ro.input_ids,
                cfg.temperature,
                with_entropy=it == 0,
                key_mask=ro.key_mask,
                start=ro.prompt_len - 1,
            )
            out = grpo_loss(
                logp,
                ro.old_logp,
                ro.advantages,
                ro.mask,
                ro.ref_logp,
                cfg.beta,
                cfg.epsilon,
                cfg.epsilon_high,
                cfg.aggregation,
                cfg.max_new_tokens,
            )
            self.optimizer.zero_grad(set_to_none=True)
            out.loss.backward()
            if cfg.grad_clip:
                nn.utils.clip_grad_norm_(self.policy.parameters(), cfg.grad_clip)
            self.optimizer.step()
            if ent is not None:
                m = ro.mask.float()
                entropy = float((ent.detach() * m).sum() / m.sum().clamp(min=1))
            stats["loss"] += float(out.loss.detach()) / cfg.iterations
            stats["kl"] += out.kl / cfg.iterations
            stats["clip_fraction"] += out.clip_fraction / cfg.iterations
            stats["ratio_mean"] += out.ratio_mean / cfg.iterations
        self.elapsed += time.perf_counter() - t0
        acc = [accuracy_reward(p, c, a) for p, c, a in zip(ro.prompts, ro.completions, ro.answers)]
        fmt = [strict_format_reward(p, c) for p, c in zip(ro.prompts, ro.completions)]
        naive = [naive_format_reward(p, c) for p, c in zip(ro.prompts, ro.completions)]
        self.step_count += 1
        row = {
            "step": self.step_count,
            "reward_mean": float(ro.rewards.mean()),
            "reward_std": float(ro.rewards.std()),
            "accuracy": sum(acc) / len(acc),
            "format": sum(fmt) / len(fmt),
            "naive_format": sum(naive) / len(naive),
            "zero_std_fraction": zero_std_fraction(ro.rewards, ro.group_size),
            "entropy": entropy,
            "length": float(ro.lengths.float().mean()),
            "truncated": float(ro.truncated.float().mean()),
            "time_s": self.elapsed,
            **stats,
        }
        if self.sample_every and (self.step_count - 1) % self.sample_every == 0:
            self.samples.append(
                {
                    "step": self.step_count,
                    "prompt": ro.prompts[0],
                    "completion": ro.completions[0],
                    "reward": float(ro.rewards[0]),
                    "correct": bool(acc[0]),
                }
            )
        return row

    def evaluate(self) -> dict[str, float]:
        """Greedy held-out accuracy and format rate of the current policy."""
        return evaluate(self.policy, self.tokenizer, self.eval_examples, self.config.max_new_tokens)

    def train(
        self,
        steps: int,
        callback: Callable[[GRPOTrainer, dict], None] | None = None,
        progress: bool = True,
        desc: str = "GRPO",
    ) -> list[dict]:
        """Run ``steps`` GRPO steps; held-out evaluation every ``eval_every`` steps and at the end."""
        from tqdm.auto import tqdm

        if steps < 1:
            raise ValueError(f"steps={steps} must be >= 1.")
        if self.eval_examples and not self.history:
            ev = self.evaluate()
            self.history.append(
                {
                    "step": 0,
                    "eval_accuracy": ev["accuracy"],
                    "eval_format": ev["format"],
                    "time_s": 0.0,
                }
            )
        # At most one refresh a second: a notebook kernel is not flooded with widget messages.
        bar = tqdm(range(steps), desc=desc, disable=not progress, leave=False, mininterval=1.0)
        for i in bar:
            row = self.step()
            last = i == steps - 1
            if (
                self.eval_examples
                and self.eval_every
                and (self.step_count % self.eval_every == 0 or last)
            ):
                ev = self.evaluate()
                row["eval_accuracy"], row["eval_format"] = ev["accuracy"], ev["format"]
            row["last"] = last
            self.history.append(row)
            if progress:
                bar.set_postfix(
                    reward=f"{row['reward_mean']:.2f}", acc=f"{row['accuracy']:.2f}", refresh=False
                )
            if callback is not None:
                callback(self, row)
        return self.history


# --------------------------------------------------------------------------------------------
# 7. A base model to start from: pre-training text written by careful and careless students.
# --------------------------------------------------------------------------------------------


def careless_addition_trace(terms: Sequence[int]) -> tuple[str, str]:
    """The column-by-column addition trace of a student who forgets every carry.

    ``careless_addition_trace([47, 85]) == ("7+5=12;4+8=12", "122")`` where the careful trace is
    ``"7+5=12;4+8+1=13"`` with answer ``132``. Problems without a carry come out right either way.
    """
    if len(terms) < 1 or any(t < 0 for t in terms):
        raise ValueError("careless_addition_trace needs one or more non-negative integers.")
    digits = [str(t)[::-1] for t in terms]
    steps, units, total = [], [], 0
    for c in range(max(len(d) for d in digits)):
        col = [int(d[c]) for d in digits if c < len(d)]
        total = sum(col)
        steps.append("+".join(map(str, col)) + f"={total}")
        units.append(total % 10)
    answer = str(total) + "".join(str(u) for u in reversed(units[:-1]))
    return ";".join(steps), answer


def needs_carry(prompt: str) -> bool:
    """True when the addition in ``prompt`` (e.g. ``"47+85="``) carries into a later column.

    Exactly the problems the careless student gets wrong (a carry out of the top column is
    harmless: the last column's sum is written out in full).
    """
    terms = [int(t) for t in prompt.rstrip("=").split("+")]
    return careless_addition_trace(terms)[1] != str(sum(terms))


STUDENTS: tuple[str, ...] = ("careful", "careless", "lazy", "plain")


def student_text(ex: Example, student: str) -> str:
    """How one kind of student writes the solution to an addition problem (the text after the prompt).

    - ``careful``: ``<think>7+5=12;4+8+1=13</think><answer>132</answer>`` (the course's target);
    - ``careless``: the same format, every carry forgotten: ``…4+8=12</think><answer>122</answer>``;
    - ``lazy``: no reasoning, an answer tag and a careless guess, never closed: ``<answer>122``;
    - ``plain``: no tags at all: ``7+5=12;4+8+1=13 so 132``.
    """
    terms = [int(t) for t in ex.prompt.rstrip("=").split("+")]
    if student == "careful":
        trace, answer = addition_trace(terms)
        return format_target(answer, trace)
    trace, answer = careless_addition_trace(terms)
    if student == "careless":
        return format_target(answer, trace)
    if student == "lazy":
        return f"{ANSWER}{answer}"
    if student == "plain":
        trace, answer = addition_trace(terms)
        return f"{trace} so {answer}"
    raise ValueError(f"student={student!r}; use one of {STUDENTS}.")


def base_corpus(
    examples: Sequence[Example], mix: dict[str, float], seed: int = 0
) -> list[tuple[str, str]]:
    """A pre-training corpus of (prompt, text) pairs written by a mix of students.

    ``mix`` gives each student's share, e.g. ``{"careful": 0.3, "careless": 0.5, "lazy": 0.1,
    "plain": 0.1}``. A model pre-trained on it imitates all of them: the base policy R1-Zero-style
    RL starts from (DeepSeek-V3-Base had read careful and careless text alike).
    Only additions (``"a+b="``) are supported.
    """
    unknown = [k for k in mix if k not in STUDENTS]
    if unknown or not mix or min(mix.values()) < 0 or sum(mix.values()) <= 0:
        raise ValueError(f"mix needs non-negative shares for students among {STUDENTS}, got {mix}.")
    if any("+" not in ex.prompt or "*" in ex.prompt for ex in examples):
        raise ValueError("base_corpus takes additions only: tasks.arithmetic(..., ops='+').")
    rng = random.Random(f"base-corpus-{seed}")
    names, weights = list(mix), list(mix.values())
    return [(ex.prompt, student_text(ex, rng.choices(names, weights)[0])) for ex in examples]


def text_batch(pairs: Sequence[tuple[str, str]], tokenizer) -> Batch:
    """Right-padded ``<bos>prompt text<eos>`` rows for :func:`course_lib.train.train`; loss on the text only."""
    rows = []
    for prompt, text in pairs:
        p = tokenizer.encode(prompt, add_bos=True)
        rows.append((p + tokenizer.encode(text, add_eos=True), len(p)))
    T = max(len(ids) for ids, _ in rows) - 1
    x = torch.full((len(rows), T), tokenizer.pad_id, dtype=torch.long)
    y = torch.full((len(rows), T), IGNORE, dtype=torch.long)
    for i, (ids, n_prompt) in enumerate(rows):
        seq = torch.tensor(ids)
        x[i, : len(ids) - 1] = seq[:-1]
        y[i, n_prompt - 1 : len(ids) - 1] = seq[n_prompt:]
    return Batch(x, y)


def pretrain_base(
    model: nn.Module,
    corpus: Sequence[tuple[str, str]],
    tokenizer,
    steps: int = 600,
    batch_size: int = 32,
    lr: float = 3e-3,
    seed: int = 0,
    progress: bool = True,
) -> list[dict]:
    """Pre-train ``model`` on the corpus with :func:`course_lib.train.train` (next-token loss on the text)."""
    if not corpus:
        raise ValueError("the corpus is empty; build one with base_corpus(...).")
    gen = torch.Generator().manual_seed(seed)

    def batches(step: int) -> Batch:
        idx = torch.randint(0, len(corpus), (batch_size,), generator=gen).tolist()
        return text_batch([corpus[i] for i in idx], tokenizer)

    return train(model, batches, steps, lr=lr, progress=progress, desc="pre-train base").rows


# --------------------------------------------------------------------------------------------
# 8. The road to scale: the same model and rewards in Hugging Face transformers and TRL.
# --------------------------------------------------------------------------------------------


def hf_tokenizer(tokenizer: CharTokenizer | None = None):
    """Our character tokenizer as a ``transformers`` fast tokenizer, built locally (no download).

    Same ids as ours; ``<bos>`` is prepended to every encoded text; ``<pad> <bos> <eos>`` are
    special tokens (TRL drops them when decoding completions) while the four format tags are
    ordinary single tokens, so decoded completions keep them for the format reward.
    """
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    tok = tokenizer or default_tokenizer()
    core = Tokenizer(models.WordLevel(vocab=dict(tok.stoi), unk_token=PAD))
    core.pre_tokenizer = pre_tokenizers.Split(pattern="", behavior="isolated")  # one char each
    core.decoder = decoders.Fuse()
    core.add_special_tokens(
        [AddedToken(t, special=True, normalized=False) for t in (PAD, BOS, EOS)]
    )
    core.add_tokens([AddedToken(t, special=False, normalized=False) for t in TAGS])
    core.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", special_tokens=[(BOS, tok.bos_id)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=core, bos_token=BOS, eos_token=EOS, pad_token=PAD
    )


def to_llama(model: nn.Module):
    """Copy a dense MHA/GQA/MQA TinySeek into a ``transformers`` ``LlamaForCausalLM``.

    TinySeek's dense block *is* the Llama block (pre-norm RMSNorm, RoPE in the rotate-half layout,
    SwiGLU, no biases, tied embeddings), so the weights map one to one and the logits agree.
    MLA and MoE have no Llama counterpart: use ``transformers``' DeepSeek-V3 classes for those.
    """
    from transformers import LlamaConfig, LlamaForCausalLM

    c = model.config
    if (
        c.attention == "mla"
        or c.ffn != "dense"
        or (c.head_dim not in (None, c.d_model // c.n_heads))
    ):
        raise ValueError(
            "to_llama copies dense TinySeeks with MHA/GQA/MQA and head_dim = d_model // n_heads; "
            f"got attention={c.attention!r}, ffn={c.ffn!r}, head_dim={c.head_dim}."
        )
    tok = default_tokenizer()
    cfg = LlamaConfig(
        vocab_size=c.vocab_size,
        hidden_size=c.d_model,
        intermediate_size=c.d_ff,
        num_hidden_layers=c.n_layers,
        num_attention_heads=c.n_heads,
        num_key_value_heads=c.n_kv_heads,
        head_dim=c.d_model // c.n_heads,
        max_position_embeddings=c.max_seq_len,
        rms_norm_eps=c.norm_eps,
        rope_theta=c.rope_theta,
        tie_word_embeddings=True,
        attention_bias=False,
        mlp_bias=False,
        hidden_act="silu",
        bos_token_id=tok.bos_id,
        eos_token_id=tok.eos_id,
        pad_token_id=tok.pad_id,
    )
    hf = LlamaForCausalLM(cfg)
    state = {
        "model.embed_tokens.weight": model.embed.weight,
        "model.norm.weight": model.norm.weight,
    }
    for i, block in enumerate(model.blocks):
        pre = f"model.layers.{i}."
        state[pre + "input_layernorm.weight"] = block.attn_norm.weight
        state[pre + "post_attention_layernorm.weight"] = block.ffn_norm.weight
        for name in ("q_proj", "k_proj", "v_proj", "o_proj"):
            state[pre + f"self_attn.{name}.weight"] = getattr(block.attn, name).weight
        for name in ("gate_proj", "up_proj", "down_proj"):
            state[pre + f"mlp.{name}.weight"] = getattr(block.ffn, name).weight
    missing, unexpected = hf.load_state_dict(
        {k: v.detach().clone() for k, v in state.items()}, strict=False
    )
    if unexpected or set(missing) - {"lm_head.weight"}:
        raise RuntimeError(f"weight mapping is off: missing {missing}, unexpected {unexpected}.")
    hf.tie_weights()
    return hf
