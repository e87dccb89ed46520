"""The GRPO trainer: rollouts from the current policy, rewards, several clipped updates per batch.

R1-Zero's loop ([R1] §2.2, [DSM] §4.1, Algorithm 1; docs/references.md "GRPO and R1-Zero"), on a
TinySeek policy: each step samples G completions for each of P prompts (temperature, batched,
KV-cached: :func:`course_lib.sampling.sample`), keeps their log-probabilities under the sampling
policy and the frozen reference, scores them with rule-based rewards, turns rewards into
group-relative advantages, and takes ``iterations`` optimizer steps on the clipped objective (μ in
[DSM] Algorithm 1; with more than one the ratio moves away from 1 and the clip matters, while
DeepSeekMath's own run made a single update per batch [DSM §4.2]). The math is :mod:`course_lib.grpo`; this module
is the bookkeeping around it: metrics per step, held-out evaluation, a callback for live plots.

What is simplified, plainly: one process and one device; the "old" policy's log-probabilities are
recomputed with a teacher-forced forward pass right after sampling (as TRL does) rather than taken
from the sampler's own arithmetic; the reference model stays frozen for the whole run; the learning
rate is constant.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from course_lib import validate
from course_lib.grpo import (
    AGGREGATIONS,
    WeightedReward,
    accuracy_reward,
    combine_rewards,
    group_advantages,
    grpo_loss,
    naive_format_reward,
    strict_format_reward,
    token_logprobs,
    zero_std_fraction,
)
from course_lib.sampling import EvalResult, evaluate, sample


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
    # μ: optimisation steps on each batch of rollouts. DeepSeekMath made one ("a single update
    # following each exploration stage" [DSM §4.2]): the ratio is then 1 and the clip never acts.
    iterations: int = 2
    scale_rewards: bool = True  # divide by the group std (GRPO); False: Dr. GRPO
    aggregation: str = "grpo"  # "grpo" | "dr_grpo" | "dapo"
    grad_clip: float | None = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        # Checked at the boundary: a NaN beta would silently turn the KL off, a negative
        # epsilon_high would clip every ratio.
        whole = {"group_size": 2, "prompts_per_step": 1, "max_new_tokens": 1, "iterations": 1}
        for name, low in whole.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{name} must be an int, got {value!r}; e.g. {name}=8.")
            why = "GRPO needs G >= 2 completions per prompt" if name == "group_size" else "e.g. 8"
            validate.number(name, value, why + ".", low=low, integer=True)
        validate.number("seed", self.seed, "e.g. seed=0.", low=0, integer=True)
        validate.number("lr", self.lr, "e.g. 1e-3 for TinySeek.", low=0, low_open=True)
        validate.number(
            "beta", self.beta, "0 turns the KL penalty off; 0.04 is DeepSeekMath's.", low=0
        )
        validate.number(
            "epsilon", self.epsilon, "the clip range; 0.2 is usual.",
            low=0, high=1, low_open=True, high_open=True,
        )  # fmt: skip
        if self.epsilon_high is not None:
            validate.number(
                "epsilon_high", self.epsilon_high,
                "the upper clip range; None uses epsilon (DAPO makes it wider than epsilon).",
                low=0, low_open=True,
            )  # fmt: skip
        validate.number(
            "temperature", self.temperature, "rollouts are sampled; 1.0 is usual.",
            low=0, low_open=True,
        )  # fmt: skip
        validate.number(
            "top_p", self.top_p, "1.0 samples from every token.", low=0, high=1, low_open=True
        )
        if self.grad_clip is not None:
            validate.number(
                "grad_clip", self.grad_clip, "e.g. 1.0, or None for no clipping.",
                low=0, low_open=True,
            )  # fmt: skip
        if not isinstance(self.scale_rewards, bool):
            raise ValueError(
                f"scale_rewards must be True (GRPO) or False (Dr. GRPO), got {self.scale_rewards!r}."
            )
        validate.choice("aggregation", self.aggregation, AGGREGATIONS)

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
        samples = sample(
            self.policy,
            self.tokenizer,
            [e.prompt for e in examples],
            G,
            cfg.max_new_tokens,
            cfg.temperature,
            cfg.top_p,
            generator=self.generator,
            batch_size=None,
        )
        ids, key_mask, tp = samples.ids, samples.key_mask, samples.prompt_len
        old_logp, _ = token_logprobs(
            self.policy, ids, cfg.temperature, key_mask=key_mask, start=tp - 1
        )
        ref_logp, _ = token_logprobs(
            self.ref, ids, cfg.temperature, key_mask=key_mask, start=tp - 1
        )
        prompts = [e.prompt for e in examples for _ in range(G)]
        answers = [e.answer for e in examples for _ in range(G)]
        total, parts = combine_rewards(self.rewards, prompts, samples.texts, answers)
        adv = group_advantages(total, G, scale=cfg.scale_rewards)
        return Rollouts(
            prompts, answers, samples.texts, ids, key_mask, tp, samples.mask, old_logp, ref_logp,
            total, parts, adv, G, samples.truncated,
        )  # fmt: skip

    # -- one step -------------------------------------------------------------------------------
    def step(self, examples: Sequence | None = None) -> dict:
        """One GRPO step: a batch of rollouts, then ``iterations`` clipped updates on it.

        ``examples`` are this step's prompts (P of them, each sampled G times); by default the next
        ``prompts_per_step`` of the shuffled training set. Returns the step's row of metrics.
        """
        cfg = self.config
        t0 = time.perf_counter()
        if examples is not None and not len(examples):
            raise ValueError("examples is empty; pass this step's prompts, e.g. train_set[:8].")
        ro = self.rollout(self._next_examples() if examples is None else examples)
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
        # Accuracy is a metric of the rows that carry a reference answer (a custom reward's task
        # may have none: then it is nan, not a score of empty answers).
        acc = [
            accuracy_reward(p, c, a) if str(a).strip() else math.nan
            for p, c, a in zip(ro.prompts, ro.completions, ro.answers)
        ]
        graded = [x for x in acc if not math.isnan(x)]
        fmt = [strict_format_reward(p, c) for p, c in zip(ro.prompts, ro.completions)]
        naive = [naive_format_reward(p, c) for p, c in zip(ro.prompts, ro.completions)]
        self.step_count += 1
        row = {
            "step": self.step_count,
            "reward_mean": float(ro.rewards.mean()),
            "reward_std": float(ro.rewards.std()),
            "accuracy": sum(graded) / len(graded) if graded else math.nan,
            "format": sum(fmt) / len(fmt),
            "naive_format": sum(naive) / len(naive),
            "zero_std_fraction": zero_std_fraction(ro.rewards, ro.group_size),
            "entropy": entropy,
            "length": float(ro.lengths.float().mean()),
            "truncated": float(ro.truncated.float().mean()),
            "time_s": self.elapsed,
            **stats,
            **{f"reward/{name}": float(v.mean()) for name, v in ro.reward_parts.items()},
        }
        if self.sample_every and (self.step_count - 1) % self.sample_every == 0:
            self.samples.append(
                {
                    "step": self.step_count,
                    "prompt": ro.prompts[0],
                    "completion": ro.completions[0],
                    "reward": float(ro.rewards[0]),
                    "correct": acc[0] == 1.0,
                }
            )
        return row

    def evaluate(self) -> EvalResult:
        """Greedy held-out accuracy and well-formed rate of the current policy."""
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
                    "eval_accuracy": ev.accuracy,
                    "eval_format": ev.format_rate,
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
                row["eval_accuracy"], row["eval_format"] = ev.accuracy, ev.format_rate
            row["last"] = last
            self.history.append(row)
            if progress:
                bar.set_postfix(
                    reward=f"{row['reward_mean']:.2f}", acc=f"{row['accuracy']:.2f}", refresh=False
                )
            if callback is not None:
                callback(self, row)
        return self.history
