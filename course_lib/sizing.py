"""Cost and memory calculators for DeepSeek-V3/R1 and the R1 distills: numbers in, numbers out.

The published numbers they start from are :mod:`course_lib.published` (each cited); parameter
counts and KV elements per token come from :mod:`course_lib.architectures`. docs/references.md works
the same arithmetic by hand.

What is simplified, plainly:
  * Memory = weights + KV cache. Activations, CUDA context, allocator fragmentation and quantisation
    scales/zero-points are left out, so a model that "fits" here may still need a little more room.
  * ``weight_bytes`` applies one bit width to every parameter; real quantisers keep some parts wider.
    ``mixed_weight_bytes`` gives each part of the model (:func:`course_lib.architectures.param_groups`)
    its own bits, as the community "1.58-bit" R1 does.
  * Training compute is 6 * N_active * D (forward + backward of the matmuls); attention scores and the
    multi-token-prediction module are left out, so it is a lower bound.
  * Decode speed is an upper bound from memory bandwidth: a batch-1 token reads every active weight
    once (of the input embedding only its own row) and the KV cache. Real kernels reach a fraction.
  * An MoE's routed experts are assumed evenly loaded (what its balancing aims at) when a pass over
    many tokens reads them (``params_read``); :mod:`course_lib.roofline` uses it.

Units: every memory argument and result is in **bytes** (so is ``r1.models``'s memory check); GB =
1e9 bytes, used only for display and the published specs' ``*_gb`` fields, and GB/s = 1e9 bytes
per second (vendor convention); GiB = 2**30 bytes appears only where a source uses it. Every
argument is checked (:mod:`course_lib.validate`): a finite number in range, or a ValueError that
says what to pass. Nothing runs on import.
"""

from __future__ import annotations

from collections.abc import Mapping

from course_lib import validate
from course_lib.architectures import (
    CONFIGS,
    TransformerConfig,
    config_kv_elements_per_token,
    param_groups,
)
from course_lib.published import (
    GPU,
    GPUS,
    H800,
    R1_MODELS,
    R1_TRAINING_STAGES,
    V3_CLUSTER_GPUS,
    V3_RENTAL_PRICE_PER_GPU_HOUR,
    V3_TRAINING_GPU_HOURS,
    ModelSpec,
)

GB = 1e9

# Bits per weight the calculators show: bf16/fp16, int8/fp8, 4-bit (NF4/Q4), ternary {-1, 0, 1}
# whose information content is log2(3) ≈ 1.58 bits.
BITS_CHOICES: tuple[float, ...] = (16, 8, 4, 1.58)


def _nonneg(name: str, value, fix: str) -> float:
    return validate.number(name, value, fix, low=0)


def _pos(name: str, value, fix: str) -> float:
    return validate.number(name, value, fix, low=0, low_open=True)


def _bits(bits) -> float:
    """Bits per weight: 32 (fp32) down to 0.5 (codebook quantisers go below 1); 1.58 is ternary."""
    return validate.number(
        "bits", bits, "pass bits per weight, e.g. 16, 8, 4 or 1.58.", low=0.5, high=32
    )


def _tokens(context_tokens) -> int:
    return validate.number(
        "context_tokens", context_tokens, "pass a token count such as 4096.", low=0, integer=True
    )


def _batch(batch) -> int:
    return validate.number(
        "batch", batch, "pass the number of sequences, e.g. 1.", low=1, integer=True
    )


def _kv_bytes_per_element(value, name: str = "bytes_per_element") -> float:
    return validate.number(
        name, value, "use 2 for bf16/fp16, 1 for fp8, 0.5 for 4-bit.", low=0.125, high=8
    )


def get_gpu(gpu: str | GPU) -> GPU:
    """Look a GPU up by name (a key of ``GPUS``), or pass a ``GPU`` through."""
    if isinstance(gpu, GPU):
        return gpu
    if gpu == "H800":
        return H800
    if gpu not in GPUS:
        raise ValueError(
            f"Unknown GPU {gpu!r}; use one of {sorted(GPUS)} (or 'H800'), "
            "or build your own: published.GPU(name, memory_gb, bandwidth_gbs)."
        )
    return GPUS[gpu]


