"""The real thing: an R1 distill in 4-bit on one GPU, its chat template, streaming, and thinking.

Paper: DeepSeek-R1 [R1 §2.4] (the distills: Qwen2.5/Llama bases fine-tuned with SFT on ~800K
R1-generated samples) and [R1 §3.2] (their scores). How to use them follows the model card:
temperature 0.6, top-p 0.95, no system prompt, for math "reason step by step" and a \\boxed{}
answer, and make the reply start with "<think>\\n" (later chat templates put it in the prompt).

What this module does, and what it simplifies:

- ``load`` reads a distill from the hub at a pinned revision (``REVISIONS``, the one place they
  live) or from a local folder (``path=`` or the ``COURSE_R1_PATH`` environment variable). On CUDA it
  quantises to bitsandbytes NF4 with double quantisation [QLoRA, Dettmers et al. 2023]; without CUDA
  it loads the same weights unquantised on the CPU and says how slow that will be. It checks the free
  memory against ``course_lib.sizing`` *before* loading and suggests the largest distill that fits.
  ``trust_remote_code`` stays off and only safetensors are read.
- ``split_thinking`` cuts a completion into thinking and answer the way R1's own chat template does
  for earlier turns: the answer is what follows the *last* ``</think>``.
- ``stream``/``stream_chat`` run ``generate`` in a thread and read transformers' TextIteratorStreamer,
  so a widget can show the thinking while it is being written.
- ``thinking_budget_run`` cuts the thinking off after a token budget and forces ``</think>``
  (the "budget forcing" idea of s1, Muennighoff et al. 2025, simplified: no "Wait" extension).
- ``build_stand_in`` writes a tiny random Qwen2 model and a small byte-level BPE tokenizer with a chat
  template in R1's format to a folder, so tests and FAST mode run the real loading code with no
  network and no GPU. Its text is gibberish unless ``train_steps`` teaches it R1's *format*.

Nothing here runs on import.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib
import json
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import torch

from course_lib import runtime, sizing

# --------------------------------------------------------------------------------------------------
# Which models, where from
# --------------------------------------------------------------------------------------------------

# The one place the hub revisions are pinned (commit hashes of the deepseek-ai repos; a new upload
# will not change what the course loads). Keys are course_lib.sizing.R1_MODELS names. (check: the
# hashes come from public pins of these repos; no session here could reach the hub to confirm them.)
REVISIONS: dict[str, str] = {
    "R1-Distill-Qwen-1.5B": "ad9f0ae0864d7fbcd1cd905e3c6c5b069cc8b562",
    "R1-Distill-Qwen-7B": "916b56a44061fd5cd7d6a8fb632557ed4f724f60",
    "R1-Distill-Llama-8B": "6a6f4aa4197940add57724a7707d069478df56b1",
    "R1-Distill-Qwen-14B": "1df8507178afcc1bef68cd8c393f61a886323761",
}
SUPPORTED: tuple[str, ...] = tuple(REVISIONS)
DEFAULT_MODEL = "R1-Distill-Qwen-1.5B"
PATH_ENV = "COURSE_R1_PATH"  # a local folder with config.json, safetensors and the tokenizer
STAND_IN_MARKER = "COURSE_STAND_IN.json"

# Model card: temperature 0.5-0.7 (0.6 recommended), top-p 0.95, no system prompt.
TEMPERATURE = 0.6
TOP_P = 0.95
MATH_INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"
# R1's special tokens (the stand-in uses the same strings).
BOS = "<｜begin▁of▁sentence｜>"
EOS = "<｜end▁of▁sentence｜>"
USER = "<｜User｜>"
ASSISTANT = "<｜Assistant｜>"
PAD = "<｜▁pad▁｜>"

# NF4 stores 4 bits per weight plus one absmax per block of 64; double quantisation stores those
# absmax values in 8 bits with one fp32 constant per 256 of them [QLoRA §3]:
NF4_BITS = 4 + 8 / 64 + 32 / (64 * 256)  # ≈ 4.127 bits per quantised weight
# Extra ``generate`` arguments used everywhere; one place to change the decoding setup.
GENERATE_EXTRA: dict = {}
# On CUDA a static KV cache decodes faster: benchmarks/real_model.py measured 9.3 -> 28 tokens/s for
# the 1.5B distill in NF4 and 27 -> 236 tokens/s in bf16 (where transformers also compiles the
# decoding step) on an H100 (docs/benchmarks.md). On the CPU it brings nothing, so it stays off there.
CUDA_GENERATE_EXTRA: dict = {"cache_implementation": "static"}
# Room kept free for the CUDA context, activations and the allocator's slack (an assumption).
HEADROOM_BYTES = 0.8e9
# Typical sustained memory bandwidth of a laptop/Colab CPU, for the speed notice (an assumption).
CPU_BANDWIDTH_GBS = 20.0


class ModelUnavailableError(RuntimeError):
    """The model is neither reachable on the hub nor present locally."""


class BitsAndBytesUnavailableError(ImportError):
    """4-bit loading was asked for but bitsandbytes is missing or cannot use this device."""


class NotEnoughMemoryError(RuntimeError):
    """The model (or a generation) does not fit in the free memory."""


def resolve_model(model: str) -> str:
    """Map a course name (``"R1-Distill-Qwen-1.5B"``) or hub id to the course name, or say what works.

    Case does not matter; ``"deepseek-ai/DeepSeek-R1-Distill-Qwen-7B"`` works as well.
    """
    if not isinstance(model, str):
        raise ValueError(f"model must be a name such as {DEFAULT_MODEL!r}, got {model!r}.")
    wanted = model.strip().lower()
    for name in SUPPORTED:
        spec = sizing.R1_MODELS[name]
        if wanted in (name.lower(), spec.hf_id.lower(), spec.hf_id.split("/")[-1].lower()):
            return name
    too_big = [n for n in sizing.R1_MODELS if n not in SUPPORTED]
    raise ValueError(
        f"{model!r} is not a supported R1 distill. Use one of {list(SUPPORTED)} "
        f"(the default is {DEFAULT_MODEL!r}); {too_big} are too large for one course GPU. "
        f"For another checkpoint in R1's format pass path='/folder/with/safetensors'."
    )


# --------------------------------------------------------------------------------------------------
# Configs a benchmark can build without downloading anything
# --------------------------------------------------------------------------------------------------


def r1_distill_qwen_1_5b_config():
    """The exact ``Qwen2Config`` of DeepSeek-R1-Distill-Qwen-1.5B ([cfg] on the hub, see FACTS.md).

    Build a random-weight copy with ``Qwen2ForCausalLM(r1_distill_qwen_1_5b_config())`` to measure
    memory and speed without a download.
    """
    from transformers import Qwen2Config

    arch = sizing.CONFIGS["Qwen2.5-Math-1.5B"]  # hidden, FFN, layers, heads shared with sizing
    return Qwen2Config(
        vocab_size=arch.vocab,  # 151,936
        hidden_size=arch.hidden,  # 1536
        intermediate_size=arch.intermediate,  # 8960
        num_hidden_layers=arch.n_layers,  # 28
        num_attention_heads=arch.n_heads,  # 12
        num_key_value_heads=arch.n_kv_heads,  # 2
        max_position_embeddings=131_072,
        rope_theta=10_000.0,
        rms_norm_eps=1e-6,
        tie_word_embeddings=False,
        hidden_act="silu",
        use_sliding_window=False,
        bos_token_id=151_646,
        eos_token_id=151_643,
        dtype="bfloat16",
    )


def compute_dtype() -> torch.dtype:
    """bf16 where the GPU has it in hardware (Ampere, compute capability 8, and newer), else fp16.

    A T4 (capability 7.5) gets fp16: torch can *emulate* bf16 there, but slowly. bf16 on CPU.
    """
    if torch.cuda.is_available():
        major, _minor = torch.cuda.get_device_capability()
        return torch.bfloat16 if major >= 8 else torch.float16
    return torch.bfloat16


def quantization_config(dtype: torch.dtype | None = None):
    """The ``BitsAndBytesConfig`` ``load`` uses: NF4, double quantisation, bf16/fp16 compute."""
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=dtype or compute_dtype(),
    )


def architecture(hf_config) -> sizing.TransformerConfig:
    """The sizing view (``sizing.TransformerConfig``) of a transformers Qwen2/Llama config."""
    heads = hf_config.num_attention_heads
    head_dim = getattr(hf_config, "head_dim", None) or hf_config.hidden_size // heads
    return sizing.TransformerConfig(
        name=getattr(hf_config, "_name_or_path", "") or hf_config.model_type,
        hidden=hf_config.hidden_size,
        intermediate=hf_config.intermediate_size,
        n_layers=hf_config.num_hidden_layers,
        n_heads=heads,
        n_kv_heads=getattr(hf_config, "num_key_value_heads", None) or heads,
        head_dim=head_dim,
        vocab=hf_config.vocab_size,
        tied_embeddings=bool(getattr(hf_config, "tie_word_embeddings", False)),
        qkv_bias=hf_config.model_type == "qwen2",
    )


def known_distill(arch: sizing.TransformerConfig) -> str | None:
    """The supported distill whose architecture ``arch`` has (a local copy of it), or None."""
    fields = ("hidden", "intermediate", "n_layers", "n_heads", "n_kv_heads", "vocab")
    for name in SUPPORTED:
        ref = sizing.R1_MODELS[name].config
        if all(getattr(arch, f) == getattr(ref, f) for f in fields):
            return name
    return None


# --------------------------------------------------------------------------------------------------
# Memory: predict before loading, measure after
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
    arch: sizing.TransformerConfig | str,
    quantized: bool,
    context_tokens: int = 4096,
    dtype_bits: int = 16,
    headroom: float = HEADROOM_BYTES,
) -> MemoryEstimate:
    """Bytes ``load`` will need for ``arch`` (a course name or a ``sizing.TransformerConfig``).

    Quantised: bitsandbytes turns only the transformer blocks' linear layers into NF4
    (``NF4_BITS`` each); the embedding and the LM head stay 16-bit. For the 1.5B model that is
    most of the difference between the naive "1.78B × 4 bits" and what is measured.
    """
    if isinstance(arch, str):
        arch = sizing.R1_MODELS[resolve_model(arch)].config
    total = sizing.param_count(arch)
    embed = arch.vocab * arch.hidden * (1 if arch.tied_embeddings else 2)
    if quantized:
        weights = sizing.weight_bytes(embed, 16) + sizing.weight_bytes(total - embed, NF4_BITS)
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
    """The largest supported distill whose estimate fits in ``free_bytes``, or None.

    Like ``sizing.largest_model_that_fits`` but with ``estimate_memory``'s refinements (16-bit
    embeddings, NF4 block scales, headroom), since this is what ``load`` will actually need.
    """
    by_size = sorted(SUPPORTED, key=lambda n: sizing.R1_MODELS[n].params_total, reverse=True)
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


def check_memory(estimate: MemoryEstimate, free_bytes: float, quantized: bool, where: str) -> None:
    """Raise NotEnoughMemoryError (naming the largest distill that fits) when it will not fit."""
    if estimate.total <= free_bytes:
        return
    best = largest_that_fits(free_bytes, quantized)
    hint = (
        f"load(model={best!r}) fits"
        if best
        else "no supported distill fits; free memory (restart the runtime) or use a larger GPU "
        "(Colab: Runtime > Change runtime type > T4 GPU)"
    )
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
            f"(largest_that_fits(free_memory('cuda'))), or restart the runtime to free the GPU."
        ) from err


# --------------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------------


def _bnb_backend() -> str:
    """Name of the native backend bitsandbytes loaded ("CUDA", "ROCm", "CPU", ...)."""
    cext = importlib.import_module("bitsandbytes.cextension")
    return str(getattr(cext, "BNB_BACKEND", "unknown"))


def check_bitsandbytes(device: torch.device | str) -> None:
    """Raise BitsAndBytesUnavailableError, naming the fix, if 4-bit loading cannot work on device."""
    device = torch.device(device)
    try:
        runtime.import_bitsandbytes()  # without its notice about an optional CPU kernel
    except ImportError as err:
        raise BitsAndBytesUnavailableError(
            "4-bit loading needs bitsandbytes, which is not installed. Fix: `pip install "
            "bitsandbytes` (on Colab: `%pip install -q bitsandbytes`, then Runtime > Restart "
            "session), or load unquantised with quantize=False."
        ) from err
    if device.type == "cuda":
        backend = _bnb_backend()
        if backend.upper() not in ("CUDA", "ROCM"):
            raise BitsAndBytesUnavailableError(
                f"bitsandbytes is installed but loaded its {backend} library, not CUDA, so it "
                "cannot quantise on this GPU. Fix: `pip install -U bitsandbytes` for a build "
                f"that matches your CUDA ({torch.version.cuda}), then restart the kernel; or "
                "load unquantised with quantize=False."
            )


@dataclass
class LoadedModel:
    """A model and its tokenizer, with where they came from and how they were placed."""

    model: object
    tokenizer: object
    name: str
    source: str
    revision: str | None
    device: torch.device
    quantized: bool
    dtype: torch.dtype
    estimate: MemoryEstimate
    stand_in: bool = False
    notice: str = ""

    @property
    def footprint_bytes(self) -> int:
        """Measured bytes of parameters and buffers (transformers' get_memory_footprint)."""
        return int(self.model.get_memory_footprint())

    def __repr__(self) -> str:
        q = "NF4 4-bit" if self.quantized else str(self.dtype).replace("torch.", "")
        return (
            f"LoadedModel({self.name}, {q} on {self.device}, "
            f"{self.footprint_bytes / 1e9:.3f} GB, from {self.source})"
        )


def _local_folder(path: str | os.PathLike) -> Path:
    folder = Path(path).expanduser()
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(
            f"{folder} is not a model folder (no config.json there). Fix: point path= (or "
            f"{PATH_ENV}) at a folder made by `huggingface-cli download <model> --local-dir "
            "FOLDER` or by r1.build_stand_in(FOLDER)."
        )
    if not any(folder.glob("*.safetensors")):
        raise ValueError(
            f"{folder} holds no *.safetensors files; the course reads safetensors only (pickled "
            ".bin weights can run code). Fix: download the safetensors version of the model."
        )
    return folder


def load(
    model: str = DEFAULT_MODEL,
    path: str | os.PathLike | None = None,
    quantize: bool | str = "auto",
    device: str = "auto",
    context_tokens: int = 4096,
    offline: bool | None = None,
    cache_dir: str | os.PathLike | None = None,
    free_memory_bytes: float | None = None,
    verbose: bool = True,
) -> LoadedModel:
    """Load an R1 distill (default DeepSeek-R1-Distill-Qwen-1.5B) for chatting and looking inside.

    - ``model``: one of ``SUPPORTED`` (course names or hub ids).
    - ``path``: a local folder instead of the hub; ``COURSE_R1_PATH`` is used when ``path`` is None.
    - ``quantize``: ``"auto"`` is NF4 4-bit on CUDA and unquantised on the CPU; ``True`` on the CPU
      also works with bitsandbytes >= 0.45 (slow, used by the tests).
    - ``context_tokens``: the KV cache to budget for in the memory check.
    - ``offline``: never touch the network (default: the ``HF_HUB_OFFLINE`` setting).
    - ``free_memory_bytes``: pretend this much memory is free (to try the check; default: measured).

    Raises ValueError (unsupported model), ModelUnavailableError (no network and no local copy),
    BitsAndBytesUnavailableError, NotEnoughMemoryError; each message says how to fix it.
    """
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    name = resolve_model(model)
    if path is None and os.environ.get(PATH_ENV):
        path = os.environ[PATH_ENV]
    if device == "auto":
        dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        dev = torch.device(device)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(
                "device='cuda' but torch sees no CUDA GPU. Fix: on Colab pick Runtime > Change "
                "runtime type > T4 GPU; elsewhere use device='auto' (CPU)."
            )
    if quantize == "auto":
        quantize = dev.type == "cuda"
    quantize = bool(quantize)

    if path is not None:
        folder = _local_folder(path)
        source, revision = str(folder), None
        marker = folder / STAND_IN_MARKER
        stand_in = marker.is_file()
        if stand_in:
            name = json.loads(marker.read_text())["name"]
        hf_config = AutoConfig.from_pretrained(folder, trust_remote_code=False)
        if not stand_in:  # a local copy: name it after the distill it matches, else the folder
            name = known_distill(architecture(hf_config)) or folder.name
        arch = dataclasses.replace(architecture(hf_config), name=name)
    else:
        stand_in = False
        source, revision = sizing.R1_MODELS[name].hf_id, REVISIONS[name]
        arch = dataclasses.replace(sizing.R1_MODELS[name].config, name=name)

    if quantize:
        check_bitsandbytes(dev)
    estimate = estimate_memory(
        arch, quantize, context_tokens, 16 if dev.type == "cuda" else 32, HEADROOM_BYTES
    )
    free = free_memory(dev) if free_memory_bytes is None else float(free_memory_bytes)
    check_memory(estimate, free, quantize, "the GPU" if dev.type == "cuda" else "the CPU (RAM)")

    if offline is None:
        from huggingface_hub import constants

        offline = bool(constants.HF_HUB_OFFLINE)
    common = {"trust_remote_code": False, "cache_dir": cache_dir}
    if path is None:
        common.update(revision=revision, local_files_only=offline)

    kwargs: dict = {"use_safetensors": True, **common}
    if quantize:
        dtype = compute_dtype() if dev.type == "cuda" else torch.bfloat16
        kwargs.update(
            quantization_config=quantization_config(dtype),
            device_map={"": dev.index or 0} if dev.type == "cuda" else "cpu",
            dtype=dtype,
        )
    elif dev.type == "cuda":
        dtype = compute_dtype()
        kwargs.update(dtype=dtype, device_map={"": dev.index or 0})
    else:
        dtype = torch.float32  # CPUs without bf16 units run float32 matmuls fastest
        kwargs.update(dtype=dtype)

    target = source
    try:
        tokenizer = AutoTokenizer.from_pretrained(target, **common)
        # a stand-in loads in a blink: no progress bar left behind on screen
        bars = runtime.quiet_progress_bars() if stand_in else nullcontext()
        with oom_guard(f"loading {name}"), bars:
            lm = AutoModelForCausalLM.from_pretrained(target, **kwargs)
    except OSError as err:
        if path is not None:
            raise
        raise ModelUnavailableError(
            f"Could not get {source} (revision {revision[:10]}) from the hub and found no copy in "
            "the local cache. Fix: connect to the internet once (on Colab it is on) and run "
            "load() again; or download it elsewhere with `huggingface-cli download "
            f"{source} --revision {revision} --local-dir FOLDER`, copy FOLDER here and pass "
            f"load(path='FOLDER') or set {PATH_ENV}=FOLDER. "
            f"(Cause: {str(err).splitlines()[0]})"
        ) from err
    if not quantize and dev.type == "cpu":
        lm.to(dev)
    lm.eval()
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"  # decoder-only batches pad on the left

    notice = ""
    if dev.type == "cpu" and not stand_in:
        gb = estimate.weights / 1e9
        rate = CPU_BANDWIDTH_GBS / gb
        how = "in NF4" if quantize else f"unquantised ({str(dtype).replace('torch.', '')})"
        notice = (
            f"No CUDA GPU: {name} runs {how} on the CPU ({gb:.1f} GB of weights). "
            "Each token reads every weight, so expect "
            f"at most ~{rate:.0f} tokens/s (about {CPU_BANDWIDTH_GBS:.0f} GB/s of RAM bandwidth), "
            f"so a 1,000-token line of reasoning takes at least {1000 / rate / 60:.1f} minutes. "
            "For the real experience use a GPU: on Colab, Runtime > Change runtime type > T4 GPU."
        )
    elif stand_in:
        notice = (
            f"Stand-in: a random-weight {hf_config.model_type} model built locally "
            f"({param_count(lm):,} parameters), not DeepSeek-R1. It runs "
            "every code path; its words mean nothing."
        )
    loaded = LoadedModel(
        lm, tokenizer, name, source, revision, dev, quantize, dtype, estimate, stand_in, notice
    )
    if verbose:
        print(repr(loaded))
        if notice:
            print(notice)
    return loaded


# --------------------------------------------------------------------------------------------------
# Chat template and thinking vs answer
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChatPrompt:
    """A prompt made by the model's own chat template, ending inside ``<think>``."""

    text: str
    template_opened_think: bool  # True when the template itself added "<think>\n"


def chat_prompt(
    tokenizer,
    question: str,
    history: Sequence[dict] = (),
) -> ChatPrompt:
    """Format ``question`` (after optional earlier ``history`` turns) with the tokenizer's template.

    No system prompt (model card). If the template does not already open ``<think>`` at the start
    of the reply, ``"<think>\\n"`` is added, as the model card asks.
    """
    if not isinstance(question, str) or not question.strip():
        raise ValueError("question must be a non-empty string, e.g. 'What is 12 * 13?'.")
    for turn in history:
        if turn.get("role") == "system":
            raise ValueError(
                "R1 distills are used without a system prompt (model card). Fix: put the "
                "instructions into the user message instead."
            )
    if getattr(tokenizer, "chat_template", None) is None:
        raise ValueError(
            "This tokenizer has no chat template. Fix: load the tokenizer that ships with the "
            "model (tokenizer_config.json / chat_template.jinja in its folder)."
        )
    messages = [*history, {"role": "user", "content": question}]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    opened = text.rstrip().endswith(THINK_OPEN)
    if not opened:
        text = text + THINK_OPEN + "\n"
    return ChatPrompt(text, opened)


def math_question(problem: str) -> str:
    """The model card's math prompt: the problem, then "reason step by step ... \\boxed{}"."""
    return f"{problem.strip()}\n{MATH_INSTRUCTION}"


@dataclass(frozen=True)
class Thought:
    """A completion cut into the reasoning and the final answer."""

    thinking: str
    answer: str
    finished: bool  # the thinking was closed with </think>


def _strip_tags(text: str) -> str:
    # Loop: removing one tag can join two halves into a new one ("<thi<think>nk>").
    while THINK_OPEN in text or THINK_CLOSE in text:
        text = text.replace(THINK_OPEN, "").replace(THINK_CLOSE, "")
    return text


def split_thinking(text: str, think_open_in_prompt: bool = True) -> Thought:
    """Split a completion into thinking and answer, robust to missing or repeated tags.

    - The answer is what follows the last ``</think>`` (R1's chat template keeps the same part of
      earlier assistant turns); everything before it is thinking.
    - No ``</think>``: if thinking was opened (in the prompt, the default, or by a ``<think>`` in the
      text) the whole text is unfinished thinking; otherwise it is all answer.
    - Tags never appear in either part; both are stripped of surrounding whitespace.
    """
    if not isinstance(text, str):
        raise ValueError(f"text must be a string, got {type(text).__name__}.")
    close_at = text.rfind(THINK_CLOSE)
    if close_at >= 0:
        thinking, answer, finished = text[:close_at], text[close_at + len(THINK_CLOSE) :], True
    elif think_open_in_prompt or THINK_OPEN in text:
        thinking, answer, finished = text, "", False
    else:
        thinking, answer, finished = "", text, False
    return Thought(_strip_tags(thinking).strip(), _strip_tags(answer).strip(), finished)


def extract_boxed(text: str) -> str | None:
    """The content of the last ``\\boxed{...}`` in ``text`` (nested braces allowed), or None."""
    start = text.rfind("\\boxed{")
    while start >= 0:
        i, depth = start + len("\\boxed{"), 1
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        if depth == 0:
            return text[start + len("\\boxed{") : i - 1].strip()
        start = text.rfind("\\boxed{", 0, start)  # unclosed: try an earlier one
    return None


# --------------------------------------------------------------------------------------------------
# Generation: one answer, a stream, a batch of samples
# --------------------------------------------------------------------------------------------------


@dataclass
class Completion:
    """One generated reply with its token ids and its thinking/answer split."""

    prompt: str
    prompt_ids: torch.Tensor  # (P,)
    completion_ids: torch.Tensor  # (C,), no padding, up to and including the end token if any
    text: str
    thought: Thought = field(init=False)
    thinking_tokens: int = field(init=False)

    def __post_init__(self) -> None:
        self.thought = split_thinking(self.text, think_open_in_prompt=True)
        self.thinking_tokens = len(self.completion_ids)

    @property
    def thinking(self) -> str:
        return self.thought.thinking

    @property
    def answer(self) -> str:
        return self.thought.answer


def _token_id(tokenizer, token: str) -> int | None:
    ids = tokenizer.encode(token, add_special_tokens=False)
    return ids[0] if len(ids) == 1 else None


def _make_completion(lm: LoadedModel, prompt: str, prompt_ids, new_ids) -> Completion:
    tok = lm.tokenizer
    new_ids = new_ids.detach().cpu()
    ends = (new_ids == tok.eos_token_id).nonzero()
    if len(ends):
        new_ids = new_ids[: int(ends[0]) + 1]
    text = tok.decode(new_ids, skip_special_tokens=True)
    c = Completion(prompt, prompt_ids.detach().cpu(), new_ids, text)
    close_id = _token_id(tok, THINK_CLOSE)
    if close_id is not None:
        hits = (new_ids == close_id).nonzero()
        c.thinking_tokens = int(hits[0]) if len(hits) else len(new_ids)
    return c


def sampling_kwargs(
    lm: LoadedModel,
    max_new_tokens: int,
    temperature: float = TEMPERATURE,
    top_p: float = TOP_P,
) -> dict:
    """``generate`` arguments for the model card's sampling (greedy when temperature is 0)."""
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}; e.g. 512.")
    if temperature < 0 or not 0 < top_p <= 1:
        raise ValueError(
            f"temperature {temperature} / top_p {top_p} out of range; the model card uses "
            f"temperature={TEMPERATURE}, top_p={TOP_P}."
        )
    tok = lm.tokenizer
    kw = {
        "max_new_tokens": int(max_new_tokens),
        "pad_token_id": tok.pad_token_id,
        "eos_token_id": tok.eos_token_id,
    }
    if temperature == 0:
        kw.update(do_sample=False, temperature=None, top_p=None, top_k=None)
    else:
        kw.update(do_sample=True, temperature=temperature, top_p=top_p, top_k=None)
    extra = (
        {**CUDA_GENERATE_EXTRA, **GENERATE_EXTRA} if lm.device.type == "cuda" else GENERATE_EXTRA
    )
    return {**extra, **kw}


