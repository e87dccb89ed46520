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
import os
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch

from course_lib import published, runtime
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
        source, revision = published.R1_MODELS[name].hf_id, REVISIONS[name]
        arch = dataclasses.replace(published.R1_MODELS[name].config, name=name)

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
