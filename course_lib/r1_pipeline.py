"""DeepSeek-R1's training pipeline in miniature: the stages, their data and their rewards.

R1-Zero is GRPO with rule rewards from the base model; it reasons but mixes languages ([R1] §2.2,
§2.3). R1 adds four stages ([R1] §2.3; docs/references.md "The R1 pipeline in miniature"):

1. **cold start** (§2.3.1): SFT of the base model on a small set of long, readable chains of
   thought -- here, the base model's own samples cleaned up into the question's language
   (:func:`cold_start_data`);
2. **reasoning RL** (§2.3.2): GRPO with accuracy + format + a language-consistency reward
   (:func:`reasoning_rewards`);
3. **rejection sampling and SFT** (§2.3.3): several samples per prompt from that RL checkpoint,
   kept only when correct and readable (:func:`rejection_sample`), plus non-reasoning data, then
   SFT of the *base* model on them (:func:`sft`);
4. **RL for all scenarios** (§2.3.4): GRPO over reasoning and non-reasoning prompts, with rule
   rewards for the first and reward models for helpfulness on the second -- here a rule-based
   stand-in (:func:`helpfulness_stand_in`, :func:`all_scenario_rewards`).

The distills (§2.4) are small dense models fine-tuned on stage 3's data; §4.1 compares that with
RL run directly on the small model. :class:`FlopMeter` and :func:`sft_flops` count what each
costs the small model (6·N per trained token, 2·N per token run forward), so the two get the same
budget. Every stage is measured the same way (:func:`measure`).

The training itself is the course's one trainer (:class:`course_lib.grpo_trainer.GRPOTrainer`) and
one loop (:func:`course_lib.distill.train_on`); this module only chooses data and rewards.

Simplified, plainly: thousands of cold-start samples become a few hundred; 600K + 200K SFT samples
a few hundred; R1's helpfulness and harmlessness reward models are one rule; the non-reasoning data
is one task (translation between the two scripts); every stage is minutes of CPU, not GPU-weeks.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from course_lib import distill, grpo_trainer
from course_lib.data import SFTRows, sft_rows
from course_lib.distill import FilterReport, rejection_filter
from course_lib.formats import ANSWER, ANSWER_END, check_answer, format_target, is_well_formed
from course_lib.grpo import WeightedReward, accuracy_reward, strict_format_reward
from course_lib.languages import (
    TRANSLATE,
    bilingual_additions,
    language_reward,
    script_of,
    to_script,
    translations,
)
from course_lib.sampling import evaluate, sample
from course_lib.tasks import Example
from course_lib.train import History

# --------------------------------------------------------------------------------------------
# Sizes and data: one place for notebook 06 and benchmarks/r1_pipeline_seeds.py
# --------------------------------------------------------------------------------------------

STUDENT_MIX = {"careful": 0.35, "careless": 0.45, "lazy": 0.1, "plain": 0.1}  # as notebook 04


@dataclass(frozen=True)
class Sizes:
    """Every size of the pipeline; :meth:`full` and :meth:`fast` are notebook 06's two modes."""

    base_steps: int = 1500  # pre-training of each base model
    rl_steps: int = 100  # R1-Zero, reasoning RL (and its ablation), the small model's direct RL
    cold_prompts: int = 300  # problems sampled for the cold-start data
    cold_steps: int = 100
    rs_prompts: int = 600  # problems for rejection sampling
    rs_samples: int = 4  # samples per problem
    non_reasoning: int = 600  # translation requests in the SFT data
    sft_steps: int = 400
    final_steps: int = 60  # RL for all scenarios
    eval_problems: int = 100
    eval_samples: int = 4
    vote_samples: int = 16  # the largest k of cons@k

    @classmethod
    def full(cls) -> Sizes:
        return cls()

    @classmethod
    def fast(cls) -> Sizes:
        return cls(
            base_steps=800, rl_steps=40, cold_prompts=200, cold_steps=60, rs_prompts=300,
            non_reasoning=400, sft_steps=200, final_steps=20, eval_problems=50, eval_samples=2,
            vote_samples=8,
        )  # fmt: skip