def _encode(lm: LoadedModel, texts: list[str]) -> dict:
    enc = lm.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    return {k: v.to(lm.device) for k, v in enc.items()}


def chat(
    lm: LoadedModel,
    question: str,
    max_new_tokens: int = 1024,
    temperature: float = TEMPERATURE,
    top_p: float = TOP_P,
    seed: int = 0,
    history: Sequence[dict] = (),
) -> Completion:
    """One reply to ``question`` with the model card's sampling; seeded."""
    return sample(lm, question, 1, max_new_tokens, temperature, top_p, seed, history)[0][0]


def stream(
    lm: LoadedModel,
    question: str,
    max_new_tokens: int = 1024,
    temperature: float = TEMPERATURE,
    top_p: float = TOP_P,
    seed: int = 0,
    history: Sequence[dict] = (),
    ids_out: list[int] | None = None,
) -> Iterator[str]:
    """Yield the reply's text piece by piece while ``generate`` runs in a background thread.

    Pass a list as ``ids_out`` to receive the generated token ids as well.
    """
    from transformers import TextIteratorStreamer

    class RecordingStreamer(TextIteratorStreamer):
        def put(self, value) -> None:
            if ids_out is not None and not self.next_tokens_are_prompt:
                ids_out.extend(int(i) for i in value.reshape(-1).tolist())
            super().put(value)

    prompt = chat_prompt(lm.tokenizer, question, history)
    enc = _encode(lm, [prompt.text])
    streamer = RecordingStreamer(
        lm.tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=600
    )
    kw = sampling_kwargs(lm, max_new_tokens, temperature, top_p)
    failure: list[BaseException] = []

    def work() -> None:
        try:
            with torch.no_grad(), oom_guard("streaming a reply"):
                lm.model.generate(**enc, **kw, streamer=streamer)
        except BaseException as err:  # re-raised in the caller's thread below
            failure.append(err)
            streamer.end()

    torch.manual_seed(seed)
    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    try:
        for piece in streamer:
            if piece:
                yield piece
    finally:
        thread.join()
    if failure:
        raise failure[0]


