"""Distillation: how DeepSeek-R1's small models were made, in miniature on TinySeek.

The R1 distills ([R1] §2.4, §3.2) were made by *sequence-level* distillation: DeepSeek-R1 (the
teacher) wrote about 800K samples, the reasoning ones were kept only when their final answer
checked out and their format was readable (rejection sampling, [R1] §2.3.3), and small dense
models were fine-tuned on them with plain supervised fine-tuning (SFT) -- no RL, no logits from
the teacher.

This module holds the pieces to run that recipe on the toy world, plus the classic alternative it is
compared with:

1. losses -- masked next-token cross-entropy and *logit* knowledge distillation (Hinton et al.,
   "Distilling the Knowledge in a Neural Network", 2015): ``T**2 * KL(teacher_T || student_T)``
   between the temperature-softened distributions, mixed with the hard cross-entropy by a weight;
2. rejection sampling -- keep a teacher completion only when its format is valid AND its answer is
   right; report the kept fraction;
3. trace datasets -- ``<bos> prompt target <eos>`` sequences whose labels mask the prompt and pad;
4. a teacher that samples ``<think>...</think><answer>...</answer>`` completions (batched, with the
   KV cache), greedy evaluation, and a small training loop for students (hard SFT or logit KD).

Simplified against the paper: one toy task (arithmetic with step-by-step traces) instead of 600K
reasoning + 200K non-reasoning samples; the filter checks answer and format only (R1 also dropped
chains of thought with mixed languages, long paragraphs or code blocks); students are trained from
scratch rather than from a pretrained base model.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from course_lib.formats import check_answer, format_target, is_well_formed
from course_lib.tasks import Example
from course_lib.train import IGNORE, Batch, History, train

IGNORE_INDEX = IGNORE  # label value for positions that carry no loss (prompt and padding)

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
        return (labels != IGNORE_INDEX).to(device=device, dtype=torch.float32)
    return torch.ones(shape, device=device, dtype=torch.float32)


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    n = mask.sum()
    if n.item() == 0:
        raise ValueError(
            "every position is masked out, so there is nothing to average; check that the labels "
            f"are not all {IGNORE_INDEX} (a prompt longer than max_len would do that)."
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
    ``1/T**2``; the factor keeps the soft term's size comparable to the hard loss as ``T`` changes.
    Positions are kept where ``mask`` is 1, or, when ``labels`` are given instead, where the label
    is not ``IGNORE_INDEX`` (prompt and padding carry no loss). The teacher is treated as a constant
    (its logits are detached).
    """
    per_pos = kd_kl_per_position(student_logits, teacher_logits.detach(), temperature)  # (...)
    m = _mask_from(per_pos.shape, mask, labels, per_pos.device)
    return temperature**2 * _masked_mean(per_pos, m)