# The models: the pipeline's TinySeek (notebook 04's size) and a smaller dense one for the distills.
BIG = dict(d_model=64, n_layers=2, n_heads=4, d_ff=192, max_seq_len=96)
SMALL = dict(d_model=32, n_layers=2, n_heads=2, d_ff=96, max_seq_len=96)
MAX_NEW_TOKENS = 40  # a 2-digit addition's completion is about 22 tokens
GRPO = dict(group_size=8, prompts_per_step=8, max_new_tokens=MAX_NEW_TOKENS, lr=2e-4, beta=0.04)
FINAL_LR = 5e-5  # stage 4 starts from a good model: smaller steps than stage 2's


@dataclass(frozen=True)
class Problems:
    """The problem sets: fixed across seeds (a seed changes corpora, weights and samples)."""

    corpus: list[Example]  # pre-training problems (all 2-digit additions)
    rl: list[Example]  # RL prompts: additions that carry (the careless student's mistakes)
    cold: list[Example]  # cold-start prompts
    rejection: list[Example]  # rejection-sampling prompts
    non_reasoning: list[Example]  # translation requests for SFT and the last RL stage
    held_out: list[Example]  # evaluation: additions that carry, in no post-training set
    held_out_other: list[Example]  # evaluation: translation requests, in no training set


def _unseen(candidates: Sequence[Example], seen: Sequence[Example], n: int) -> list[Example]:
    """The first ``n`` candidates whose problem (in either script) is not among ``seen``."""
    known = {to_script(e.prompt, "digits") for e in seen}
    out = [e for e in candidates if to_script(e.prompt, "digits") not in known][:n]
    if len(out) < n:
        raise ValueError(f"only {len(out)} unseen problems for {n} requested; ask for fewer.")
    return out


def problems(sizes: Sizes) -> Problems:
    """The problem sets for ``sizes``, half asked in digits and half in letters. The held-out sets
    share no problem (in either script) with any set a stage trains on; the pre-training corpus
    is the exception, as a base model has read much of its world."""
    rl = bilingual_additions(2000, seed=1, carry_only=True)
    cold = bilingual_additions(sizes.cold_prompts, seed=4)
    rejection = bilingual_additions(sizes.rs_prompts, seed=5)
    non_reasoning = translations(sizes.non_reasoning, seed=1)
    n = sizes.eval_problems
    return Problems(
        corpus=bilingual_additions(4000, seed=3),
        rl=rl,
        cold=cold,
        rejection=rejection,
        non_reasoning=non_reasoning,
        held_out=_unseen(
            bilingual_additions(8 * n, seed=2, carry_only=True), rl + cold + rejection, n
        ),
        held_out_other=_unseen(translations(8 * n, seed=2), non_reasoning, n),
    )


# --------------------------------------------------------------------------------------------
# Rewards
# --------------------------------------------------------------------------------------------


def is_reasoning(prompt: str) -> bool:
    """True for a reasoning prompt (an addition), False for a non-reasoning one (``tr:``)."""
    return not prompt.startswith(TRANSLATE)


def helpfulness_stand_in(prompt: str, completion: str, answer: str) -> float:
    """A rule standing in for R1's helpfulness reward model, for non-reasoning prompts.

    R1 scored the final summary of general answers with reward models trained on human preference
    ([R1] §2.3.4); for simple requests its SFT data had no chain of thought (§2.3.3). The rule:
    1.0 for the right answer given directly (``<answer>ehc</answer>`` and nothing else), 0.5 for
    the right answer after some thinking, 0 otherwise. It is a rule, not a learned model: it cannot
    be fooled in the ways a reward model can, and it knows far less about what helps.
    """
    if not isinstance(completion, str) or not check_answer(completion, answer):
        return 0.0
    return 1.0 if completion.strip() == f"{ANSWER}{answer.strip()}{ANSWER_END}" else 0.5


def _only(fn, reasoning: bool):
    def reward(prompt: str, completion: str, answer: str) -> float:
        return fn(prompt, completion, answer) if is_reasoning(prompt) == reasoning else 0.0

    reward.__name__ = getattr(fn, "__name__", "reward")
    return reward