def stream_chat(
    lm: LoadedModel,
    question: str,
    on_text: Callable[[str], None] | None = None,
    max_new_tokens: int = 1024,
    temperature: float = TEMPERATURE,
    top_p: float = TOP_P,
    seed: int = 0,
) -> Completion:
    """Stream a reply, calling ``on_text(text_so_far)`` after each piece; return the Completion."""
    prompt = chat_prompt(lm.tokenizer, question)
    text, ids = "", []
    for piece in stream(lm, question, max_new_tokens, temperature, top_p, seed, ids_out=ids):
        text += piece
        if on_text is not None:
            on_text(text)
    tok = lm.tokenizer
    prompt_ids = tok(prompt.text, add_special_tokens=False, return_tensors="pt")["input_ids"][0]
    return _make_completion(lm, prompt.text, prompt_ids, torch.tensor(ids, dtype=torch.long))


def sample(
    lm: LoadedModel,
    questions: str | Sequence[str],
    n: int = 4,
    max_new_tokens: int = 1024,
    temperature: float = TEMPERATURE,
    top_p: float = TOP_P,
    seed: int = 0,
    history: Sequence[dict] = (),
) -> list[list[Completion]]:
    """``n`` sampled completions for each question, all in one batched ``generate`` call.

    Returns one list of ``n`` Completions per question (a single question still gives ``[[...]]``).
    """
    if isinstance(questions, str):
        questions = [questions]
    if not questions or n < 1:
        raise ValueError("Pass at least one question and n >= 1, e.g. sample(lm, 'What is 2+2?').")
    prompts = [chat_prompt(lm.tokenizer, q, history).text for q in questions]
    enc = _encode(lm, prompts)
    kw = sampling_kwargs(lm, max_new_tokens, temperature, top_p)
    if n > 1 and not kw["do_sample"]:
        raise ValueError("n > 1 identical greedy answers make no sense; use temperature > 0.")
    torch.manual_seed(seed)
    with torch.no_grad(), oom_guard(f"sampling {n} x {len(prompts)} completions"):
        out = lm.model.generate(**enc, **kw, num_return_sequences=n)  # (B*n, P+C)
    width = enc["input_ids"].shape[1]
    results: list[list[Completion]] = []
    for b, prompt in enumerate(prompts):
        mask = enc["attention_mask"][b].bool()
        prompt_ids = enc["input_ids"][b][mask]
        results.append(
            [_make_completion(lm, prompt, prompt_ids, out[b * n + j, width:]) for j in range(n)]
        )
    return results


