"""Cost and memory calculators for DeepSeek-V3/R1 and the R1 distills.

Sources (cited next to each constant):
  [V2]  DeepSeek-V2 paper, arXiv 2405.04434 -- Table 1 (KV cache per token of MHA/GQA/MQA/MLA).
  [V3]  DeepSeek-V3 technical report, arXiv 2412.19437 -- Table 1 (training cost), §1 and §4 (tokens,
        parameters, 180K GPU-hours per trillion tokens), §2.1.1 and config_671B.json (architecture).
  [R1]  DeepSeek-R1 paper, arXiv 2501.12948 -- Table 4 (R1 vs o1), Table 5 (distills), §2.4 (distillation).
  [cfg] each model's config.json on the Hugging Face hub.
  [NV]  NVIDIA datasheets (T4, RTX 4090, RTX 6000 Ada, A100, H100/H800) and Apple's M2 Ultra page.

What is simplified, plainly:
  * Memory = weights + KV cache. Activations, CUDA context, allocator fragmentation and quantisation
    scales/zero-points are left out, so a model that "fits" here may still need a little more room.
  * Bits per weight apply to every parameter alike (real quantisers keep embeddings and norms wider).
  * Training compute is 6 * N_active * D (forward + backward of the matmuls); attention scores and the
    multi-token-prediction module are left out, so it is a lower bound.
  * Decode speed is an upper bound from memory bandwidth: a batch-1 token reads every active weight
    (and the KV cache) once. Real kernels reach a fraction of it.

Units: GB = 1e9 bytes, GB/s = 1e9 bytes per second (vendor convention).
Nothing runs on import; all tables below are plain data.
"""

from __future__ import annotations

from dataclasses import dataclass, field

GB = 1e9

# --------------------------------------------------------------------------------------------------
# Hardware
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GPU:
    """An accelerator as the calculators see it: memory size (GB) and memory bandwidth (GB/s).

    ``bf16_tflops`` / ``fp8_tflops`` are dense (no 2:4 sparsity) tensor-core peaks, where we use them.
    """

    name: str
    memory_gb: float
    bandwidth_gbs: float
    bf16_tflops: float | None = None
    fp8_tflops: float | None = None

    def __post_init__(self) -> None:
        if not self.memory_gb > 0 or not self.bandwidth_gbs > 0:
            raise ValueError(
                f"GPU {self.name!r}: memory_gb and bandwidth_gbs must be positive numbers, "
                f"got {self.memory_gb!r} and {self.bandwidth_gbs!r}."
            )


# [NV] vendor spec sheets (FACTS.md hardware table). M2 Ultra: memory is unified (shared with the CPU).
GPUS: dict[str, GPU] = {
    "T4": GPU("T4", 16, 320),
    "RTX 4090": GPU("RTX 4090", 24, 1008),
    "RTX 6000 Ada": GPU("RTX 6000 Ada", 48, 960),
    "A100 80GB": GPU("A100 80GB", 80, 2039),
    "H100": GPU("H100", 80, 3350, bf16_tflops=989.4, fp8_tflops=1978.9),
    "M2 Ultra": GPU("M2 Ultra", 192, 800),
}

# [NV] H800 SXM, the GPU DeepSeek-V3 was trained on [V3 §3.1]: the export version of the H100 SXM with
# cut-down NVLink; its tensor cores are the H100 SXM's: 989.4 TFLOP/s dense BF16, 1,978.9 TFLOP/s dense
# FP8 (the datasheet's 1,979 / 3,958 "with sparsity" figures are twice the dense ones).
H800 = GPU("H800", 80, 3350, bf16_tflops=989.4, fp8_tflops=1978.9)


def get_gpu(gpu: str | GPU) -> GPU:
    """Look a GPU up by name (a key of ``GPUS``), or pass a ``GPU`` through."""
    if isinstance(gpu, GPU):
        return gpu
    if gpu == "H800":
        return H800
    if gpu not in GPUS:
        raise ValueError(
            f"Unknown GPU {gpu!r}; use one of {sorted(GPUS)} (or 'H800'), "
            "or build your own: sizing.GPU(name, memory_gb, bandwidth_gbs)."
        )
    return GPUS[gpu]


# --------------------------------------------------------------------------------------------------
# Training cost [V3 Table 1]
# --------------------------------------------------------------------------------------------------