def get_model(model: str | ModelSpec) -> ModelSpec:
    """Look an R1 model up by name (a key of ``R1_MODELS``), or pass a ``ModelSpec`` through."""
    if isinstance(model, ModelSpec):
        return model
    if model not in R1_MODELS:
        raise ValueError(
            f"Unknown model {model!r}; use one of {list(R1_MODELS)} or pass a published.ModelSpec."
        )
    return R1_MODELS[model]


# --------------------------------------------------------------------------------------------------
# Training cost [V3 Table 1] and 6·N·D
# --------------------------------------------------------------------------------------------------


def training_cost(
    gpu_hours: float, price_per_gpu_hour: float = V3_RENTAL_PRICE_PER_GPU_HOUR
) -> float:
    """Rental cost in dollars: GPU-hours x price per GPU-hour."""
    h = _nonneg("gpu_hours", gpu_hours, "pass the GPU-hours, e.g. 2_788_000.")
    p = _nonneg("price_per_gpu_hour", price_per_gpu_hour, "pass dollars per GPU-hour, e.g. 2.0.")
    return h * p


def training_cost_table(
    price_per_gpu_hour: float = V3_RENTAL_PRICE_PER_GPU_HOUR,
    gpu_hours: dict[str, int] | None = None,
) -> list[dict[str, float | str]]:
    """[V3 Table 1] recomputed: one row per stage plus a "total" row, {stage, gpu_hours, cost_usd}."""
    stages = V3_TRAINING_GPU_HOURS if gpu_hours is None else gpu_hours
    rows: list[dict[str, float | str]] = [
        {"stage": s, "gpu_hours": h, "cost_usd": training_cost(h, price_per_gpu_hour)}
        for s, h in stages.items()
    ]
    total = sum(stages.values())
    rows.append(
        {"stage": "total", "gpu_hours": total, "cost_usd": training_cost(total, price_per_gpu_hour)}
    )
    return rows


def r1_training_gpu_hours() -> dict[str, float]:
    """R1's own stages after V3-Base [R1-Nature SI], in H800 GPU-hours: GPUs x wall-clock hours
    where the paper gives both, else the GPU-hours it reports. Feed it to ``training_cost_table``."""
    return {
        st.name: st.n_gpus * st.wall_hours if st.wall_hours is not None else st.reported_gpu_hours
        for st in R1_TRAINING_STAGES
    }


def training_flops(n_active_params: float, n_tokens: float) -> float:
    """Training compute from the 6·N·D rule: 2 FLOPs per weight forward, 4 backward, per token.

    For an MoE, N is the parameters *activated* per token (37B for V3), not the total (671B).
    """
    n = _pos("n_active_params", n_active_params, "pass e.g. 37e9 for DeepSeek-V3.")
    d = _pos("n_tokens", n_tokens, "pass e.g. 14.8e12 for DeepSeek-V3's pre-training.")
    return 6.0 * n * d


def implied_utilisation(flops: float, gpu_hours: float, peak_tflops: float) -> float:
    """Fraction of peak the GPUs must have sustained: flops / (GPU-seconds x peak FLOP/s)."""
    f = _nonneg("flops", flops, "pass the training FLOPs, e.g. training_flops(37e9, 14.8e12).")
    h = _pos("gpu_hours", gpu_hours, "pass the GPU-hours spent, e.g. 2_664_000.")
    p = _pos("peak_tflops", peak_tflops, "pass a GPU's peak, e.g. sizing.H800.fp8_tflops.")
    return f / (h * 3600.0 * p * 1e12)


def wall_clock_days(gpu_hours: float, n_gpus: int = V3_CLUSTER_GPUS) -> float:
    """Days the run takes on ``n_gpus`` GPUs working in parallel."""
    h = _nonneg("gpu_hours", gpu_hours, "pass the GPU-hours, e.g. 2_664_000.")
    n = validate.number("n_gpus", n_gpus, "pass the cluster size, e.g. 2048.", low=1, integer=True)
    return h / n / 24.0