# --------------------------------------------------------------------------------------------------
# The thinking-budget experiment
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BudgetAnswer:
    """One problem answered with the thinking cut off at ``budget`` tokens."""

    budget: int
    problem: str
    expected: str
    thinking_tokens: int
    closed_by_model: bool  # the model wrote </think> itself before the budget ran out
    answer_text: str
    predicted: str | None
    correct: bool


def _left_pad(rows: list[torch.Tensor], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, width - len(r) :] = r
        mask[i, width - len(r) :] = 1
    return ids, mask


def answer_with_budget(
    lm: LoadedModel,
    problems: Sequence,
    budget: int,
    max_answer_tokens: int = 64,
    temperature: float = TEMPERATURE,
    top_p: float = TOP_P,
    seed: int = 0,
) -> list[BudgetAnswer]:
    """Let the model think for at most ``budget`` tokens, force ``</think>``, then read its answer.

    ``problems`` are objects with ``.question`` and ``.answer`` (``course_lib.math_problems``).
    Both phases are batched over the problems; ``budget=0`` answers without any thinking.
    """
    from course_lib.math_problems import is_correct

    if budget < 0:
        raise ValueError(f"budget must be >= 0 thinking tokens, got {budget}.")
    tok = lm.tokenizer
    close_id = _token_id(tok, THINK_CLOSE)
    prompts = [chat_prompt(tok, math_question(p.question)).text for p in problems]
    prompt_rows = [
        tok(t, add_special_tokens=False, return_tensors="pt")["input_ids"][0] for t in prompts
    ]
    force = tok("\n" + THINK_CLOSE + "\n\n", add_special_tokens=False, return_tensors="pt")
    force_ids = force["input_ids"][0]

    thinking_rows: list[torch.Tensor] = [torch.zeros(0, dtype=torch.long) for _ in problems]
    closed = [False] * len(problems)
    torch.manual_seed(seed)
    if budget > 0:
        ids, mask = _left_pad(prompt_rows, tok.pad_token_id)
        kw = sampling_kwargs(lm, budget, temperature, top_p)
        stops = [tok.eos_token_id] + ([close_id] if close_id is not None else [])
        kw["eos_token_id"] = stops
        with torch.no_grad(), oom_guard(f"thinking with a budget of {budget} tokens"):
            out = lm.model.generate(
                input_ids=ids.to(lm.device), attention_mask=mask.to(lm.device), **kw
            )
        new = out[:, ids.shape[1] :].cpu()
        for i, row in enumerate(new):
            hits = [j for j, t in enumerate(row.tolist()) if t in stops]
            cut = hits[0] if hits else len(row)
            thinking_rows[i] = row[:cut]
            closed[i] = bool(hits) and row[hits[0]].item() == close_id

    answer_rows = [torch.cat([p, t, force_ids]) for p, t in zip(prompt_rows, thinking_rows)]
    ids, mask = _left_pad(answer_rows, tok.pad_token_id)
    kw = sampling_kwargs(lm, max_answer_tokens, temperature, top_p)
    with torch.no_grad(), oom_guard("writing the answers"):
        out = lm.model.generate(
            input_ids=ids.to(lm.device), attention_mask=mask.to(lm.device), **kw
        )
    results = []
    for i, p in enumerate(problems):
        row = out[i, ids.shape[1] :].cpu()
        ends = (row == tok.eos_token_id).nonzero()
        if len(ends):
            row = row[: int(ends[0])]
        text = tok.decode(row, skip_special_tokens=True)
        predicted = extract_boxed(text)
        results.append(
            BudgetAnswer(
                budget,
                p.question,
                p.answer,
                len(thinking_rows[i]),
                closed[i],
                text,
                predicted,
                is_correct(predicted, p.answer),
            )
        )
    return results