# H800 GPU-hours of DeepSeek-V3's official training run [V3 Table 1].
V3_TRAINING_GPU_HOURS: dict[str, int] = {
    "pre-training": 2_664_000,
    "context extension": 119_000,
    "post-training": 5_000,
}
V3_RENTAL_PRICE_PER_GPU_HOUR = 2.0  # USD, the report's own assumption [V3 Table 1]
V3_CLUSTER_GPUS = 2048  # H800s [V3 §3.1]
V3_PRETRAIN_TOKENS = 14.8e12  # [V3 §1]
V3_GPU_HOURS_PER_TRILLION_TOKENS = (
    180_000  # "each trillion tokens requires 180K H800 GPU hours" [V3 §1]
)
V3_PARAMS_TOTAL = 671e9  # [V3 §1]
V3_PARAMS_ACTIVE = 37e9  # activated per token [V3 §1]

# What the $5.576M leaves out, in the report's words and by construction of the table.
V3_COST_EXCLUDES = (
    "prior research and ablation experiments on architectures, algorithms and data [V3 §1]",
    "R1's own RL and SFT stages: R1 was trained from V3-Base afterwards [R1 §2]",
    "buying or building the 2,048-GPU cluster, staff, power beyond the rental price",
)


def _check_nonneg(name: str, value: float, fix: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}; {fix}") from None
    if v != v or v < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}; {fix}")
    return v


def _check_pos(name: str, value: float, fix: str) -> float:
    v = _check_nonneg(name, value, fix)
    if v == 0:
        raise ValueError(f"{name} must be > 0, got {value!r}; {fix}")
    return v


def training_cost(
    gpu_hours: float, price_per_gpu_hour: float = V3_RENTAL_PRICE_PER_GPU_HOUR
) -> float:
    """Rental cost in dollars: GPU-hours x price per GPU-hour."""
    h = _check_nonneg("gpu_hours", gpu_hours, "pass the GPU-hours, e.g. 2_788_000.")
    p = _check_nonneg(
        "price_per_gpu_hour", price_per_gpu_hour, "pass dollars per GPU-hour, e.g. 2.0."
    )
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


def training_flops(n_active_params: float, n_tokens: float) -> float:
    """Training compute from the 6·N·D rule: 2 FLOPs per weight forward, 4 backward, per token.

    For an MoE, N is the parameters *activated* per token (37B for V3), not the total (671B).
    """
    n = _check_pos("n_active_params", n_active_params, "pass e.g. 37e9 for DeepSeek-V3.")
    d = _check_pos("n_tokens", n_tokens, "pass e.g. 14.8e12 for DeepSeek-V3's pre-training.")
    return 6.0 * n * d


def implied_utilisation(flops: float, gpu_hours: float, peak_tflops: float) -> float:
    """Fraction of peak the GPUs must have sustained: flops / (GPU-seconds x peak FLOP/s)."""
    f = _check_nonneg(
        "flops", flops, "pass the training FLOPs, e.g. training_flops(37e9, 14.8e12)."
    )
    h = _check_pos("gpu_hours", gpu_hours, "pass the GPU-hours spent, e.g. 2_664_000.")
    p = _check_pos("peak_tflops", peak_tflops, "pass a GPU's peak, e.g. sizing.H800.fp8_tflops.")
    return f / (h * 3600.0 * p * 1e12)


def wall_clock_days(gpu_hours: float, n_gpus: int = V3_CLUSTER_GPUS) -> float:
    """Days the run takes on ``n_gpus`` GPUs working in parallel."""
    h = _check_nonneg("gpu_hours", gpu_hours, "pass the GPU-hours, e.g. 2_664_000.")
    n = _check_pos("n_gpus", n_gpus, "pass the cluster size, e.g. 2048.")
    return h / n / 24.0


# --------------------------------------------------------------------------------------------------
# Architectures [cfg] and parameter counts by config arithmetic
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TransformerConfig:
    """The config.json fields that decide parameter count and KV cache of a decoder-only model.

    Dense GQA models (Qwen2/Llama) fill the first block; DeepSeek-V3 adds MLA and MoE fields.
    """

    name: str
    hidden: int
    intermediate: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    vocab: int
    tied_embeddings: bool = False
    qkv_bias: bool = False  # Qwen2 has biases on q, k, v; Llama has none
    attention: str = "gqa"
    # MLA [V3 §2.1.1]
    q_lora_rank: int | None = None
    kv_lora_rank: int | None = None
    qk_nope_head_dim: int | None = None
    qk_rope_head_dim: int | None = None
    v_head_dim: int | None = None
    # DeepSeekMoE [V3 §2.1.2]
    first_dense_layers: int = 0
    n_routed_experts: int = 0
    n_shared_experts: int = 0
    experts_per_token: int = 0
    moe_intermediate: int = 0