# --------------------------------------------------------------------------------------------------
# Memory and speed
# --------------------------------------------------------------------------------------------------


def weight_bytes(n_params: float, bits: float) -> float:
    """Bytes to hold ``n_params`` weights at ``bits`` bits each: n · bits / 8."""
    n = _nonneg("n_params", n_params, "pass a parameter count such as 1.78e9.")
    return n * _bits(bits) / 8.0


def mixed_weight_bytes(groups: Mapping[str, float], bits: Mapping[str, float]) -> dict[str, float]:
    """Bytes of each group of parameters at its own bit width: {group: n_params * bits / 8}.

    ``groups`` is e.g. ``architectures.param_groups(cfg)``; ``bits`` maps group names to bits per
    weight, with ``"*"`` for every group it does not name. The community "1.58-bit" R1 is
    ``{"routed experts": 1.5625, "*": 4.5}``: sum the values for the whole model.
    """
    unknown = sorted(set(bits) - set(groups) - {"*"})
    if unknown:
        raise ValueError(
            f"bits names groups the model does not have: {unknown}; use {list(groups)} or '*'."
        )
    missing = [g for g in groups if g not in bits and "*" not in bits]
    if missing:
        raise ValueError(
            f"no bits for {missing}; name them or give '*' for the rest, e.g. '*': 4.5."
        )
    return {g: weight_bytes(n, bits.get(g, bits.get("*"))) for g, n in groups.items()}


def params_read(model: str | ModelSpec | TransformerConfig, tokens: int = 1) -> dict[str, float]:
    """Parameters one forward pass over ``tokens`` tokens reads, by group (``param_groups``' names).

    Every weight matrix is read once per pass, however many tokens share it; of the input embedding
    only the tokens' own rows; of an MoE's routed experts those the tokens choose, counted as the
    expected number of distinct experts when each token picks ``n_activated_experts`` of
    ``n_routed_experts`` evenly (8 for one token of R1, nearly all 256 for a thousand). A ModelSpec
    without a config reads its ``params_active``, under the group "all".
    """
    n = _pos("tokens", tokens, "pass how many tokens the pass processes, e.g. 1 or 512.")
    if isinstance(model, TransformerConfig):
        cfg = model
    else:
        cfg = get_model(model).config
        if cfg is None:
            return {"all": get_model(model).params_active}
    groups = dict(param_groups(cfg))
    groups["embedding"] = min(n, cfg.vocab_size) * cfg.d_model
    if cfg.n_routed_experts:
        k, e = cfg.n_activated_experts, cfg.n_routed_experts
        distinct = e * (1 - (1 - k / e) ** n)
        groups["routed experts"] = groups["routed experts"] / e * distinct
    return groups


def params_read_per_token(model: str | ModelSpec | TransformerConfig) -> float:
    """Parameters a batch-1 decoding step reads: the active ones, of the input embedding one row.

    R1-Distill-Qwen-1.5B: 1.78B - 233M embedding + 1,536 = 1.54B; DeepSeek-R1: 36.6B of 671B.
    """
    return sum(params_read(model, 1).values())


def kv_cache_bytes(
    model: str | ModelSpec | TransformerConfig,
    context_tokens: int,
    batch: int = 1,
    bytes_per_element: float = 2,
) -> float:
    """KV-cache bytes for ``batch`` sequences of ``context_tokens`` tokens (bf16: 2 bytes/element).

    ``model`` is an R1 model name, a ``ModelSpec``, or a ``TransformerConfig`` (e.g.
    ``CONFIGS["Llama-3.1-8B"]``); a name in ``CONFIGS`` works too.
    """
    if isinstance(model, TransformerConfig):
        per_token = config_kv_elements_per_token(model)
    elif isinstance(model, str) and model not in R1_MODELS:
        if model not in CONFIGS:
            raise ValueError(
                f"Unknown model {model!r}; use one of {list(R1_MODELS)} or of the base configs "
                f"{list(CONFIGS)}, or pass a published.ModelSpec / architectures.TransformerConfig."
            )
        per_token = config_kv_elements_per_token(CONFIGS[model])
    else:
        per_token = get_model(model).kv_elements_per_token
    t, b, e = _tokens(context_tokens), _batch(batch), _kv_bytes_per_element(bytes_per_element)
    return per_token * t * b * e