def thinking_budget_run(
    lm: LoadedModel,
    problems: Sequence,
    budgets: Sequence[int],
    max_answer_tokens: int = 64,
    seed: int = 0,
    progress: bool = True,
) -> list[BudgetAnswer]:
    """``answer_with_budget`` for every budget (a progress bar over budgets); all answers, flat."""
    from tqdm.auto import tqdm

    results: list[BudgetAnswer] = []
    for budget in tqdm(list(budgets), desc="thinking budgets", disable=not progress, leave=False):
        results += answer_with_budget(lm, problems, int(budget), max_answer_tokens, seed=seed)
    return results


def budget_summary(results: Sequence[BudgetAnswer]) -> list[dict]:
    """Per budget: accuracy, mean thinking tokens used, and how often the model closed by itself."""
    rows = []
    for budget in sorted({r.budget for r in results}):
        group = [r for r in results if r.budget == budget]
        rows.append(
            {
                "budget": budget,
                "n": len(group),
                "accuracy": sum(r.correct for r in group) / len(group),
                "mean_thinking_tokens": sum(r.thinking_tokens for r in group) / len(group),
                "closed_by_model": sum(r.closed_by_model for r in group) / len(group),
            }
        )
    return rows


# --------------------------------------------------------------------------------------------------
# The stand-in: a tiny local model and tokenizer in R1's format
# --------------------------------------------------------------------------------------------------