def masked_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Next-token cross-entropy averaged over positions whose label is not ``IGNORE_INDEX``.

    ``logits (B, T, V)`` and ``labels (B, T)`` are already aligned (``labels[:, t]`` is the token that
    should follow position ``t``).
    """
    if logits.shape[:-1] != labels.shape:
        raise ValueError(
            f"logits {tuple(logits.shape)} and labels {tuple(labels.shape)} do not line up; "
            "labels must have the logits' shape without the vocabulary dimension."
        )
    if not (labels != IGNORE_INDEX).any():
        raise ValueError(
            f"all labels are {IGNORE_INDEX}: there is no target token to learn from; "
            "check the prompt/target split and max_len."
        )
    return F.cross_entropy(
        logits.float().reshape(-1, logits.shape[-1]),
        labels.reshape(-1),
        ignore_index=IGNORE_INDEX,
    )


def distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor,
    temperature: float = 2.0,
    kd_weight: float = 0.5,
) -> torch.Tensor:
    """Hinton's mix: ``kd_weight * T**2 * KL(teacher_T || student_T) + (1 - kd_weight) * CE``.

    ``kd_weight = 0`` is plain SFT on the labels; ``kd_weight = 1`` learns from soft targets only.
    Both terms average over the same positions (labels not ``IGNORE_INDEX``).
    """
    if not (0.0 <= kd_weight <= 1.0):
        raise ValueError(f"kd_weight must lie in [0, 1], got {kd_weight}; 0.5 weighs both equally.")
    hard = masked_cross_entropy(student_logits, labels)
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

    @property
    def kept(self) -> bool:
        return self.format_ok and self.answer_ok

    @property
    def reason(self) -> str:
        if self.kept:
            return "kept"
        if not self.format_ok and not self.answer_ok:
            return "bad format and wrong answer"
        return "bad format" if not self.format_ok else "wrong answer"


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
        """How many completions fell in each bucket of :attr:`Verdict.reason`."""
        out = {"kept": 0, "wrong answer": 0, "bad format": 0, "bad format and wrong answer": 0}
        for v in self.verdicts:
            out[v.reason] += 1
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
) -> FilterReport:
    """Judge each teacher completion: keep it only if its format is valid AND its answer is right.

    ``check(completion, answer) -> bool`` decides correctness; by default
    :func:`course_lib.formats.check_answer` (exact match of the last ``<answer>`` content). Returns a :class:`FilterReport` whose
    ``kept_fraction`` is the share that survives -- R1 reports keeping only correct samples for its
    reasoning SFT data ([R1] §2.3.3).
    """
    if not (len(prompts) == len(completions) == len(answers)):
        raise ValueError(
            f"got {len(prompts)} prompts, {len(completions)} completions and {len(answers)} "
            "answers; pass one completion and one reference answer per prompt."
        )
    check = check or check_answer
    verdicts = [
        Verdict(p, c, a, format_ok=is_well_formed(c), answer_ok=bool(check(c, a)))
        for p, c, a in zip(prompts, completions, answers)
    ]
    return FilterReport(verdicts)


# --------------------------------------------------------------------------------------------
# 3. Trace datasets: <bos> prompt target <eos>, loss only on the target
# --------------------------------------------------------------------------------------------


@dataclass
class SFTData:
    """Tokenised prompt/target pairs ready for next-token training.

    ``input_ids (N, L)`` hold ``<bos> prompt target`` (right-padded with ``pad_id``); ``labels
    (N, L)`` hold the next token at every position, ``IGNORE_INDEX`` on prompt and padding, so only
    the target (trace, answer and ``<eos>``) is learned.
    """

    input_ids: torch.Tensor  # (N, L) long
    labels: torch.Tensor  # (N, L) long
    prompts: list[str]
    targets: list[str]

    def __len__(self) -> int:
        return self.input_ids.shape[0]

    def subset(self, n: int) -> SFTData:
        """The first ``n`` pairs (for data-scaling curves)."""
        if not 1 <= n <= len(self):
            raise ValueError(f"n must be between 1 and {len(self)}, got {n}.")
        return SFTData(self.input_ids[:n], self.labels[:n], self.prompts[:n], self.targets[:n])


def build_sft_data(
    tokenizer, prompts: Sequence[str], targets: Sequence[str], max_len: int | None = None
) -> SFTData:
    """Tokenise ``<bos> + prompt + target + <eos>`` and mask the prompt and padding in the labels.

    ``max_len`` (the model's ``max_seq_len``) bounds the input length; a longer pair raises a
    ValueError rather than being silently cut.
    """
    if len(prompts) != len(targets):
        raise ValueError(f"got {len(prompts)} prompts but {len(targets)} targets; pair them 1:1.")
    if not prompts:
        raise ValueError("no prompt/target pairs were given; pass at least one.")
    rows: list[tuple[list[int], list[int]]] = []
    for prompt, target in zip(prompts, targets):
        head = tokenizer.encode(prompt, add_bos=True)
        tail = tokenizer.encode(target, add_eos=True)
        seq = head + tail
        x, y = seq[:-1], seq[1:]
        y = [IGNORE_INDEX] * (len(head) - 1) + y[len(head) - 1 :]
        rows.append((x, y))
    width = max(len(x) for x, _ in rows)
    if max_len is not None and width > max_len:
        raise ValueError(
            f"the longest prompt+target needs {width} positions but max_len={max_len}; raise the "
            "model's max_seq_len or use shorter problems."
        )
    ids = torch.full((len(rows), width), tokenizer.pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)
    for i, (x, y) in enumerate(rows):
        ids[i, : len(x)] = torch.tensor(x)
        labels[i, : len(y)] = torch.tensor(y)
    return SFTData(ids, labels, list(prompts), list(targets))


def sft_data_from_examples(
    tokenizer, examples: Sequence[Example], with_trace: bool = True, max_len: int | None = None
) -> SFTData:
    """Ground-truth targets (:func:`course_lib.formats.format_target`) for a list of problems."""
    return build_sft_data(
        tokenizer,
        [e.prompt for e in examples],
        [format_target(e.answer, e.trace if with_trace else None) for e in examples],
        max_len,
    )


def student_datasets(
    report: FilterReport, tokenizer, max_len: int | None = None
) -> dict[str, SFTData]:
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
        "answers only": build_sft_data(
            tokenizer, prompts, [format_target(v.answer) for v in kept], max_len
        ),
        "traces": build_sft_data(tokenizer, prompts, [v.completion for v in kept], max_len),
        "unfiltered traces": build_sft_data(
            tokenizer,
            [v.prompt for v in report.verdicts],
            [v.completion for v in report.verdicts],
            max_len,
        ),
    }


# --------------------------------------------------------------------------------------------
# 4. Sampling from a teacher, evaluating students
# --------------------------------------------------------------------------------------------


def _cut_at_eos(ids: list[int], eos_id: int, pad_id: int) -> list[int]:
    out = []
    for t in ids:
        if t == eos_id or t == pad_id:
            break
        out.append(t)
    return out


@torch.no_grad()
def sample_completions(
    model,
    tokenizer,
    prompts: Sequence[str],
    max_new_tokens: int,
    temperature: float = 1.0,
    top_p: float = 1.0,
    batch_size: int = 256,
    seed: int = 0,
    progress: bool = False,
) -> list[str]:
    """Let ``model`` complete every prompt; return the completions as text, cut at ``<eos>``.

    Prompts of the same token length are generated together in batches (no padding needed), with
    the model's KV cache. ``temperature=0`` decodes greedily. Sampling is seeded, so the same call
    gives the same completions on the CPU.
    """
    from tqdm.auto import tqdm

    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}.")
    device = next(model.parameters()).device
    encoded = [tokenizer.encode(p, add_bos=True) for p in prompts]
    groups: dict[int, list[int]] = {}
    for i, ids in enumerate(encoded):
        groups.setdefault(len(ids), []).append(i)
    chunks = [
        idx[s : s + batch_size]
        for _, idx in sorted(groups.items())
        for s in range(0, len(idx), batch_size)
    ]
    gen = torch.Generator(device=device).manual_seed(seed)
    out: list[str] = [""] * len(prompts)
    was_training = model.training
    model.eval()
    try:
        for chunk in tqdm(chunks, desc="sampling", disable=not progress, leave=False):
            x = torch.tensor([encoded[i] for i in chunk], dtype=torch.long, device=device)
            y = model.generate(
                x,
                max_new_tokens,
                temperature=temperature,
                top_p=top_p,
                eos_id=tokenizer.eos_id,
                generator=gen,
            )  # (b, T + new)
            for row, i in zip(y[:, x.shape[1] :].tolist(), chunk):
                out[i] = tokenizer.decode(_cut_at_eos(row, tokenizer.eos_id, tokenizer.pad_id))
    finally:
        model.train(was_training)
    return out


@dataclass
class EvalResult:
    """Greedy accuracy of a model on a list of problems, with the completions to look at."""

    accuracy: float
    format_rate: float
    completions: list[str]
    correct: list[bool]


def evaluate(
    model,
    tokenizer,
    prompts: Sequence[str],
    answers: Sequence[str],
    max_new_tokens: int,
    check: Callable[[str, str], bool] | None = None,
    batch_size: int = 256,
    temperature: float = 0.0,
    top_p: float = 1.0,
    samples: int = 1,
    seed: int = 0,
) -> EvalResult:
    """Score a model on problems: accuracy (answer right) and format rate.

    ``temperature=0`` decodes greedily. With ``temperature > 0`` the accuracy is pass@1 averaged
    over ``samples`` seeded samples per problem -- how R1 reports its results (temperature 0.6,
    top-p 0.95, several samples per question, [R1] §3). ``completions``/``correct`` hold the first
    sample. A completion's format counts as valid in either student format (with or without a
    trace).
    """
    if len(prompts) != len(answers) or not prompts:
        raise ValueError("pass the same, non-zero number of prompts and reference answers.")
    if samples < 1 or (temperature == 0 and samples != 1):
        raise ValueError(f"samples={samples}: use 1 for greedy decoding, or >= 1 when sampling.")
    check = check or check_answer
    first: tuple[list[str], list[bool]] | None = None
    n_right = n_format = 0
    for k in range(samples):
        comps = sample_completions(
            model, tokenizer, prompts, max_new_tokens, temperature, top_p, batch_size, seed + k
        )
        correct = [bool(check(c, a)) for c, a in zip(comps, answers)]
        n_right += sum(correct)
        n_format += sum(is_well_formed(c) for c in comps)
        first = first or (comps, correct)
    total = samples * len(prompts)
    return EvalResult(n_right / total, n_format / total, first[0], first[1])


@torch.no_grad()
def next_token_logits(model, tokenizer, text: str) -> torch.Tensor:
    """The model's logits for the token after every prefix of ``<bos> + text``: ``(T, V)``."""
    device = next(model.parameters()).device
    ids = torch.tensor([tokenizer.encode(text, add_bos=True)], dtype=torch.long, device=device)
    was_training = model.training
    model.eval()
    try:
        logits = _logits(model(ids))
    finally:
        model.train(was_training)
    return logits[0].float().cpu()  # (T, V)