def reasoning_rewards(language: bool = True, language_weight: float = 1.0) -> list[WeightedReward]:
    """Accuracy + format (R1-Zero's rule rewards, [R1] §2.2.2), and with ``language`` the
    language-consistency reward R1 adds by a plain sum ([R1] §2.3.2)."""
    parts = [
        WeightedReward("accuracy", accuracy_reward),
        WeightedReward("format", strict_format_reward),
    ]
    if language:
        parts.append(WeightedReward("language", language_reward, language_weight))
    return parts


def all_scenario_rewards() -> list[WeightedReward]:
    """Stage 4's rewards: the reasoning rewards on reasoning prompts, the helpfulness stand-in on
    the others (each returns 0 on the other kind, so a group -- one prompt -- sees one kind)."""
    return [WeightedReward(p.name, _only(p.fn, True), p.weight) for p in reasoning_rewards()] + [
        WeightedReward("helpfulness", _only(helpfulness_stand_in, False))
    ]


# --------------------------------------------------------------------------------------------
# Data for the SFT stages
# --------------------------------------------------------------------------------------------


def annotate(prompt: str, completion: str) -> str:
    """An annotator's clean-up for readability: every number written in the question's language.

    ``annotate("eh+if=", "<think>h+5=bc;4+8+1=bd</think><answer>bdc</answer>")`` gives
    ``"<think>h+f=bc;e+i+b=bd</think><answer>bdc</answer>"``. The arithmetic is left as it is:
    a wrong trace stays wrong (the annotator fixes the language, not the reasoning).
    """
    return to_script(completion, script_of(prompt))


def cold_start_data(
    model: nn.Module,
    tokenizer,
    examples: Sequence[Example],
    max_new_tokens: int = 40,
    temperature: float = 1.0,
    seed: int = 0,
) -> tuple[list[str], list[str]]:
    """R1's cold start in miniature: readable chains of thought for the first SFT.

    R1 collected thousands of long, readable chains of thought by prompting models and by taking
    R1-Zero's outputs and having annotators clean them up ([R1] §2.3.1). Here: one sample per
    problem from ``model`` (the base), the well-formed ones kept and :func:`annotate`-d into the
    question's language. Their answers are as often right as the base's: in this toy the cold start
    is about readability, and accuracy is left to the RL stage after it.
    """
    prompts = [e.prompt for e in examples]
    texts = sample(model, tokenizer, prompts, 1, max_new_tokens, temperature, seed=seed).texts
    kept = [(p, annotate(p, t)) for p, t in zip(prompts, texts) if is_well_formed(t)]
    if not kept:
        raise ValueError("no well-formed sample to clean up; pre-train the base model longer.")
    return [p for p, _ in kept], [c for _, c in kept]


def non_reasoning_data(
    examples: Sequence[Example], thinking_share: float = 0.5, seed: int = 0
) -> tuple[list[str], list[str]]:
    """Non-reasoning SFT data: R1 reused DeepSeek-V3's SFT data, some answers with a chain of
    thought V3 was prompted to write and simple queries without one ([R1] §2.3.3). Here a share
    ``thinking_share`` of the answers spells the request out first (``<think>4=e;7=h;2=c</think>``),
    the rest answer directly."""
    if not 0 <= thinking_share <= 1:
        raise ValueError(f"thinking_share={thinking_share} must lie in [0, 1].")
    rng = random.Random(f"non-reasoning-{seed}")
    completions = [
        format_target(e.answer, e.trace if rng.random() < thinking_share else None)
        for e in examples
    ]
    return [e.prompt for e in examples], completions


def readable(prompt: str, completion: str) -> bool:
    """R1's readability filter in the toy world: every word of the thinking is in the question's
    language (a language-consistency of 1; R1 dropped chains of thought with mixed languages)."""
    return language_reward(prompt, completion) == 1.0