# [cfg] config.json of each base model (the R1 distills keep their base's architecture [R1 §2.4]).
# Checked against the hub configs. Note: Qwen2.5-Math-1.5B ties its embeddings, but
# DeepSeek-R1-Distill-Qwen-1.5B's config.json sets tie_word_embeddings=false, hence 1.78B, not 1.54B;
# the entries below describe the distills as released (all untied).
CONFIGS: dict[str, TransformerConfig] = {
    "DeepSeek-V3": TransformerConfig(  # [ref] config_671B.json, [V3 §2.1, §4.2]; R1 shares it
        "DeepSeek-V3",
        7168,
        18432,
        61,
        128,
        128,
        192,
        129280,
        attention="mla",
        q_lora_rank=1536,
        kv_lora_rank=512,
        qk_nope_head_dim=128,
        qk_rope_head_dim=64,
        v_head_dim=128,
        first_dense_layers=3,
        n_routed_experts=256,
        n_shared_experts=1,
        experts_per_token=8,
        moe_intermediate=2048,
    ),
    "Qwen2.5-Math-1.5B": TransformerConfig(
        "Qwen2.5-Math-1.5B", 1536, 8960, 28, 12, 2, 128, 151936, qkv_bias=True
    ),
    "Qwen2.5-Math-7B": TransformerConfig(
        "Qwen2.5-Math-7B", 3584, 18944, 28, 28, 4, 128, 152064, qkv_bias=True
    ),
    "Llama-3.1-8B": TransformerConfig("Llama-3.1-8B", 4096, 14336, 32, 32, 8, 128, 128256),
    "Qwen2.5-14B": TransformerConfig(
        "Qwen2.5-14B", 5120, 13824, 48, 40, 8, 128, 152064, qkv_bias=True
    ),
    "Qwen2.5-32B": TransformerConfig(
        "Qwen2.5-32B", 5120, 27648, 64, 40, 8, 128, 152064, qkv_bias=True
    ),
    "Llama-3.3-70B": TransformerConfig("Llama-3.3-70B", 8192, 28672, 80, 64, 8, 128, 128256),
}


def param_count(cfg: TransformerConfig, active_only: bool = False) -> int:
    """Parameters of a decoder from its config: embeddings, attention, FFN/MoE, RMSNorms, LM head.

    ``active_only`` counts, for an MoE, the shared experts plus ``experts_per_token`` routed ones
    (what one token touches). DeepSeek-V3's multi-token-prediction module is not counted: [V3]'s
    671B / 37B leave it out too.
    """
    h = cfg.hidden
    if cfg.attention == "mla":
        qk_head = cfg.qk_nope_head_dim + cfg.qk_rope_head_dim
        attn = (
            h * cfg.q_lora_rank  # W^DQ
            + cfg.q_lora_rank  # q_a_layernorm
            + cfg.q_lora_rank * cfg.n_heads * qk_head  # W^UQ and W^QR
            + h * (cfg.kv_lora_rank + cfg.qk_rope_head_dim)  # W^DKV and W^KR
            + cfg.kv_lora_rank  # kv_a_layernorm
            + cfg.kv_lora_rank * cfg.n_heads * (cfg.qk_nope_head_dim + cfg.v_head_dim)  # W^UK, W^UV
            + cfg.n_heads * cfg.v_head_dim * h  # W^O
        )
    else:
        q, kv = cfg.n_heads * cfg.head_dim, cfg.n_kv_heads * cfg.head_dim
        attn = h * q + 2 * h * kv + q * h + ((q + 2 * kv) if cfg.qkv_bias else 0)
    dense_ffn = 3 * h * cfg.intermediate  # gate, up, down (SwiGLU)
    n_moe = cfg.n_layers - cfg.first_dense_layers if cfg.n_routed_experts else 0
    n_dense = cfg.n_layers - n_moe
    if n_moe:
        expert = 3 * h * cfg.moe_intermediate
        routed = cfg.experts_per_token if active_only else cfg.n_routed_experts
        router = cfg.n_routed_experts * h + cfg.n_routed_experts  # gate weight + balancing bias
        moe_ffn = (cfg.n_shared_experts + routed) * expert + router
    else:
        moe_ffn = 0
    norms = 2 * h
    embed = cfg.vocab * h * (1 if cfg.tied_embeddings else 2)
    return embed + cfg.n_layers * (attn + norms) + n_dense * dense_ffn + n_moe * moe_ffn + h


# --------------------------------------------------------------------------------------------------
# KV cache [V2 Table 1]
# --------------------------------------------------------------------------------------------------

MECHANISMS = ("mha", "gqa", "mqa", "mla")


