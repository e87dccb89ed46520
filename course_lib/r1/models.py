"""Which R1 distills the course loads, where from, and how much memory they will need.

The distills ([R1] §2.4; docs/references.md "The distills") are Qwen2.5 and Llama models fine-tuned
on ~800K R1-generated samples. This module is the registry (hub ids, pinned revisions) and the
memory check that :func:`course_lib.r1.loader.load` runs *before* loading: weights from the config
arithmetic of :mod:`course_lib.sizing`, refined for how bitsandbytes stores NF4 (only the blocks'
linear layers are quantised, the embeddings and LM head stay 16-bit), plus the KV cache and some
headroom. A model that does not fit raises :class:`NotEnoughMemoryError` naming one that does.

Units: every memory argument and result here is in **bytes**, as in :mod:`course_lib.sizing` (pass
``torch.cuda.mem_get_info``'s numbers as they are; ``15 * sizing.GB`` for 15 GB). GB appear only in
messages.

Simplified: the headroom is a flat assumption, not a measurement of activations.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from course_lib import architectures, published, sizing, validate

# The one place the hub revisions are pinned (commit hashes of the deepseek-ai repos; a new upload
# will not change what the course loads). Keys are course_lib.published.R1_MODELS names. (check: the
# hashes come from public pins of these repos; no session here could reach the hub to confirm them.)
REVISIONS: dict[str, str] = {
    "R1-Distill-Qwen-1.5B": "ad9f0ae0864d7fbcd1cd905e3c6c5b069cc8b562",
    "R1-Distill-Qwen-7B": "916b56a44061fd5cd7d6a8fb632557ed4f724f60",
    "R1-Distill-Llama-8B": "6a6f4aa4197940add57724a7707d069478df56b1",
    "R1-Distill-Qwen-14B": "1df8507178afcc1bef68cd8c393f61a886323761",
}


SUPPORTED: tuple[str, ...] = tuple(REVISIONS)


DEFAULT_MODEL = "R1-Distill-Qwen-1.5B"

# NF4 stores 4 bits per weight plus one absmax per block of 64; double quantisation stores those
# absmax values in 8 bits with one fp32 constant per 256 of them [QLoRA §3]:
NF4_BITS = 4 + 8 / 64 + 32 / (64 * 256)  # ≈ 4.127 bits per quantised weight


# Room kept free for the CUDA context, activations and the allocator's slack (an assumption).
HEADROOM_BYTES = 0.8e9


class NotEnoughMemoryError(RuntimeError):
    """The model (or a generation) does not fit in the free memory."""


class NonFiniteLogitsError(RuntimeError):
    """The model produced inf or NaN (fp16 overflow, reported for Qwen2 models), so sampling failed."""


def resolve_model(model: str) -> str:
    """Map a course name (``"R1-Distill-Qwen-1.5B"``) or hub id to the course name, or say what works.

    Case does not matter; ``"deepseek-ai/DeepSeek-R1-Distill-Qwen-7B"`` works as well.
    """
    if not isinstance(model, str):
        raise ValueError(f"model must be a name such as {DEFAULT_MODEL!r}, got {model!r}.")
    wanted = model.strip().lower()
    for name in SUPPORTED:
        spec = published.R1_MODELS[name]
        if wanted in (name.lower(), spec.hf_id.lower(), spec.hf_id.split("/")[-1].lower()):
            return name
    too_big = [n for n in published.R1_MODELS if n not in SUPPORTED]
    raise ValueError(
        f"{model!r} is not a supported R1 distill. Use one of {list(SUPPORTED)} "
        f"(the default is {DEFAULT_MODEL!r}); {too_big} are too large for one course GPU. "
        f"For another checkpoint in R1's format pass path='/folder/with/safetensors'."
    )


def architecture(hf_config) -> architectures.TransformerConfig:
    """The course's view (``architectures.TransformerConfig``) of a transformers Qwen2/Llama config."""
    heads = hf_config.num_attention_heads
    head_dim = getattr(hf_config, "head_dim", None) or hf_config.hidden_size // heads
    return architectures.TransformerConfig(
        name=getattr(hf_config, "_name_or_path", "") or hf_config.model_type,
        d_model=hf_config.hidden_size,
        d_ff=hf_config.intermediate_size,
        n_layers=hf_config.num_hidden_layers,
        n_heads=heads,
        n_kv_heads=getattr(hf_config, "num_key_value_heads", None) or heads,
        head_dim=head_dim,
        vocab_size=hf_config.vocab_size,
        tied_embeddings=bool(getattr(hf_config, "tie_word_embeddings", False)),
        qkv_bias=hf_config.model_type == "qwen2",
    )