@dataclass
class RejectionSample:
    """What rejection sampling kept: one completion per prompt that had a kept one."""

    report: FilterReport  # the verdict on every sample
    prompts: list[str]
    completions: list[str]

    @property
    def prompts_covered(self) -> float:
        """Share of the prompts with at least one kept sample."""
        asked = {v.prompt for v in self.report.verdicts}
        return len(set(self.prompts)) / len(asked)


def rejection_sample(
    model: nn.Module,
    tokenizer,
    examples: Sequence[Example],
    samples_per_prompt: int = 4,
    max_new_tokens: int = 40,
    temperature: float = 1.0,
    seed: int = 0,
) -> RejectionSample:
    """Sample ``samples_per_prompt`` completions per problem and keep the correct, well-formed and
    readable ones ([R1] §2.3.3: "for each prompt, we sample multiple responses and retain only the
    correct ones"); one kept completion per prompt (the first), so easy prompts do not crowd out
    hard ones."""
    if samples_per_prompt < 1 or not examples:
        raise ValueError("pass at least one example and samples_per_prompt >= 1.")
    k = samples_per_prompt
    texts = sample(
        model, tokenizer, [e.prompt for e in examples], k, max_new_tokens, temperature, seed=seed
    ).texts
    prompts = [e.prompt for e in examples for _ in range(k)]
    answers = [e.answer for e in examples for _ in range(k)]
    report = rejection_filter(prompts, texts, answers, readable=readable)
    seen: set[str] = set()
    kept_p, kept_c = [], []
    for v in report.kept:
        if v.prompt not in seen:
            seen.add(v.prompt)
            kept_p.append(v.prompt)
            kept_c.append(v.completion)
    return RejectionSample(report, kept_p, kept_c)


# --------------------------------------------------------------------------------------------
# The two kinds of stage: SFT and GRPO, each on a copy of the model it starts from
# --------------------------------------------------------------------------------------------