def _req_int(name: str, value, mechanism: str) -> int:
    if value is None:
        raise ValueError(f"{mechanism!r} needs {name}=...; pass it (see DeepSeek-V2 Table 1).")
    try:
        ok = not isinstance(value, bool) and float(value).is_integer() and value > 0
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"{name} must be a positive integer, got {value!r}; e.g. {name}=128.")
    return int(value)


def kv_elements_per_token(
    mechanism: str,
    n_layers: int,
    n_heads: int | None = None,
    head_dim: int | None = None,
    n_kv_heads: int | None = None,
    kv_lora_rank: int | None = None,
    qk_rope_head_dim: int | None = None,
    v_head_dim: int | None = None,
) -> int:
    """Cached elements per token over all layers, [V2 Table 1] (l layers, d_h head dim):

    - ``"mha"``: 2 · n_h · d_h · l  (a K and a V vector per head; ``v_head_dim`` lets V differ from K,
      as in naive MLA decoding where K is 192 wide and V 128)
    - ``"gqa"``: 2 · n_g · d_h · l  (n_g = ``n_kv_heads`` groups share one K/V)
    - ``"mqa"``: 2 · d_h · l        (one K/V for all heads)
    - ``"mla"``: (d_c + d_h^R) · l  (the compressed latent c^KV plus the shared decoupled RoPE key)
    """
    mech = str(mechanism).lower()
    if mech not in MECHANISMS:
        raise ValueError(f"Unknown attention mechanism {mechanism!r}; use one of {MECHANISMS}.")
    layers = _req_int("n_layers", n_layers, mech)
    if mech == "mla":
        d_c = _req_int("kv_lora_rank", kv_lora_rank, mech)
        d_r = _req_int("qk_rope_head_dim", qk_rope_head_dim, mech)
        return (d_c + d_r) * layers
    d_k = _req_int("head_dim", head_dim, mech)
    d_v = d_k if v_head_dim is None else _req_int("v_head_dim", v_head_dim, mech)
    if mech == "mha":
        heads = _req_int("n_heads", n_heads, mech)
    elif mech == "gqa":
        heads = _req_int("n_kv_heads", n_kv_heads, mech)
    else:
        heads = 1
    return heads * (d_k + d_v) * layers


def config_kv_elements_per_token(cfg: TransformerConfig, naive_mla: bool = False) -> int:
    """KV elements per token of a real config; ``naive_mla`` caches full per-head K and V instead."""
    if cfg.attention == "mla":
        if naive_mla:
            return kv_elements_per_token(
                "mha",
                cfg.n_layers,
                n_heads=cfg.n_heads,
                head_dim=cfg.qk_nope_head_dim + cfg.qk_rope_head_dim,
                v_head_dim=cfg.v_head_dim,
            )
        return kv_elements_per_token(
            "mla",
            cfg.n_layers,
            kv_lora_rank=cfg.kv_lora_rank,
            qk_rope_head_dim=cfg.qk_rope_head_dim,
        )
    return kv_elements_per_token(
        cfg.attention,
        cfg.n_layers,
        n_heads=cfg.n_heads,
        head_dim=cfg.head_dim,
        n_kv_heads=cfg.n_kv_heads,
    )


# --------------------------------------------------------------------------------------------------
# The R1 family
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelSpec:
    """One released R1 model: size, attention and where each number comes from."""

    name: str
    hf_id: str
    params_total: float
    params_active: float
    n_layers: int
    kv_elements_per_token: int
    attention: str
    base: str
    params_source: str
    config: TransformerConfig | None = field(default=None, repr=False)

    @property
    def is_moe(self) -> bool:
        return self.params_active < self.params_total


def _distill(name: str, hf_id: str, base: str) -> ModelSpec:
    cfg = CONFIGS[base]
    n = param_count(cfg)
    return ModelSpec(
        name,
        hf_id,
        n,
        n,
        cfg.n_layers,
        config_kv_elements_per_token(cfg),
        cfg.attention,
        base,
        f"config arithmetic on {base}'s config.json [cfg] ({n / 1e9:.2f}B; the hub's safetensors "
        "count agrees to the shown digits)",
        cfg,
    )