def memory_bytes(
    model: str | ModelSpec,
    bits: float,
    context_tokens: int = 0,
    batch: int = 1,
    kv_bytes_per_element: float = 2,
) -> float:
    """Weights at ``bits`` plus the KV cache for ``context_tokens`` (see the module's caveats)."""
    spec = get_model(model)
    _kv_bytes_per_element(kv_bytes_per_element, "kv_bytes_per_element")
    return weight_bytes(spec.params_total, bits) + kv_cache_bytes(
        spec, context_tokens, batch, kv_bytes_per_element
    )


def fits(
    model: str | ModelSpec,
    gpu: str | GPU,
    bits: float,
    context_tokens: int = 0,
    batch: int = 1,
    kv_bytes_per_element: float = 2,
) -> bool:
    """Do weights + KV cache fit in the GPU's memory (no room reserved for activations)?"""
    g = get_gpu(gpu)
    return (
        memory_bytes(model, bits, context_tokens, batch, kv_bytes_per_element) <= g.memory_gb * GB
    )


def gpus_that_fit(
    model: str | ModelSpec, bits: float, context_tokens: int = 0, batch: int = 1
) -> list[str]:
    """Names of the GPUs in ``GPUS`` that hold the model (weights + KV cache)."""
    return [name for name in GPUS if fits(model, name, bits, context_tokens, batch)]


def decode_bound(n_params_read: float, bits: float, bandwidth_gbs: float) -> float:
    """The plainest decode bound, tokens/s: bandwidth / bytes of the weights read per token.

    ``n_params_read`` are the parameters a token reads (an MoE: the active ones), ``bandwidth_gbs``
    in GB/s. ``decode_tokens_per_s`` applies it to a model, embedding row and KV cache included.
    """
    bw = _pos("bandwidth_gbs", bandwidth_gbs, "pass GB/s, e.g. 320 for a T4.")
    n = _pos("n_params_read", n_params_read, "pass the parameters read per token, e.g. 37e9.")
    return bw * GB / weight_bytes(n, bits)


def decode_tokens_per_s(
    model: str | ModelSpec,
    bits: float,
    bandwidth_gbs: float | str | GPU,
    context_tokens: int = 0,
    kv_bytes_per_element: float = 2,
) -> float:
    """Upper bound on batch-1 decode speed: bandwidth / bytes read per token.

    Each new token reads every *active* weight once (for an MoE only the shared and the chosen routed
    experts: 36.6B of R1's 671B; of the input embedding only its own row, ``params_read_per_token``)
    plus the whole KV cache so far. ``bandwidth_gbs`` is GB/s or a GPU.
    """
    if isinstance(bandwidth_gbs, (str, GPU)):
        bw = get_gpu(bandwidth_gbs).bandwidth_gbs
    else:
        bw = _pos("bandwidth_gbs", bandwidth_gbs, "pass GB/s, e.g. 960, or a GPU name.")
    spec = get_model(model)
    _kv_bytes_per_element(kv_bytes_per_element, "kv_bytes_per_element")
    per_token = weight_bytes(params_read_per_token(spec), bits) + kv_cache_bytes(
        spec, context_tokens, 1, kv_bytes_per_element
    )
    return bw * GB / per_token


def largest_model_that_fits(
    free_bytes: float,
    bits: float = 4,
    context_tokens: int = 0,
    candidates: list[str] | None = None,
) -> str | None:
    """The largest R1 model (by total parameters) whose weights + KV cache fit in ``free_bytes``.

    ``free_bytes`` is in bytes, like every memory argument in the course: pass what
    ``torch.cuda.mem_get_info`` reports, or ``15 * sizing.GB`` for 15 GB. ``candidates`` restricts
    the choice (e.g. the distills a notebook can load); ``None`` if none fits.
    """
    mem = free_memory_bytes(free_bytes)
    names = list(R1_MODELS) if candidates is None else list(candidates)
    specs = [get_model(n) for n in names]
    fitting = [s for s in specs if memory_bytes(s, bits, context_tokens) <= mem]
    return max(fitting, key=lambda s: s.params_total).name if fitting else None