def known_distill(arch: architectures.TransformerConfig) -> str | None:
    """The supported distill whose architecture ``arch`` has (a local copy of it), or None."""
    fields = ("d_model", "d_ff", "n_layers", "n_heads", "n_kv_heads", "vocab_size")
    for name in SUPPORTED:
        ref = published.R1_MODELS[name].config
        if all(getattr(arch, f) == getattr(ref, f) for f in fields):
            return name
    return None


# --------------------------------------------------------------------------------------------------
# Memory: predict before loading
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MemoryEstimate:
    """Predicted bytes of a model as ``load`` would place it, from course_lib.sizing."""

    name: str
    weights: float
    kv_cache: float
    headroom: float
    naive_4bit: float  # every parameter at exactly 4 bits: the sizing calculator's headline number
    bf16: float  # every parameter at 16 bits

    @property
    def total(self) -> float:
        return self.weights + self.kv_cache + self.headroom


def estimate_memory(
    arch: architectures.TransformerConfig | str,
    quantized: bool,
    context_tokens: int = 4096,
    dtype_bits: int = 16,
    headroom: float = HEADROOM_BYTES,
) -> MemoryEstimate:
    """Bytes ``load`` will need for ``arch`` (a course name or a ``architectures.TransformerConfig``).

    Quantised: bitsandbytes turns only the transformer blocks' linear layers into NF4
    (``NF4_BITS`` each); the embedding and the LM head stay in ``dtype_bits`` (16, or 32 when the
    model computes in float32). For the 1.5B model that is most of the difference between the
    naive "1.78B × 4 bits" and what is measured.
    """
    if isinstance(arch, str):
        arch = published.R1_MODELS[resolve_model(arch)].config
    validate.number(
        "dtype_bits", dtype_bits, "16 for bf16/fp16, 32 for float32.", low=1, high=32
    )  # fmt: skip
    validate.number("headroom", headroom, "bytes kept free, e.g. 0.8e9.", low=0)
    total = architectures.param_count(arch)
    embed = arch.vocab_size * arch.d_model * (1 if arch.tied_embeddings else 2)
    if quantized:
        weights = sizing.weight_bytes(embed, dtype_bits) + sizing.weight_bytes(
            total - embed, NF4_BITS
        )
    else:
        weights = sizing.weight_bytes(total, dtype_bits)
    kv = sizing.kv_cache_bytes(arch, context_tokens)
    return MemoryEstimate(
        name=arch.name,
        weights=weights,
        kv_cache=kv,
        headroom=headroom,
        naive_4bit=sizing.weight_bytes(total, 4),
        bf16=sizing.weight_bytes(total, 16),
    )


def largest_that_fits(
    free_bytes: float, quantized: bool = True, context_tokens: int = 4096, dtype_bits: int = 16
) -> str | None:
    """The largest supported distill whose estimate fits in ``free_bytes`` (bytes), or None.

    Like ``sizing.largest_model_that_fits`` but with ``estimate_memory``'s refinements (16-bit
    embeddings, NF4 block scales, headroom), since this is what ``load`` will actually need.
    """
    free_bytes = sizing.free_memory_bytes(free_bytes)
    by_size = sorted(SUPPORTED, key=lambda n: published.R1_MODELS[n].params_total, reverse=True)
    for name in by_size:
        if estimate_memory(name, quantized, context_tokens, dtype_bits).total <= free_bytes:
            return name
    return None