# Params: DeepSeek-R1 from [V3 §1] (same architecture as V3, [R1 §2]); param_count(CONFIGS
# ["DeepSeek-V3"]) reproduces 671.0B total and ~37.6B active. Distills: bases from [R1 §2.4]; params by
# config arithmetic (R1-Distill-Qwen-1.5B = 1.78B as in FACTS.md).
R1_MODELS: dict[str, ModelSpec] = {
    "DeepSeek-R1": ModelSpec(
        "DeepSeek-R1",
        "deepseek-ai/DeepSeek-R1",
        V3_PARAMS_TOTAL,
        V3_PARAMS_ACTIVE,
        61,
        config_kv_elements_per_token(CONFIGS["DeepSeek-V3"]),
        "mla",
        "DeepSeek-V3-Base",
        "[V3 §1]: 671B total, 37B activated per token (MTP module excluded)",
        CONFIGS["DeepSeek-V3"],
    ),
    "R1-Distill-Qwen-1.5B": _distill(
        "R1-Distill-Qwen-1.5B", "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B", "Qwen2.5-Math-1.5B"
    ),
    "R1-Distill-Qwen-7B": _distill(
        "R1-Distill-Qwen-7B", "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", "Qwen2.5-Math-7B"
    ),
    "R1-Distill-Llama-8B": _distill(
        "R1-Distill-Llama-8B", "deepseek-ai/DeepSeek-R1-Distill-Llama-8B", "Llama-3.1-8B"
    ),
    "R1-Distill-Qwen-14B": _distill(
        "R1-Distill-Qwen-14B", "deepseek-ai/DeepSeek-R1-Distill-Qwen-14B", "Qwen2.5-14B"
    ),
    "R1-Distill-Qwen-32B": _distill(
        "R1-Distill-Qwen-32B", "deepseek-ai/DeepSeek-R1-Distill-Qwen-32B", "Qwen2.5-32B"
    ),
    "R1-Distill-Llama-70B": _distill(
        "R1-Distill-Llama-70B", "deepseek-ai/DeepSeek-R1-Distill-Llama-70B", "Llama-3.3-70B"
    ),
}

# Bits per weight the calculators show: bf16/fp16, int8/fp8, 4-bit (NF4/Q4), ternary {-1, 0, 1}
# whose information content is log2(3) ≈ 1.58 bits.
BITS_CHOICES: tuple[float, ...] = (16, 8, 4, 1.58)


def get_model(model: str | ModelSpec) -> ModelSpec:
    """Look an R1 model up by name (a key of ``R1_MODELS``), or pass a ``ModelSpec`` through."""
    if isinstance(model, ModelSpec):
        return model
    if model not in R1_MODELS:
        raise ValueError(
            f"Unknown model {model!r}; use one of {list(R1_MODELS)} or pass a sizing.ModelSpec."
        )
    return R1_MODELS[model]


# --------------------------------------------------------------------------------------------------
# Memory and speed
# --------------------------------------------------------------------------------------------------


def weight_bytes(n_params: float, bits: float) -> float:
    """Bytes to hold ``n_params`` weights at ``bits`` bits each: n · bits / 8."""
    n = _check_nonneg("n_params", n_params, "pass a parameter count such as 1.78e9.")
    b = _check_pos("bits", bits, "pass bits per weight, e.g. 16, 8, 4 or 1.58.")
    return n * b / 8.0


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
                f"{list(CONFIGS)}, or pass a sizing.ModelSpec / sizing.TransformerConfig."
            )
        per_token = config_kv_elements_per_token(CONFIGS[model])
    else:
        per_token = get_model(model).kv_elements_per_token
    t = _check_nonneg("context_tokens", context_tokens, "pass a token count such as 4096.")
    b = _check_nonneg("batch", batch, "pass the number of sequences, e.g. 1.")
    e = _check_pos("bytes_per_element", bytes_per_element, "use 2 for bf16/fp16, 1 for fp8.")
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


def decode_tokens_per_s(
    model: str | ModelSpec,
    bits: float,
    bandwidth_gbs: float | str | GPU,
    context_tokens: int = 0,
    kv_bytes_per_element: float = 2,
) -> float:
    """Upper bound on batch-1 decode speed: bandwidth / bytes read per token.

    Each new token reads every *active* weight once (for an MoE only the shared and the chosen routed
    experts: 37B of R1's 671B) plus the whole KV cache so far. ``bandwidth_gbs`` is GB/s or a GPU.
    """
    if isinstance(bandwidth_gbs, (str, GPU)):
        bw = get_gpu(bandwidth_gbs).bandwidth_gbs
    else:
        bw = _check_pos("bandwidth_gbs", bandwidth_gbs, "pass GB/s, e.g. 960, or a GPU name.")
    spec = get_model(model)
    per_token = weight_bytes(spec.params_active, bits) + kv_cache_bytes(
        spec, context_tokens, 1, kv_bytes_per_element
    )
    return bw * GB / per_token


