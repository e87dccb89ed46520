"""Distillation: how DeepSeek-R1's small models were made, in miniature on TinySeek.

The R1 distills ([R1] §2.4, §3.2) were made by *sequence-level* distillation on about 800K samples
from R1's own pipeline: ~600K reasoning samples drawn several times per prompt from the checkpoint at
the end of R1's reasoning-RL stage and kept only when their answer checked out and their chain of
thought was readable (rejection sampling, [R1] §2.3.3), plus ~200K non-reasoning samples reusing parts
of DeepSeek-V3's SFT data. Small dense models were fine-tuned on them with plain supervised
fine-tuning (SFT) -- no RL (which the paper says could improve them further), no logits from the
teacher.

This module holds the pieces to run that recipe on the toy world, plus the classic alternative it is
compared with:

1. losses -- *logit* knowledge distillation (Hinton et al., "Distilling the Knowledge in a Neural
   Network", 2015; docs/references.md "Distillation"): ``T**2 * KL(teacher_T || student_T)``
   between the temperature-softened distributions, mixed with the hard next-token cross-entropy
   (:func:`course_lib.train.lm_loss`) by a weight in :func:`distillation_loss`; the teacher's logits
   are computed on the fly here (they could be precomputed and stored);
2. rejection sampling -- keep a teacher completion only when its format is valid AND its answer is
   right; report the kept fraction;
3. the students' training sets, built from the filtered teacher completions with the course's one
   SFT-row builder (:func:`course_lib.data.sft_rows`), and :func:`train_on`, which trains a student
   with the course's one loop (:func:`course_lib.train.train`) on hard SFT or the logit-KD mix.

The teacher's samples come from :func:`course_lib.sampling.sample` and every model is scored with
:func:`course_lib.sampling.evaluate`.

Simplified against the paper: one toy task (arithmetic with step-by-step traces) instead of 600K
reasoning + 200K non-reasoning samples; the filter checks answer and format, and readability only
when given a rule (R1 also dropped chains of thought with mixed languages, long paragraphs or code
blocks; notebook 06 passes a language rule); notebook 03's students are trained from scratch
rather than from a pretrained base model.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from course_lib.data import IGNORE, Batch, SFTRows, sft_rows
from course_lib.formats import check_answer, format_target, is_well_formed
from course_lib.train import History, lm_loss, train

# --------------------------------------------------------------------------------------------
# 1. Losses
# --------------------------------------------------------------------------------------------


def _check_temperature(temperature: float) -> None:
    if not (
        isinstance(temperature, int | float) and math.isfinite(temperature) and temperature > 0
    ):
        raise ValueError(
            f"temperature must be a positive number, got {temperature!r}; "
            "use 1.0 for the plain distribution and e.g. 2.0 to soften it."
        )


def _check_same_shape(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> None:
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(
            f"student logits {tuple(student_logits.shape)} and teacher logits "
            f"{tuple(teacher_logits.shape)} must have the same shape (..., vocab); run both models "
            "on the same input ids with the same tokenizer."
        )


def soft_targets(logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """The softened distribution ``softmax(logits / T)`` over the last dimension.

    ``T = 1`` is the model's own distribution; larger ``T`` spreads probability over more tokens
    (closer to uniform), smaller ``T`` sharpens it towards the arg-max.
    """
    _check_temperature(temperature)
    return F.softmax(logits.float() / temperature, dim=-1)


def kd_kl_per_position(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float = 1.0
) -> torch.Tensor:
    """``KL(p_teacher,T || p_student,T)`` at every position, without the T**2 factor.

    Shapes: logits ``(..., V)`` -> KL ``(...)``. The direction is the distillation one: the teacher's
    distribution is the target ``p`` and the student's is the model ``q``, so
    ``KL = sum_v p_v (log p_v - log q_v)``; its gradient w.r.t. the student's logits is
    ``(q - p) / T``.
    """
    _check_temperature(temperature)
    _check_same_shape(student_logits, teacher_logits)
    log_q = F.log_softmax(student_logits.float() / temperature, dim=-1)  # (..., V) student
    log_p = F.log_softmax(teacher_logits.float() / temperature, dim=-1)  # (..., V) teacher
    p = log_p.exp()
    return (p * (log_p - log_q)).sum(dim=-1)  # (...)


def _mask_from(
    shape: torch.Size, mask: torch.Tensor | None, labels: torch.Tensor | None, device
) -> torch.Tensor:
    """A float mask of shape ``shape`` (logits without the vocab dim): 1 where a loss is taken."""
    if mask is not None:
        if mask.shape != shape:
            raise ValueError(
                f"mask has shape {tuple(mask.shape)} but the logits need {tuple(shape)} "
                "(the logits' shape without the vocabulary dimension)."
            )
        return mask.to(device=device, dtype=torch.float32)
    if labels is not None:
        if labels.shape != shape:
            raise ValueError(
                f"labels have shape {tuple(labels.shape)} but the logits need {tuple(shape)}."
            )
        return (labels != IGNORE).to(device=device, dtype=torch.float32)
    return torch.ones(shape, device=device, dtype=torch.float32)


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    n = mask.sum()
    if n.item() == 0:
        raise ValueError(
            "every position is masked out, so there is nothing to average; check that the labels "
            f"are not all {IGNORE} (a prompt longer than max_len would do that)."
        )
    return (values * mask).sum() / n


def kd_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    temperature: float = 2.0,
    mask: torch.Tensor | None = None,
    labels: torch.Tensor | None = None,
) -> torch.Tensor:
    """Logit distillation loss: ``T**2 * mean over kept positions of KL(teacher_T || student_T)``.

    Hinton et al. (2015) multiply by ``T**2`` because the gradient of the softened KL scales like
    ``1/T**2`` (exactly only for large ``T``, [KD] §2.1); the factor keeps the soft term's size
    roughly comparable to the hard loss as ``T`` changes.
    Positions are kept where ``mask`` is 1, or, when ``labels`` are given instead, where the label
    is not ``IGNORE`` (prompt and padding carry no loss). The teacher is treated as a constant
    (its logits are detached).
    """
    per_pos = kd_kl_per_position(student_logits, teacher_logits.detach(), temperature)  # (...)
    m = _mask_from(per_pos.shape, mask, labels, per_pos.device)
    return temperature**2 * _masked_mean(per_pos, m)


def distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor,
    temperature: float = 2.0,
    kd_weight: float = 0.5,
) -> torch.Tensor:
    """Hinton's mix: ``kd_weight * T**2 * KL(teacher_T || student_T) + (1 - kd_weight) * CE``.

    ``kd_weight = 0`` is plain SFT on the labels; ``kd_weight = 1`` learns from soft targets only.
    Both terms average over the same positions (labels not ``IGNORE``).
    """
    if not (0.0 <= kd_weight <= 1.0):
        raise ValueError(f"kd_weight must lie in [0, 1], got {kd_weight}; 0.5 weighs both equally.")
    hard = lm_loss(student_logits, labels)
    if kd_weight == 0.0:
        return hard
    soft = kd_loss(student_logits, teacher_logits, temperature, labels=labels)
    return kd_weight * soft + (1.0 - kd_weight) * hard


# --------------------------------------------------------------------------------------------
# 2. Rejection sampling: keep only well-formed, correct traces
# --------------------------------------------------------------------------------------------


@dataclass
class Verdict:
    """Why one teacher completion was kept or rejected."""

    prompt: str
    completion: str
    answer: str  # the reference answer
    format_ok: bool
    answer_ok: bool
    readable_ok: bool = True  # only judged when the filter is given a readability rule

    @property
    def kept(self) -> bool:
        return self.format_ok and self.answer_ok and self.readable_ok

    @property
    def reason(self) -> str:
        """``"kept"``, or what failed, e.g. ``"bad format and wrong answer"``."""
        if self.kept:
            return "kept"
        failed = [
            name
            for name, ok in (
                ("bad format", self.format_ok),
                ("wrong answer", self.answer_ok),
                ("unreadable", self.readable_ok),
            )
            if not ok
        ]
        return " and ".join(failed)


@dataclass
class FilterReport:
    """The outcome of rejection sampling over a batch of teacher completions."""

    verdicts: list[Verdict] = field(default_factory=list)

    @property
    def kept(self) -> list[Verdict]:
        return [v for v in self.verdicts if v.kept]

    @property
    def rejected(self) -> list[Verdict]:
        return [v for v in self.verdicts if not v.kept]

    @property
    def kept_fraction(self) -> float:
        if not self.verdicts:
            raise ValueError("no completions were filtered; pass at least one.")
        return len(self.kept) / len(self.verdicts)

    def counts(self) -> dict[str, int]:
        """How many completions fell in each bucket of :attr:`Verdict.reason` (the four answer and
        format buckets always; buckets with "unreadable" when some completion was judged so)."""
        out = {"kept": 0, "wrong answer": 0, "bad format": 0, "bad format and wrong answer": 0}
        for v in self.verdicts:
            out[v.reason] = out.get(v.reason, 0) + 1
        return out

    def __str__(self) -> str:
        c = self.counts()
        return (
            f"kept {c['kept']} of {len(self.verdicts)} ({self.kept_fraction:.0%}); rejected: "
            + ", ".join(f"{k} {n}" for k, n in c.items() if k != "kept")
        )


def rejection_filter(
    prompts: Sequence[str],
    completions: Sequence[str],
    answers: Sequence[str],
    check: Callable[[str, str], bool] | None = None,
    readable: Callable[[str, str], bool] | None = None,
) -> FilterReport:
    """Judge each teacher completion: keep it only if its format is valid AND its answer is right
    (AND, given ``readable``, it is readable).

    ``check(completion, answer) -> bool`` decides correctness; by default
    :func:`course_lib.formats.check_answer` (exact match of the last ``<answer>`` content).
    ``readable(prompt, completion) -> bool`` is R1's extra filter: it "filtered out chains-of-thought
    with mixed languages, long paragraphs, and code blocks" ([R1] §2.3.3; notebook 06 passes a
    language-consistency rule). Returns a :class:`FilterReport` whose ``kept_fraction`` is the share
    that survives -- R1 kept only correct samples for its reasoning SFT data ([R1] §2.3.3).
    """
    if not (len(prompts) == len(completions) == len(answers)):
        raise ValueError(
            f"got {len(prompts)} prompts, {len(completions)} completions and {len(answers)} "
            "answers; pass one completion and one reference answer per prompt."
        )
    check = check or check_answer
    verdicts = [
        Verdict(
            p, c, a, format_ok=is_well_formed(c), answer_ok=bool(check(c, a)),
            readable_ok=True if readable is None else bool(readable(p, c)),
        )
        for p, c, a in zip(prompts, completions, answers)
    ]  # fmt: skip
    return FilterReport(verdicts)


# --------------------------------------------------------------------------------------------
# 3. The students' training sets, and a look at the logits they learn from
# --------------------------------------------------------------------------------------------


def student_datasets(
    report: FilterReport, tokenizer, max_len: int | None = None
) -> dict[str, SFTRows]:
    """The training sets of the students, all built from one batch of teacher completions.

    * ``"answers only"``: the kept prompts with ``<answer>A</answer>`` only (the teacher's verified
      answers, i.e. the right ones) -- what fine-tuning on final answers would teach;
    * ``"traces"``: the kept completions in full (rejection-sampled sequence-level distillation:
      the R1 recipe);
    * ``"unfiltered traces"``: every completion, right or wrong (no rejection sampling).
    """
    kept = report.kept
    if not kept:
        raise ValueError(
            "the filter kept no completion, so there is nothing to train on; train the teacher "
            "longer or sample at a lower temperature."
        )
    prompts = [v.prompt for v in kept]
    return {
        "answers only": sft_rows(
            tokenizer, prompts, [format_target(v.answer) for v in kept], max_len
        ),
        "traces": sft_rows(tokenizer, prompts, [v.completion for v in kept], max_len),
        "unfiltered traces": sft_rows(
            tokenizer,
            [v.prompt for v in report.verdicts],
            [v.completion for v in report.verdicts],
            max_len,
        ),
    }


@torch.no_grad()
def next_token_logits(model, tokenizer, text: str) -> torch.Tensor:
    """The model's logits for the token after every prefix of ``<bos> + text``: ``(T, V)``."""
    device = next(model.parameters()).device
    ids = torch.tensor([tokenizer.encode(text, add_bos=True)], dtype=torch.long, device=device)
    was_training = model.training
    model.eval()
    try:
        logits = model(ids)
    finally:
        model.train(was_training)
    return logits[0].float().cpu()  # (T, V)