def _logits(output) -> torch.Tensor:
    """Accept a bare logits tensor or an output object/tuple that carries one."""
    if isinstance(output, torch.Tensor):
        return output
    if hasattr(output, "logits"):
        return output.logits
    if isinstance(output, tuple | list):
        return output[0]
    raise TypeError(f"cannot find logits in a model output of type {type(output).__name__}.")


# --------------------------------------------------------------------------------------------
# 5. Training students (and the teacher)
# --------------------------------------------------------------------------------------------


def train_on(
    model,
    data: SFTData,
    steps: int,
    batch_size: int = 32,
    lr: float = 3e-3,
    teacher=None,
    temperature: float = 2.0,
    kd_weight: float = 0.5,
    seed: int = 0,
    warmup_steps: int = 20,
    progress: bool = True,
    desc: str = "student",
) -> History:
    """Train ``model`` on ``data`` for ``steps`` AdamW steps; return a :class:`~course_lib.train.History`.

    Without a ``teacher`` this is SFT (masked cross-entropy: sequence-level distillation when the
    data are teacher traces). With a ``teacher``, each batch also goes through the frozen teacher
    and the loss is logit KD at ``temperature`` (:func:`kd_loss`) mixed with the hard loss by
    ``kd_weight``, as in :func:`distillation_loss`. The loop itself is
    :func:`course_lib.train.train` (linear warm-up, cosine to 10%, gradient clipping at 1); batches
    are drawn with a seeded generator so runs repeat exactly. Each history row holds ``step``,
    ``loss``, ``ce`` (hard part) and ``lr``.
    """
    if steps < 1 or batch_size < 1:
        raise ValueError(f"steps and batch_size must be >= 1, got {steps} and {batch_size}.")
    device = next(model.parameters()).device
    gen = torch.Generator().manual_seed(seed)

    def batches(step: int) -> Batch:
        idx = torch.randint(len(data), (batch_size,), generator=gen)
        x, y = data.input_ids[idx], data.labels[idx]  # (B, L)
        width = int((y != IGNORE_INDEX).nonzero()[:, 1].max()) + 1  # drop all-padding columns
        return Batch(x[:, :width].to(device), y[:, :width].to(device))

    loss_fn = None
    if teacher is not None and kd_weight != 0.0:
        teacher.eval()

        def loss_fn(logits: torch.Tensor, batch: Batch, ce: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                t_logits = _logits(teacher(batch.x))  # (B, L, V)
            soft = kd_loss(logits, t_logits, temperature, labels=batch.y)
            return kd_weight * soft + (1.0 - kd_weight) * ce

    history = train(
        model,
        batches,
        steps,
        lr=lr,
        warmup_steps=warmup_steps,
        progress=progress,
        desc=desc,
        loss_fn=loss_fn,
    )
    model.eval()
    return history