def largest_model_that_fits(
    memory_gb: float,
    bits: float = 4,
    context_tokens: int = 0,
    candidates: list[str] | None = None,
) -> str | None:
    """The largest R1 model (by total parameters) whose weights + KV cache fit in ``memory_gb``.

    ``candidates`` restricts the choice (e.g. the distills a notebook can load); ``None`` if none fits.
    Use it with the free VRAM ``torch.cuda.mem_get_info`` reports (convert bytes to GB with /1e9).
    """
    mem = _check_pos("memory_gb", memory_gb, "pass the free memory in GB, e.g. 15.")
    names = list(R1_MODELS) if candidates is None else list(candidates)
    specs = [get_model(n) for n in names]
    fitting = [s for s in specs if memory_bytes(s, bits, context_tokens) <= mem * GB]
    return max(fitting, key=lambda s: s.params_total).name if fitting else None


def kv_table(bytes_per_element: float = 2) -> list[dict[str, object]]:
    """KV cache per token of the real configs, FACTS.md's derived table: one row per config
    (DeepSeek-V3 as cached by MLA and, for contrast, as a naive per-head cache)."""
    rows: list[dict[str, object]] = []
    entries = [("DeepSeek-V3 (MLA)", CONFIGS["DeepSeek-V3"], False)]
    entries.append(("DeepSeek-V3, naive MLA cache", CONFIGS["DeepSeek-V3"], True))
    entries += [(name, cfg, False) for name, cfg in CONFIGS.items() if cfg.attention != "mla"]
    for label, cfg, naive in entries:
        elements = config_kv_elements_per_token(cfg, naive_mla=naive)
        rows.append(
            {
                "model": label,
                "mechanism": "mha" if naive else cfg.attention,
                "layers": cfg.n_layers,
                "elements_per_token": elements,
                "bytes_per_token": elements * bytes_per_element,
            }
        )
    return rows


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
# Reported scores and the distillation data [R1]
# --------------------------------------------------------------------------------------------------

# [R1 Table 4] (pass@1 in %, Codeforces as a rating). o1-1217 figures are OpenAI's, as quoted by [R1].
REPORTED_SCORES: dict[str, dict[str, float]] = {
    "DeepSeek-R1": {"AIME 2024": 79.8, "MATH-500": 97.3, "GPQA Diamond": 71.5, "Codeforces": 2029},
    "OpenAI-o1-1217": {
        "AIME 2024": 79.2,
        "MATH-500": 96.4,
        "GPQA Diamond": 75.7,
        "Codeforces": 2061,
    },
    "DeepSeek-V3": {"AIME 2024": 39.2, "MATH-500": 90.2, "GPQA Diamond": 59.1, "Codeforces": 1134},
}

# How many problems each benchmark has, to turn percentage points into problems: AIME 2024 is the two
# 15-problem AIME I and II papers; MATH-500 is the 500-problem subset of MATH used by [R1 §3.1];
# GPQA Diamond has 198 questions.
BENCHMARK_SIZES: dict[str, int] = {"AIME 2024": 30, "MATH-500": 500, "GPQA Diamond": 198}

# [R1 §3.1] evaluation setup: pass@1 is averaged over k samples per question (4 to 64 by test-set size)
# at temperature 0.6, top-p 0.95, with
# generations of up to 32,768 tokens.
R1_EVAL = {"temperature": 0.6, "top_p": 0.95, "max_tokens": 32_768}

# [R1 Table 5] the distills (pass@1 in %).
DISTILL_SCORES: dict[str, dict[str, float]] = {
    "R1-Distill-Qwen-1.5B": {"AIME 2024": 28.9, "MATH-500": 83.9, "GPQA Diamond": 33.8},
    "R1-Distill-Qwen-7B": {"AIME 2024": 55.5, "MATH-500": 92.8, "GPQA Diamond": 49.1},
    "R1-Distill-Llama-8B": {"AIME 2024": 50.4, "MATH-500": 89.1, "GPQA Diamond": 49.0},
    "R1-Distill-Qwen-14B": {"AIME 2024": 69.7, "MATH-500": 93.9, "GPQA Diamond": 59.1},
    "R1-Distill-Qwen-32B": {"AIME 2024": 72.6, "MATH-500": 94.3, "GPQA Diamond": 62.1},
    "R1-Distill-Llama-70B": {"AIME 2024": 70.0, "MATH-500": 94.5, "GPQA Diamond": 65.2},
}

# [R1 §2.3.3, §2.4] the distills were fine-tuned (SFT only, no RL) on samples curated with DeepSeek-R1.
DISTILL_SAMPLES = {"reasoning": 600_000, "non-reasoning": 200_000}
DISTILL_TEACHER = "DeepSeek-R1"


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