# --------------------------------------------------------------------------------------------
# 4. Training students (and the teacher)
# --------------------------------------------------------------------------------------------


def train_on(
    model,
    data: SFTRows,
    steps: int,
    batch_size: int = 32,
    lr: float = 3e-3,
    teacher=None,
    temperature: float = 2.0,
    kd_weight: float = 0.5,
    seed: int = 0,
    warmup_steps: int = 20,
    eval_fn: Callable | None = None,
    eval_every: int = 0,
    progress: bool = True,
    desc: str = "student",
) -> History:
    """Train ``model`` on ``data`` for ``steps`` AdamW steps; return a :class:`~course_lib.train.History`.

    Without a ``teacher`` this is SFT (masked cross-entropy: sequence-level distillation when the
    data are teacher traces). With a ``teacher``, each batch also goes through the frozen teacher
    and the loss is :func:`distillation_loss` (logit KD at ``temperature`` mixed with the hard loss
    by ``kd_weight``). The loop is :func:`course_lib.train.train` (linear warm-up, cosine to 10%,
    gradient clipping at 1); batches are drawn with a generator seeded with ``seed``, so runs
    repeat exactly. Each history row holds ``step``, ``loss``, ``ce`` (the hard part) and ``lr``,
    and every ``eval_every`` steps (and after the last) the metrics ``eval_fn(model)`` returns.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}.")
    use_teacher = teacher is not None and kd_weight != 0.0
    if use_teacher:
        teacher.eval()

    def loss_fn(model, batch: Batch) -> tuple[torch.Tensor, dict]:
        logits = model(batch.x)  # (B, L, V)
        ce = lm_loss(logits, batch.y)
        if not use_teacher:
            return ce, {"ce": ce.item()}
        with torch.no_grad():
            teacher_logits = teacher(batch.x)  # (B, L, V)
        loss = distillation_loss(logits, teacher_logits, batch.y, temperature, kd_weight)
        return loss, {"ce": ce.item()}

    device = next(model.parameters()).device
    history = train(
        model,
        data.batches(batch_size, seed, device),
        steps,
        loss_fn,
        lr=lr,
        warmup_steps=warmup_steps,
        eval_fn=eval_fn,
        eval_every=eval_every,
        desc=desc,
        progress=progress,
    )
    model.eval()
    return history