# R1's chat template, written here in our own words: BOS, (no system prompt), user turns after
# <｜User｜>, assistant turns after <｜Assistant｜> keeping only the text after the last </think>, and
# with add_generation_prompt the reply is opened with "<think>\n" (as later R1 templates do).
_TEMPLATE = (
    "{{ bos_token }}"
    "{% for m in messages %}"
    "{% if m['role'] == 'user' %}{{ '" + USER + "' + m['content'] }}"
    "{% elif m['role'] == 'assistant' %}"
    "{% set c = m['content'] %}{% if '</think>' in c %}{% set c = c.split('</think>')[-1] %}{% endif %}"
    "{{ '" + ASSISTANT + "' + c + eos_token }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '" + ASSISTANT + "'OPEN }}{% endif %}"
)


def stand_in_chat_template(opens_think: bool = True) -> str:
    """A Jinja chat template in R1's format; ``opens_think=False`` gives the older variant."""
    return _TEMPLATE.replace("OPEN", " + '<think>\\n'" if opens_think else "")


def _stand_in_corpus() -> list[str]:
    from course_lib.math_problems import math_problems

    lines = []
    for p in math_problems():
        lines.append(math_question(p.question))
        lines.append(
            f"{THINK_OPEN}\n{p.trace}\n{THINK_CLOSE}\n\nThe answer is \\boxed{{{p.answer}}}."
        )
    return lines