def offload_decode_tokens_per_s(
    model: str | ModelSpec, bits: float, gpu: str | GPU, host_bandwidth_gbs: float
) -> float:
    """Batch-1 decode bound when part of the weights sits in host RAM.

    Per token the active weights are read once; the share that lives in host RAM (assumed the same
    share as of all weights) is read at ``host_bandwidth_gbs``, the rest at the GPU's bandwidth.
    """
    spec, g = get_model(model), get_gpu(gpu)
    host_bw = _check_pos(
        "host_bandwidth_gbs", host_bandwidth_gbs, "pass your RAM's bandwidth in GB/s, e.g. 60."
    )
    on_gpu, on_host = offload_split(spec, bits, g)
    host_share = on_host / (on_gpu + on_host)
    active = weight_bytes(spec.params_active, bits)
    seconds = active * (1 - host_share) / (g.bandwidth_gbs * GB) + active * host_share / (
        host_bw * GB
    )
    return 1.0 / seconds


def required_host_bandwidth_gbs(
    model: str | ModelSpec, bits: float, gpu: str | GPU, tokens_per_s: float
) -> float:
    """Host-RAM bandwidth (GB/s) that ``offload_decode_tokens_per_s`` needs to reach ``tokens_per_s``.

    Returns 0 when everything fits on the GPU and the GPU alone is fast enough, ``inf`` when the GPU
    share alone already takes longer than the time budget per token.
    """
    spec, g = get_model(model), get_gpu(gpu)
    tps = _check_pos("tokens_per_s", tokens_per_s, "pass a target speed, e.g. 4.")
    on_gpu, on_host = offload_split(spec, bits, g)
    host_share = on_host / (on_gpu + on_host)
    active = weight_bytes(spec.params_active, bits)
    budget = 1.0 / tps - active * (1 - host_share) / (g.bandwidth_gbs * GB)
    if host_share == 0:
        return 0.0 if budget >= 0 else float("inf")
    if budget <= 0:
        return float("inf")
    return active * host_share / budget / GB


# --------------------------------------------------------------------------------------------------
# The claims of January 2025, checked
# --------------------------------------------------------------------------------------------------