def free_memory_bytes(free_bytes, name: str = "free_bytes") -> float:
    """Check a free-memory argument: bytes, finite, and not a number of GB passed by mistake."""
    mem = _nonneg(name, free_bytes, "pass the free memory in bytes, e.g. 15 * sizing.GB for 15 GB.")
    if 0 < mem < 1e6:
        raise ValueError(
            f"{name}={free_bytes!r} is less than a megabyte: memory is passed in bytes in the "
            f"course. Fix: for {free_bytes} GB pass {free_bytes} * sizing.GB ({mem * GB:.0e})."
        )
    return mem


def sizing_table(
    bits_choices: tuple[float, ...] = BITS_CHOICES, context_tokens: int = 0
) -> list[dict[str, object]]:
    """One row per (R1 model, bits): weights GB, KV GB, total GB and which GPUs it fits."""
    rows: list[dict[str, object]] = []
    for name, spec in R1_MODELS.items():
        kv = kv_cache_bytes(spec, context_tokens)
        for bits in bits_choices:
            w = weight_bytes(spec.params_total, bits)
            rows.append(
                {
                    "model": name,
                    "bits": bits,
                    "weights_gb": w / GB,
                    "kv_gb": kv / GB,
                    "total_gb": (w + kv) / GB,
                    "fits_on": gpus_that_fit(spec, bits, context_tokens),
                }
            )
    return rows


# --------------------------------------------------------------------------------------------------
# Offloading: weights that do not fit on the GPU are read from host memory
# --------------------------------------------------------------------------------------------------


def offload_split(model: str | ModelSpec, bits: float, gpu: str | GPU) -> tuple[float, float]:
    """(bytes on the GPU, bytes in host memory) when weights overflow the GPU's memory.

    The GPU is filled first; the rest stays in system RAM (llama.cpp-style layer offloading).
    """
    spec, g = get_model(model), get_gpu(gpu)
    total = weight_bytes(spec.params_total, bits)
    on_gpu = min(total, g.memory_gb * GB)
    return on_gpu, total - on_gpu


def host_bandwidth_needed_gbs(
    weights_bytes: float, bytes_per_token: float, gpu: str | GPU, tokens_per_s: float
) -> float:
    """System-RAM bandwidth (GB/s) a split model needs for ``tokens_per_s``, batch 1.

    The GPU holds what fits of ``weights_bytes``, the rest stays in RAM (llama.cpp-style layer
    offloading); each token reads ``bytes_per_token``, the same share from RAM as RAM holds of all
    the weights, and the two reads take turns: 1 / tokens_per_s = GPU part / GPU bandwidth + RAM part
    / RAM bandwidth. 0 when everything fits and the GPU alone is fast enough; ``inf`` when the GPU
    part alone already takes longer than the time a token may take.
    """
    g = get_gpu(gpu)
    total = _pos("weights_bytes", weights_bytes, "pass the model's size in bytes.")
    per_token = _pos("bytes_per_token", bytes_per_token, "pass the bytes a token reads.")
    tps = _pos("tokens_per_s", tokens_per_s, "pass a target speed, e.g. 4.")
    host_share = max(0.0, total - g.memory_gb * GB) / total
    budget = 1.0 / tps - per_token * (1 - host_share) / (g.bandwidth_gbs * GB)
    if host_share == 0:
        return 0.0 if budget >= 0 else float("inf")
    if budget <= 0:
        return float("inf")
    return per_token * host_share / budget / GB


def required_host_bandwidth_gbs(
    model: str | ModelSpec, bits: float, gpu: str | GPU, tokens_per_s: float
) -> float:
    """``host_bandwidth_needed_gbs`` for a model at one bit width for every weight."""
    spec = get_model(model)
    return host_bandwidth_needed_gbs(
        weight_bytes(spec.params_total, bits),
        weight_bytes(params_read_per_token(spec), bits),
        gpu,
        tokens_per_s,
    )
