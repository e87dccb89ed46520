"""Loading an R1 distill: 4-bit NF4 on a GPU, unquantised on a CPU, checked before it starts.

:func:`load` reads a distill from the hub at a pinned revision (``models.REVISIONS``, the one place
they live) or from a local folder (``path=`` or the ``COURSE_R1_PATH`` environment variable). On
CUDA it quantises to bitsandbytes NF4 with double quantisation (QLoRA, Dettmers et al. 2023,
arXiv 2305.14314, §3); without CUDA it loads the same weights unquantised and says how slow that
will be. It checks the free memory (:mod:`course_lib.r1.models`) *before* loading and suggests the
largest distill that fits. ``trust_remote_code`` stays off and only safetensors are read.

Nothing here runs on import.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from course_lib import published
from course_lib.r1.models import (
    DEFAULT_MODEL,
    HEADROOM_BYTES,
    REVISIONS,
    MemoryEstimate,
    architecture,
    check_memory,
    estimate_memory,
    free_memory,
    known_distill,
    oom_guard,
    resolve_model,
)

PATH_ENV = "COURSE_R1_PATH"  # a local folder with config.json, safetensors and the tokenizer


STAND_IN_MARKER = "COURSE_STAND_IN.json"
# Typical sustained memory bandwidth of a laptop/Colab CPU, for the speed notice (an assumption).
CPU_BANDWIDTH_GBS = 20.0


class ModelUnavailableError(RuntimeError):
    """The model is neither reachable on the hub nor present locally."""


class BitsAndBytesUnavailableError(ImportError):
    """4-bit loading was asked for but bitsandbytes is missing or cannot use this device."""


def gpu_has_bf16() -> bool:
    """Does the CUDA GPU compute in bfloat16 in hardware (Ampere, compute capability 8.0, or newer)?

    A T4 is 7.5 (sm_75): it has fp16 tensor cores but no bf16, which torch would only emulate, slowly.
    """
    return torch.cuda.is_available() and torch.cuda.get_device_capability()[0] >= 8


def compute_dtype() -> torch.dtype:
    """bf16 where the GPU has it in hardware (``gpu_has_bf16``), else fp16 (a T4). bf16 on CPU."""
    if torch.cuda.is_available():
        return torch.bfloat16 if gpu_has_bf16() else torch.float16
    return torch.bfloat16


DTYPES: dict[str, torch.dtype] = {
    "fp16": torch.float16,
    "float16": torch.float16,
    "bf16": torch.bfloat16,
    "bfloat16": torch.bfloat16,
    "fp32": torch.float32,
    "float32": torch.float32,
}


def resolve_dtype(dtype: str | torch.dtype, device: torch.device, quantize: bool) -> torch.dtype:
    """The dtype ``load`` computes in (and keeps unquantised weights in).

    ``"auto"``: on CUDA ``compute_dtype()`` (bf16, or fp16 on a T4); on the CPU float32 for
    unquantised weights (CPUs without bf16 units run it fastest) and bf16 for NF4's compute.
    Otherwise one of ``DTYPES`` or a torch dtype; bf16 on a GPU without it is refused.
    """
    if isinstance(dtype, str) and dtype == "auto":
        if device.type == "cuda":
            return compute_dtype()
        return torch.bfloat16 if quantize else torch.float32
    dt = DTYPES.get(dtype.lower()) if isinstance(dtype, str) else dtype
    if dt not in (torch.float16, torch.bfloat16, torch.float32):
        raise ValueError(
            f"dtype={dtype!r} is not one the course loads in; use 'auto', 'fp16', 'bf16' or 'fp32'."
        )
    if dt == torch.bfloat16 and device.type == "cuda" and not gpu_has_bf16():
        major, minor = torch.cuda.get_device_capability()
        raise ValueError(
            f"This GPU (compute capability {major}.{minor}, e.g. a T4) has no bfloat16: torch would "
            "emulate it, slowly. Fix: dtype='fp16' (what 'auto' picks here) or dtype='fp32'."
        )
    return dt


def logits_are_finite(model, tokenizer, text: str = "What is 12 * 13? Think step by step.") -> bool:
    """One forward pass over ``text``: are all logits finite? (fp16 can overflow to inf/NaN.)"""
    ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
    device = next(model.parameters()).device
    with torch.no_grad():
        logits = model(input_ids=ids.to(device)).logits
    return bool(torch.isfinite(logits).all())


def quantization_config(dtype: torch.dtype | None = None):
    """The ``BitsAndBytesConfig`` ``load`` uses: NF4, double quantisation, bf16/fp16 compute."""
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=dtype or compute_dtype(),
    )


def _bnb_backend() -> str:
    """Name of the native backend bitsandbytes loaded ("CUDA", "ROCm", "CPU", ...)."""
    cext = importlib.import_module("bitsandbytes.cextension")
    return str(getattr(cext, "BNB_BACKEND", "unknown"))


def check_bitsandbytes(device: torch.device | str) -> None:
    """Raise BitsAndBytesUnavailableError, naming the fix, if 4-bit loading cannot work on device."""
    device = torch.device(device)
    # On CPUs with AVX512-BF16, bitsandbytes looks for an optional fused kernel package ("kernels")
    # when it loads and logs a warning when it is absent; it then uses its own kernels. Not our concern.
    logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)
    try:
        importlib.import_module("bitsandbytes")
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
            "FOLDER` or by r1.stand_in.build(FOLDER)."
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
    dtype: str | torch.dtype = "auto",
) -> LoadedModel:
    """Load an R1 distill (default DeepSeek-R1-Distill-Qwen-1.5B) for chatting and looking inside.

    - ``model``: one of ``SUPPORTED`` (course names or hub ids).
    - ``path``: a local folder instead of the hub; ``COURSE_R1_PATH`` is used when ``path`` is None.
    - ``quantize``: ``"auto"`` is NF4 4-bit on CUDA and unquantised on the CPU; ``True`` on the CPU
      also works with bitsandbytes >= 0.45 (slow, used by the tests).
    - ``context_tokens``: the KV cache to budget for in the memory check.
    - ``offline``: never touch the network (default: the ``HF_HUB_OFFLINE`` setting).
    - ``free_memory_bytes``: pretend this much memory is free (to try the check; default: measured).
    - ``dtype``: what to compute in (``resolve_dtype``): "auto" is bf16 on Ampere and newer GPUs,
      fp16 on a T4 (no bf16 there), float32 on a CPU. In fp16 one forward pass is checked for inf/NaN
      right after loading (fp16 overflows past 65,504; reported for Qwen2 models); if it is not
      finite the model is loaded again in float32 and the notice says so.

    Raises ValueError (unsupported model or dtype), ModelUnavailableError (no network and no local
    copy), BitsAndBytesUnavailableError, NotEnoughMemoryError; each message says how to fix it.
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
        source, revision = published.R1_MODELS[name].hf_id, REVISIONS[name]
        arch = dataclasses.replace(published.R1_MODELS[name].config, name=name)

    if quantize:
        check_bitsandbytes(dev)
    dtype = resolve_dtype(dtype, dev, quantize)
    free = free_memory(dev) if free_memory_bytes is None else float(free_memory_bytes)
    where = "the GPU" if dev.type == "cuda" else "the CPU (RAM)"

    def estimate_for(dt: torch.dtype) -> MemoryEstimate:
        bits = 32 if dt == torch.float32 else 16
        return estimate_memory(arch, quantize, context_tokens, bits, HEADROOM_BYTES)

    estimate = estimate_for(dtype)
    check_memory(estimate, free, quantize, where)

    if offline is None:
        from huggingface_hub import constants

        offline = bool(constants.HF_HUB_OFFLINE)
    common = {"trust_remote_code": False, "cache_dir": cache_dir}
    if path is None:
        common.update(revision=revision, local_files_only=offline)

    def model_kwargs(dt: torch.dtype) -> dict:
        kwargs: dict = {"use_safetensors": True, "dtype": dt, **common}
        if dev.type == "cuda":
            kwargs["device_map"] = {"": dev.index or 0}
        elif quantize:
            kwargs["device_map"] = "cpu"
        if quantize:
            kwargs["quantization_config"] = quantization_config(dt)
        return kwargs

    target = source
    try:
        tokenizer = AutoTokenizer.from_pretrained(target, **common)
        with oom_guard(f"loading {name}"):
            lm = AutoModelForCausalLM.from_pretrained(target, **model_kwargs(dtype))
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

    fallback = ""
    if dtype == torch.float16 and not logits_are_finite(lm, tokenizer):
        fallback = (
            "In fp16 a test forward pass gave inf/NaN (16-bit overflow), so the model was loaded "
            "again in float32: slower, and "
            + ("the NF4 weights compute in float32." if quantize else "twice the memory.")
        )
        del lm
        if dev.type == "cuda":
            torch.cuda.empty_cache()
        dtype = torch.float32
        estimate = estimate_for(dtype)
        check_memory(estimate, free, quantize, where)
        with oom_guard(f"loading {name} in float32"):
            lm = AutoModelForCausalLM.from_pretrained(target, **model_kwargs(dtype))
    if not quantize and dev.type == "cpu":
        lm.to(dev)
    lm.eval()
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"  # decoder-only batches pad on the left

    notice = fallback + " " if fallback else ""
    if dev.type == "cpu" and not stand_in:
        gb = estimate.weights / 1e9
        rate = CPU_BANDWIDTH_GBS / gb
        how = "in NF4" if quantize else f"unquantised ({str(dtype).replace('torch.', '')})"
        notice += (
            f"No CUDA GPU: {name} runs {how} on the CPU ({gb:.1f} GB of weights). "
            "Each token reads every weight, so expect "
            f"at most ~{rate:.0f} tokens/s (about {CPU_BANDWIDTH_GBS:.0f} GB/s of RAM bandwidth), "
            f"so a 1,000-token line of reasoning takes at least {1000 / rate / 60:.1f} minutes. "
            "For the real experience use a GPU: on Colab, Runtime > Change runtime type > T4 GPU."
        )
    elif stand_in:
        notice += (
            f"Stand-in: a random-weight {hf_config.model_type} model built locally "
            f"({lm.num_parameters():,} parameters), not DeepSeek-R1. It runs "
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