def claims_vs_papers(
    price_per_gpu_hour: float = V3_RENTAL_PRICE_PER_GPU_HOUR,
    phone_memory_gb: float = 8.0,
    phone_bits: float = 4,
    context_tokens: int = 4096,
    claimed_tokens_per_s: float = 4.0,
    claimed_gpu: str | GPU = "RTX 6000 Ada",
    claimed_bits: float = 1.58,
) -> list[dict[str, str]]:
    """One row per popular claim: what the papers say (cited) and what the calculators show.

    Every number in every column is formatted here from the cited tables above and the arguments;
    the verdicts follow from the computed numbers. ``phone_memory_gb`` is an assumption about the
    phone, ``claimed_*`` describe the claim being checked: pass your own.
    """
    phone = _check_pos("phone_memory_gb", phone_memory_gb, "pass the phone's RAM in GB, e.g. 8.")
    hours = V3_TRAINING_GPU_HOURS
    total_hours = sum(hours.values())
    cost = training_cost(total_hours, price_per_gpu_hour)
    claimed_cost = training_cost(total_hours, V3_RENTAL_PRICE_PER_GPU_HOUR)
    flops = training_flops(V3_PARAMS_ACTIVE, V3_PRETRAIN_TOKENS)
    util = implied_utilisation(flops, hours["pre-training"], H800.fp8_tflops)
    r1 = R1_MODELS["DeepSeek-R1"]
    distills = [s for s in R1_MODELS.values() if s.name != r1.name]
    size_range = (
        f"{distills[0].name} ({distills[0].params_total / 1e9:.2f}B) to {distills[-1].name}"
    )
    r1_size = f"{r1.params_total / 1e9:.0f}B total, {r1.params_active / 1e9:.0f}B active"

    fits_phone = [
        n for n, s in R1_MODELS.items() if memory_bytes(s, phone_bits, context_tokens) <= phone * GB
    ]
    smallest = distills[0]
    small_gb = memory_bytes(smallest, phone_bits, context_tokens) / GB
    r1_gb = memory_bytes(r1, phone_bits, context_tokens) / GB
    aime_small = DISTILL_SCORES[smallest.name]["AIME 2024"]

    g = get_gpu(claimed_gpu)
    r1_q_gb = weight_bytes(r1.params_total, claimed_bits) / GB
    _, host_b = offload_split(r1, claimed_bits, g)
    need_bw = required_host_bandwidth_gbs(r1, claimed_bits, g, claimed_tokens_per_s)
    gpu_only = fits(r1, g, claimed_bits)

    r1s, o1s = REPORTED_SCORES["DeepSeek-R1"], REPORTED_SCORES["OpenAI-o1-1217"]
    diffs = {b: r1s[b] - o1s[b] for b in ("AIME 2024", "MATH-500", "GPQA Diamond")}
    math_match = all(abs(diffs[b]) <= 1.0 for b in ("AIME 2024", "MATH-500"))
    n_samples = sum(DISTILL_SAMPLES.values())

    return [
        {
            "claim": f"DeepSeek trained R1 for ${claimed_cost / 1e6:.1f}M",
            "papers": f"V3's official training run took {total_hours / 1e3:,.0f}K H800 GPU-hours, "
            f"costed at ${V3_RENTAL_PRICE_PER_GPU_HOUR:g}/GPU-hour; it excludes prior research and "
            "ablations [V3 Table 1, §1]. R1's own RL and SFT stages came after [R1 §2].",
            "calculators": f"{total_hours:,} GPU-hours x ${price_per_gpu_hour:g} = "
            f"${cost / 1e6:,.3f}M. 6·N·D = {flops:.3g} FLOPs is {util:.1%} of H800 FP8 peak over "
            f"the {hours['pre-training']:,} pre-training GPU-hours"
            + (": plausible." if util <= 0.5 else ": implausibly high."),
            "verdict": "Half true: the rental price of V3's final run, not the cost of making R1.",
        },
        {
            "claim": "R1 was distilled from GPT-4 / multiple teachers",
            "papers": f"The distills were fine-tuned on ~{n_samples / 1e3:.0f}K samples generated "
            f"with {DISTILL_TEACHER} [R1 §2.3.3, §2.4]; R1 itself came from V3-Base by RL and SFT "
            "[R1 §2].",
            "calculators": f"{DISTILL_SAMPLES['reasoning']:,} reasoning + "
            f"{DISTILL_SAMPLES['non-reasoning']:,} other = {n_samples:,} samples, teacher "
            f"{DISTILL_TEACHER}. No calculator can audit web pre-training data.",
            "verdict": f"Not what the papers describe: the distills' teacher is {DISTILL_TEACHER}.",
        },
        {
            "claim": "R1 is small enough to run on a phone",
            "papers": f"R1 is a MoE of {r1_size} [V3 §1]; the small models are separate distills "
            f"of {size_range} [R1 §2.4].",
            "calculators": f"At {phone_bits:g} bits and {context_tokens:,} tokens: DeepSeek-R1 needs "
            f"{r1_gb:,.1f} GB, {smallest.name} {small_gb:.2f} GB. Fit in {phone:g} GB: "
            f"{', '.join(fits_phone) or 'none'}. {smallest.name} scores {aime_small} on AIME 2024 "
            f"vs R1's {r1s['AIME 2024']} [R1 Tables 4, 5].",
            "verdict": (
                "R1 itself fits: true."
                if r1.name in fits_phone
                else ("A distill can; R1 itself cannot." if fits_phone else "False: nothing fits.")
            ),
        },
        {
            "claim": f"671B runs on a {g.memory_gb:g} GB GPU at {claimed_tokens_per_s:g} tokens/s",
            "papers": "Not a paper claim: it refers to community ~1.58-bit quantisations run with "
            f"most weights in system RAM. Per token only {r1.params_active / 1e9:.0f}B of "
            f"{r1.params_total / 1e9:.0f}B weights are active [V3 §1].",
            "calculators": f"At {claimed_bits:g} bits the weights are {r1_q_gb:.1f} GB "
            + (
                f"and fit in {g.memory_gb:g} GB."
                if gpu_only
                else f"> {g.memory_gb:g} GB, so {host_b / GB:.1f} GB sit in host RAM; "
                f"{claimed_tokens_per_s:g} tokens/s then needs ≈{need_bw:.1f} GB/s of RAM "
                "bandwidth (only the active weights are read per token)."
            ),
            "verdict": "True on the GPU alone."
            if gpu_only
            else "Not on the GPU alone; plausible only with offloading and heavy quantisation.",
        },
        {
            "claim": "R1 matches o1 on MATH-500 and AIME",
            "papers": f"Pass@1, R1 vs o1-1217: AIME 2024 {r1s['AIME 2024']} vs {o1s['AIME 2024']}, "
            f"MATH-500 {r1s['MATH-500']} vs {o1s['MATH-500']}, GPQA Diamond "
            f"{r1s['GPQA Diamond']} vs {o1s['GPQA Diamond']} [R1 Table 4].",
            "calculators": "R1 minus o1: "
            + ", ".join(f"{b} {d:+.1f} points" for b, d in diffs.items())
            + ".",
            "verdict": (
                "True on those two math benchmarks (self-reported), not on every benchmark."
                if math_match
                else "Not within a point on the math benchmarks."
            ),
        },
    ]