def sft(
    model: nn.Module,
    tokenizer,
    prompts: Sequence[str],
    completions: Sequence[str],
    steps: int,
    batch_size: int = 32,
    lr: float = 1e-3,
    seed: int = 0,
    eval_fn: Callable[[nn.Module], dict] | None = None,
    eval_every: int = 0,
    progress: bool = True,
    desc: str = "SFT",
) -> tuple[nn.Module, History, SFTRows]:
    """Fine-tune a copy of ``model`` on (prompt, completion) pairs with the course's SFT loop;
    return the new model, its history and the rows (for counting FLOPs). ``eval_fn`` and
    ``eval_every`` go to :func:`course_lib.train.train`."""
    rows = sft_rows(tokenizer, prompts, completions, model.config.max_seq_len)
    new = copy.deepcopy(model)
    history = distill.train_on(
        new, rows, steps, batch_size, lr, seed=seed, warmup_steps=min(20, steps // 5),
        eval_fn=eval_fn, eval_every=eval_every, progress=progress, desc=desc,
    )  # fmt: skip
    return new, history, rows


def rl(
    model: nn.Module,
    tokenizer,
    examples: Sequence[Example],
    rewards: Sequence[WeightedReward],
    steps: int,
    config: grpo_trainer.GRPOConfig,
    callback: Callable[[grpo_trainer.GRPOTrainer, dict], None] | None = None,
    progress: bool = True,
    desc: str = "GRPO",
) -> tuple[grpo_trainer.GRPOTrainer, FlopMeter]:
    """GRPO on a copy of ``model`` (its reference is the copy's start) with ``rewards``; return the
    trainer (``.policy``, ``.history``) and the FLOPs it spent. Every history row holds the
    FLOPs spent so far (``row["flops"]``); ``callback(trainer, row)`` runs after every step."""
    trainer = grpo_trainer.GRPOTrainer(copy.deepcopy(model), tokenizer, examples, config, rewards)
    meter = FlopMeter(model.num_parameters(), config.iterations, config.beta > 0)

    def after_step(t: grpo_trainer.GRPOTrainer, row: dict) -> None:
        meter(t, row)
        row["flops"] = meter.flops
        if callback is not None:
            callback(t, row)

    trainer.train(steps, callback=after_step, progress=progress, desc=desc)
    return trainer, meter


# --------------------------------------------------------------------------------------------
# Compute: 2·N FLOPs per token run forward, 6·N per token trained (forward and backward)
# --------------------------------------------------------------------------------------------


class FlopMeter:
    """Counts a GRPO run's FLOPs on the policy's size N, step by step (a trainer callback).

    Per step, with R rows of Tp prompt + L generated positions: sampling runs every prompt and
    generated position forward once (2·N each, KV-cached); the sampling policy's and the
    reference's log-probabilities are two more forward passes over all positions (2·N each; the
    reference only when β > 0); each of the ``iterations`` updates is a forward and backward
    pass (6·N). Padding counts: the hardware computes it. Attention's own FLOPs are left out, as
    in the 6·N·D rule of thumb (notebook 00).
    """

    def __init__(self, n_params: int, iterations: int, with_reference: bool = True):
        self.n_params, self.iterations, self.with_reference = n_params, iterations, with_reference
        self.flops = 0.0

    def __call__(self, trainer: grpo_trainer.GRPOTrainer, row: dict) -> None:
        rows, positions = trainer.last_rollouts.input_ids.shape  # (R, Tp + L)
        forward_passes = 1 + 1 + int(self.with_reference)  # sampling, old policy, reference
        per_position = 2 * forward_passes + 6 * self.iterations
        self.flops += per_position * self.n_params * rows * positions


def sft_flops(n_params: int, rows: SFTRows, batch_size: int, steps: int, seed: int = 0) -> float:
    """FLOPs of ``steps`` SFT steps on ``rows`` (6·N per position of every batch, padding too),
    replaying the same seeded batches :func:`sft` draws."""
    batches = rows.batches(batch_size, seed)
    return float(sum(6 * n_params * batches(s).x.numel() for s in range(steps)))


def sft_steps_for(
    n_params: int, rows: SFTRows, batch_size: int, flops: float, seed: int = 0
) -> int:
    """The number of SFT steps on ``rows`` whose FLOPs come closest to ``flops`` (at least 1)."""
    batches = rows.batches(batch_size, seed)
    spent, steps = 0.0, 0
    while True:
        cost = 6 * n_params * batches(steps).x.numel()
        if spent + cost / 2 > flops:
            return max(1, steps)
        spent, steps = spent + cost, steps + 1


# --------------------------------------------------------------------------------------------
# Measuring a stage
# --------------------------------------------------------------------------------------------

EVAL_TEMPERATURE, EVAL_TOP_P = 0.6, 0.95  # R1's evaluation setting ([R1] §3.1)


@torch.no_grad()
def measure(
    model: nn.Module,
    tokenizer,
    reasoning: Sequence[Example],
    non_reasoning: Sequence[Example] = (),
    samples: int = 4,
    max_new_tokens: int = 40,
    seed: int = 0,
) -> dict[str, float]:
    """One stage's numbers, all pass@1 over ``samples`` samples at R1's temperature 0.6, top-p 0.95:

    ``accuracy``, ``format`` (strict), ``language`` (consistency, target = the question's
    language) and ``length`` (completion tokens) on the reasoning problems, and, given
    non-reasoning ones, their ``other_accuracy`` and mean :func:`helpfulness_stand_in`.
    """
    ev = evaluate(
        model, tokenizer, reasoning, max_new_tokens, EVAL_TEMPERATURE, EVAL_TOP_P, samples, seed,
        scores={"language": language_reward},
    )  # fmt: skip
    out = {
        "accuracy": ev.accuracy,
        "format": ev.format_rate,
        "language": ev.scores["language"],
        "length": ev.mean_length,
    }
    if non_reasoning:
        other = evaluate(
            model, tokenizer, non_reasoning, max_new_tokens, EVAL_TEMPERATURE, EVAL_TOP_P,
            samples, seed, scores={"direct": helpfulness_stand_in},
        )  # fmt: skip
        out["other_accuracy"] = other.accuracy
        out["helpfulness"] = other.scores["direct"]
    return out
