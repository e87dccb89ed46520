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

from course_lib import published, runtime, sizing, validate
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
from course_lib.runtime import hub_telemetry_off

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


def _unreadable() -> tuple[type[BaseException], ...]:
    from safetensors import SafetensorError

    return (OSError, ValueError, KeyError, json.JSONDecodeError, SafetensorError)


def _broken_folder(folder: Path, what: str, err: BaseException) -> ModelUnavailableError:
    """The course's message for a local model folder whose files cannot be read."""
    cause = str(err).splitlines()[0] if str(err) else type(err).__name__
    return ModelUnavailableError(
        f"The model folder {folder} is damaged: {what} ({cause}). Fix: download it again "
        "(`huggingface-cli download <model> --local-dir FOLDER`), or rebuild a stand-in with "
        "r1.stand_in.build(FOLDER, overwrite=True)."
    )


def _read_local_config(folder: Path):
    """transformers' config of a local folder, or ModelUnavailableError naming what is wrong."""
    from transformers import AutoConfig

    try:
        raw = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise _broken_folder(folder, "config.json is not valid JSON", err) from err
    if not isinstance(raw, dict) or "model_type" not in raw:
        raise _broken_folder(
            folder, "config.json has no model_type (it should say e.g. 'qwen2')",
            ValueError(f"keys: {sorted(raw)[:8] if isinstance(raw, dict) else type(raw).__name__}"),
        )  # fmt: skip
    try:
        return AutoConfig.from_pretrained(folder, trust_remote_code=False)
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise _broken_folder(folder, "transformers cannot read config.json", err) from err


def _stand_in_name(folder: Path) -> str | None:
    """The stand-in's name from its marker file, or None for a model that is not a stand-in."""
    marker = folder / STAND_IN_MARKER
    if not marker.is_file():
        return None
    try:
        return str(json.loads(marker.read_text(encoding="utf-8"))["name"])
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as err:
        raise _broken_folder(folder, f"{STAND_IN_MARKER} cannot be read", err) from err


def _hub_reachable(timeout: float = 5.0) -> str | None:
    """None if the hub answers within ``timeout`` seconds, else why not (one try, no retries).

    huggingface_hub retries a failed download five times with back-off (about 46 s in all before
    the error); one quick look first lets an offline machine fail at once.
    """
    from huggingface_hub import constants, get_session

    try:
        get_session().head(constants.ENDPOINT, timeout=timeout)
    except Exception as err:  # any failure to connect means: not reachable from here
        return str(err).splitlines()[0] if str(err) else type(err).__name__
    return None


def _cached(repo_id: str, revision: str, cache_dir) -> bool:
    """Is this revision's config already in the local hub cache (then no network is needed)?"""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, "config.json", cache_dir=cache_dir, revision=revision)
    return isinstance(found, str)


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
    - ``offline``: never touch the network (default: the ``HF_HUB_OFFLINE`` setting). Not offline
      and not in the cache: one quick look at the hub first, so a machine without a network
      fails at once with the fix rather than after huggingface_hub's retries.
    - ``free_memory_bytes``: pretend this much memory is free (to try the check; default: measured).
    - ``dtype``: what to compute in (``resolve_dtype``): "auto" is bf16 on Ampere and newer GPUs,
      fp16 on a T4 (no bf16 there), float32 on a CPU. In fp16 one forward pass is checked for inf/NaN
      right after loading (fp16 overflows past 65,504; reported for Qwen2 models); if it is not
      finite the model is loaded again in float32 and the notice says so.

    Raises ValueError (unsupported model, dtype or a bad argument), ModelUnavailableError (no
    network and no local copy, or a local folder with damaged files), BitsAndBytesUnavailableError,
    NotEnoughMemoryError; each message says how to fix it. Hugging Face telemetry is turned off
    (:func:`course_lib.runtime.hub_telemetry_off`).
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    hub_telemetry_off()
    name = resolve_model(model)
    validate.choice(
        "quantize", quantize, (True, False, "auto"),
        "'auto' is NF4 on a GPU and unquantised on a CPU; True or False force it",
    )  # fmt: skip
    context_tokens = validate.number(
        "context_tokens", context_tokens, "the KV cache to budget for, e.g. 4096.", low=0,
        integer=True,
    )  # fmt: skip
    if free_memory_bytes is not None:
        sizing.free_memory_bytes(free_memory_bytes, "free_memory_bytes")
    path_from = "path" if path is not None else None
    if path is None and os.environ.get(PATH_ENV):
        path, path_from = os.environ[PATH_ENV], "env"
    if device == "auto":
        dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            dev = torch.device(device)
        except (RuntimeError, TypeError) as err:
            raise ValueError(
                f"device={device!r} is not a device; use 'auto' (a GPU when there is one), "
                "'cpu' or 'cuda'."
            ) from err
        if dev.type not in ("cpu", "cuda"):
            raise ValueError(
                f"device={device!r}: the course runs on 'cpu' or 'cuda' ('auto' picks)."
            )
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(
                "device='cuda' but torch sees no CUDA GPU. Fix: on Colab pick Runtime > Change "
                "runtime type > T4 GPU; elsewhere use device='auto' (CPU)."
            )
    if quantize == "auto":
        quantize = dev.type == "cuda"

    if path is not None:
        folder = _local_folder(path)
        source, revision = str(folder), None
        stand_in_name = _stand_in_name(folder)
        stand_in = stand_in_name is not None
        if stand_in:
            name = stand_in_name
        hf_config = _read_local_config(folder)
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
        est = estimate_memory(arch, quantize, context_tokens, bits, HEADROOM_BYTES)
        check_memory(
            est, free, quantize, where, path_from=path_from,
            path=None if path is None else str(path), context_tokens=context_tokens,
            dtype_bits=bits,
        )  # fmt: skip
        return est

    estimate = estimate_for(dtype)  # refuses, naming the fix, what will not fit

    if offline is None:
        from huggingface_hub import constants

        offline = bool(constants.HF_HUB_OFFLINE)
    if path is None and not offline and not _cached(source, revision, cache_dir):
        why = _hub_reachable()
        if why is not None:
            raise ModelUnavailableError(
                f"Could not reach the Hugging Face hub to download {source} and found no copy in "
                "the local cache. Fix: connect to the internet (on Colab it is on) and run load() "
                "again; or download it elsewhere with `huggingface-cli download "
                f"{source} --revision {revision} --local-dir FOLDER`, copy FOLDER here and pass "
                f"load(path='FOLDER') or set {PATH_ENV}=FOLDER. Working offline on purpose? Set "
                f"HF_HUB_OFFLINE=1 to use only the cache. (Cause: {why})"
            )
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
    _UNREADABLE = _unreadable()  # what a damaged file raises (not NotEnoughMemoryError)
    try:
        tokenizer = AutoTokenizer.from_pretrained(target, **common)
        # a stand-in loads in a blink: no progress bar left behind on screen
        bars = runtime.quiet_progress_bars() if stand_in else nullcontext()
        with oom_guard(f"loading {name}"), bars:
            lm = AutoModelForCausalLM.from_pretrained(target, **model_kwargs(dtype))
    except _UNREADABLE as err:
        if path is not None:  # the folder is here, so its files are what is wrong
            raise _broken_folder(
                Path(source), "its tokenizer or weights cannot be read", err
            ) from err
        if not isinstance(err, OSError):
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