def free_memory(device: torch.device | str) -> float:
    """Free bytes on ``device``: CUDA's free memory, or the RAM the OS reports available."""
    device = torch.device(device)
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return float(free)
    try:
        import psutil

        return float(psutil.virtual_memory().available)
    except ImportError:  # POSIX fallback
        return float(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


def check_memory(
    estimate: MemoryEstimate,
    free_bytes: float,
    quantized: bool,
    where: str,
    path_from: str | None = None,
    path: str | None = None,
    context_tokens: int = 4096,
    dtype_bits: int = 16,
) -> None:
    """Raise NotEnoughMemoryError (naming the largest distill that fits) when it will not fit.

    ``path_from`` says where a local folder came from (``"path"``: the ``path=`` argument,
    ``"env"``: ``COURSE_R1_PATH``; None: the hub), so the suggested fix is one that can work:
    ``load(model=...)`` changes nothing while a folder is given. ``context_tokens`` and
    ``dtype_bits`` are the ones the estimate used, so the suggested distill fits the same way.
    """
    free_bytes = sizing.free_memory_bytes(free_bytes)
    if estimate.total <= free_bytes:
        return
    best = largest_that_fits(free_bytes, quantized, context_tokens, dtype_bits)
    if not best:
        hint = (
            "no supported distill fits; free memory (restart the runtime) or use a larger GPU "
            "(Colab: Runtime > Change runtime type > T4 GPU)"
        )
    elif path_from == "env":
        hint = (
            f"{best} fits, but COURSE_R1_PATH={path} overrides load(model=...): point "
            f"COURSE_R1_PATH at a copy of {best}, or unset it (del os.environ['COURSE_R1_PATH']) "
            f"and call load(model={best!r})"
        )
    elif path_from == "path":
        hint = (
            f"{best} fits: pass path= a folder holding {best}, or drop path= and call "
            f"load(model={best!r}) to download it"
        )
    else:
        hint = f"load(model={best!r}) fits"
    raise NotEnoughMemoryError(
        f"{estimate.name} needs about {estimate.total / 1e9:.1f} GB on {where} "
        f"({estimate.weights / 1e9:.1f} GB weights + {estimate.kv_cache / 1e9:.1f} GB KV cache + "
        f"{estimate.headroom / 1e9:.1f} GB headroom) but only {free_bytes / 1e9:.1f} GB is free. "
        f"Fix: {hint}; or close other notebooks holding the GPU; or pass a smaller "
        "context_tokens=."
    )


@contextmanager
def oom_guard(what: str):
    """Turn CUDA's out-of-memory error into a NotEnoughMemoryError that says what to do."""
    try:
        yield
    except torch.OutOfMemoryError as err:
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        raise NotEnoughMemoryError(
            f"Out of GPU memory while {what}. Fix: use fewer or shorter completions "
            "(smaller n / max_new_tokens), load a smaller distill "
            f"(r1.models.largest_that_fits(r1.models.free_memory('cuda'))), or restart the runtime to free the GPU."
        ) from err


def _is_nonfinite_sampling_error(err: BaseException) -> bool:
    """torch.multinomial's complaint when the probabilities hold inf or NaN (what fp16 overflow in the
    model gives), as raised inside ``generate``."""
    text = str(err)
    return "probability tensor contains" in text or ("inf" in text and "nan" in text)


@contextmanager
def generation_guard(what: str):
    """``oom_guard``, and inf/NaN in the logits turned into a NonFiniteLogitsError that says what to do.

    In fp16 (the only 16-bit type a T4 computes in) a large activation can overflow to inf, and the
    softmax then gives NaN; sampling refuses such probabilities. ``loader.load`` checks one forward
    pass after loading in fp16 and falls back to float32 if it is not finite; this catches what that
    check could not see (a longer or different input).
    """
    with oom_guard(what):
        try:
            yield
        except RuntimeError as err:
            if isinstance(err, NotEnoughMemoryError) or not _is_nonfinite_sampling_error(err):
                raise
            raise NonFiniteLogitsError(
                f"The model's next-token probabilities held inf or NaN while {what}: 16-bit "
                "arithmetic overflowed (fp16 can hold numbers up to 65,504; Qwen2 models are reported "
                "to exceed that). Fix: reload in float32, load(..., dtype='fp32') (on a T4 the 1.5B "
                "distill fits: about 7 GB; in NF4 this only changes the compute dtype), or on a GPU "
                "with bfloat16 (Ampere or newer) use dtype='bf16'."
            ) from err