def _stand_in_tokenizer(vocab_size: int, opens_think: bool):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    specials = [BOS, EOS, PAD, USER, ASSISTANT]
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(_stand_in_corpus(), trainer=trainer)
    tok = PreTrainedTokenizerFast(
        tokenizer_object=core, bos_token=BOS, eos_token=EOS, pad_token=PAD
    )
    # As in R1's tokenizer: <think> and </think> are single added tokens that are NOT special, so
    # decode(skip_special_tokens=True) keeps them in the text.
    tok.add_tokens([THINK_OPEN, THINK_CLOSE])
    tok.add_special_tokens({"additional_special_tokens": [USER, ASSISTANT]})
    tok.chat_template = stand_in_chat_template(opens_think)
    tok.padding_side = "left"
    return tok


def build_stand_in(
    path: str | os.PathLike,
    opens_think: bool = True,
    hidden: int = 64,
    layers: int = 2,
    heads: int = 4,
    kv_heads: int = 2,
    vocab_size: int = 400,
    train_steps: int = 0,
    seed: int = 0,
    config=None,
) -> Path:
    """Write a tiny random Qwen2 model + byte-level BPE tokenizer in R1's chat format to ``path``.

    ``load(path=...)`` then runs the real loading code on it. ``train_steps > 0`` fits it briefly
    to R1-style traces of the course's math problems, so its replies have R1's *shape*
    (thinking, ``</think>``, a boxed answer); it still cannot do math. Deterministic given ``seed``.

    ``config`` (a ``Qwen2Config``) replaces the tiny sizes, e.g. ``r1_distill_qwen_1_5b_config()``
    for a random-weight model of the real size (saved in bf16, ~3.6 GB) to measure memory and
    speed through ``load`` without a download. Its vocabulary must hold the stand-in tokenizer's.
    """
    from transformers import Qwen2Config, Qwen2ForCausalLM

    if hidden % heads or heads % kv_heads:
        raise ValueError("hidden must divide by heads and heads by kv_heads, e.g. 64/4/2.")
    folder = Path(path).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    tok = _stand_in_tokenizer(vocab_size, opens_think)
    ids = {
        "bos_token_id": tok.bos_token_id,
        "eos_token_id": tok.eos_token_id,
        "pad_token_id": tok.pad_token_id,
    }
    if config is None:
        cfg = Qwen2Config(
            vocab_size=len(tok),
            hidden_size=hidden,
            intermediate_size=hidden * 3,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            num_key_value_heads=kv_heads,
            max_position_embeddings=2048,
            rope_theta=10_000.0,
            rms_norm_eps=1e-6,
            tie_word_embeddings=False,
            **ids,
        )
    else:
        if config.vocab_size < len(tok):
            raise ValueError(
                f"config.vocab_size={config.vocab_size} is smaller than the stand-in tokenizer "
                f"({len(tok)} tokens); use a vocabulary of at least {len(tok)}."
            )
        cfg = copy.deepcopy(config)
        for key, value in ids.items():
            setattr(cfg, key, value)
    model = Qwen2ForCausalLM(cfg)
    if config is not None:
        model.to(torch.bfloat16)  # how the real checkpoints are stored
    if train_steps > 0:
        _fit_format(model, tok, train_steps, seed)
    model.generation_config.do_sample = True
    model.generation_config.temperature = TEMPERATURE
    model.generation_config.top_p = TOP_P
    with runtime.quiet_progress_bars():  # a few kilobytes: no bar left on screen
        model.save_pretrained(folder, safe_serialization=True)
    tok.save_pretrained(folder)
    marker = {
        "name": "R1 stand-in (tiny random Qwen2)"
        if config is None
        else f"R1 stand-in (random weights, {known_distill(architecture(cfg)) or 'custom'} shape)",
        "opens_think": opens_think,
        "train_steps": train_steps,
        "seed": seed,
    }
    (folder / STAND_IN_MARKER).write_text(json.dumps(marker, indent=1))
    return folder


def _fit_format(model, tok, steps: int, seed: int) -> list[float]:
    """A few AdamW steps of next-token loss on R1-style chats so the stand-in learns the format."""
    from course_lib.math_problems import math_problems

    texts, prompt_lens = [], []
    for p in math_problems():
        prompt = tok.apply_chat_template(
            [{"role": "user", "content": math_question(p.question)}],
            tokenize=False,
            add_generation_prompt=True,
        )
        if not prompt.rstrip().endswith(THINK_OPEN):
            prompt += THINK_OPEN + "\n"
        prompt_lens.append(len(tok(prompt, add_special_tokens=False)["input_ids"]))
        texts.append(
            f"{prompt}{p.trace}\n{THINK_CLOSE}\n\nThe answer is \\boxed{{{p.answer}}}.{EOS}"
        )
    tok.padding_side = "right"
    enc = tok(texts, add_special_tokens=False, padding=True, return_tensors="pt")
    tok.padding_side = "left"
    ids, mask = enc["input_ids"], enc["attention_mask"]
    labels = ids.masked_fill(mask == 0, -100)
    for row, n in zip(labels, prompt_lens):
        row[:n] = -100  # learn the reply, not the question
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    batch = min(16, len(texts))
    losses = []
    for _ in range(steps):
        pick = torch.randperm(len(texts), generator=gen)[:batch]
        loss = model(input_ids=ids[pick], attention_mask=mask[pick], labels=labels[pick]).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    model.eval()
    return losses


def param_count(model) -> int:
    """Number of parameters of a loaded model (4-bit packed weights counted as their originals)."""
    total = 0
    for p in model.parameters():
        n = p.numel()
        if p.dtype == torch.uint8 and hasattr(p, "quant_state"):
            n *= 2  # two 4-bit weights per byte
        total += n
    return total
