"""Every number the course takes from a paper, a model card or a datasheet, in one place.

Each constant names its source; docs/references.md says in our own words what each source reports
and derives what follows from it. The calculators that use these numbers are :mod:`course_lib.sizing`;
the configs and their arithmetic are :mod:`course_lib.architectures`.

Sources: [V3] DeepSeek-V3 technical report (arXiv 2412.19437), Table 1, §1, §3.1; [R1] DeepSeek-R1
(arXiv 2501.12948), Tables 4 and 5, §2.3.3, §2.4, §3.1; [R1-Nature] its peer-reviewed version,
Nature 645, 633-638 (2025), supplementary information (training cost); [cfg] the models' config.json
on the Hugging Face hub; [NV] NVIDIA's datasheets and Apple's M2 Ultra page (GB and GB/s are 1e9);
[Unsloth] the blog post "Run DeepSeek R1 Dynamic 1.58-bit" (2025-01-27) and its GGUF files;
[ggml] llama.cpp's quantisation formats (ggml-common.h); [llama.cpp#11474] the community benchmark
thread "Research: Benchmarking DeepSeek-R1 IQ1_S 1.58bit" on GitHub.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from course_lib.architectures import (
    CONFIGS,
    TransformerConfig,
    config_kv_elements_per_token,
    param_count,
)

# --------------------------------------------------------------------------------------------------
# Hardware [NV]
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GPU:
    """An accelerator as the calculators see it: memory size (GB) and memory bandwidth (GB/s).

    ``bf16_tflops`` / ``fp8_tflops`` are dense (no 2:4 sparsity) tensor-core peaks, where we use them;
    for a GPU without bf16 (the T4) ``bf16_tflops`` holds its 16-bit (fp16) tensor-core peak.
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


# [NV] vendor datasheets (docs/references.md "Hardware"). M2 Ultra: memory is unified (shared with the CPU).
# 16-bit peaks only where checked: T4 65 TFLOP/s fp16 (it has no bf16), A100 312 TFLOP/s bf16, H100 989.4.
GPUS: dict[str, GPU] = {
    "T4": GPU("T4", 16, 320, bf16_tflops=65),
    "RTX 4090": GPU("RTX 4090", 24, 1008),
    "RTX 6000 Ada": GPU("RTX 6000 Ada", 48, 960),
    "A100 80GB": GPU("A100 80GB", 80, 2039, bf16_tflops=312),
    "H100": GPU("H100", 80, 3350, bf16_tflops=989.4, fp8_tflops=1978.9),
    "M2 Ultra": GPU("M2 Ultra", 192, 800),
}


# [NV] H800 SXM, the GPU DeepSeek-V3 was trained on [V3 §3.1]: the export version of the H100 SXM with
# cut-down NVLink; its tensor cores are the H100 SXM's: 989.4 TFLOP/s dense BF16, 1,978.9 TFLOP/s dense
# FP8 (the datasheet's 1,979 / 3,958 "with sparsity" figures are twice the dense ones).
H800 = GPU("H800", 80, 3350, bf16_tflops=989.4, fp8_tflops=1978.9)


# --------------------------------------------------------------------------------------------------
# DeepSeek-V3's training run [V3 Table 1, §1, §3.1]
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


# --------------------------------------------------------------------------------------------------
# R1's own training after V3-Base [R1-Nature, supplementary information, training-cost table]
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainingStage:
    """One row of the R1 paper's cost table: wall-clock hours on ``n_gpus`` H800s where it gives
    them, and the GPU-hours and dollars it reports (rounded to thousands, at $2 per GPU-hour)."""

    name: str
    wall_hours: float | None
    n_gpus: int | None
    reported_gpu_hours: int
    reported_usd: int


R1_RL_GPUS = 512  # 64 nodes x 8 H800 [R1-Nature SI]
R1_TRAINING_STAGES: tuple[TrainingStage, ...] = (
    TrainingStage("DeepSeek-R1-Zero: RL from V3-Base", 198, R1_RL_GPUS, 101_000, 202_000),
    TrainingStage("SFT data creation", None, None, 5_000, 10_000),
    TrainingStage("DeepSeek-R1: cold start, RL, SFT, RL", 80, R1_RL_GPUS, 41_000, 82_000),
)
R1_REPORTED_TOTAL_GPU_HOURS = 147_000  # [R1-Nature SI]
R1_REPORTED_TOTAL_USD = 294_000  # [R1-Nature SI], at $2 per H800 GPU-hour, V3's own price


# --------------------------------------------------------------------------------------------------
# The R1 family [V3 §1, R1 §2.4, cfg]
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
# ["DeepSeek-V3"]) reproduces 671.0B total and ~37.6B active. Distills: bases from [R1 §2.4]; params
# by config arithmetic (R1-Distill-Qwen-1.5B: 1.78B, docs/references.md "Parameter counts").
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
# The community "1.58-bit" R1 and runs with offloading [Unsloth], [ggml], [llama.cpp#11474]
# --------------------------------------------------------------------------------------------------

# Bits per weight of llama.cpp's formats [ggml]: IQ1_S stores 256 weights in 50 bytes (an fp16 scale,
# 32 + 16 bytes of grid indices); IQ2_XXS in 66 bytes; the "K-quants" Q4_K and Q6_K in 144 and 210.
GGUF_BITS = {
    "IQ1_S": 50 * 8 / 256,
    "IQ2_XXS": 66 * 8 / 256,
    "Q4_K": 144 * 8 / 256,
    "Q6_K": 210 * 8 / 256,
}


@dataclass(frozen=True)
class MixedQuant:
    """A mixed-precision quantisation as its authors describe it: bits for the routed experts, a
    range of bits for everything else, and the size of the files they published."""

    name: str
    routed_expert_bits: float
    # (low, high): "4 or 6 bits" are llama.cpp's 4- and 6-bit K-quants
    other_bits: tuple[float, float]
    label: str  # how the authors label its size
    file_bytes: float  # the files' size, read from the files themselves
    source: str


# [Unsloth]: only the routed experts at ~1.56 bits (IQ1_S; the down projections of some layers at
# 2.06, IQ2_XXS), attention and the first 3 dense layers "in 4 or 6bit"; "131GB" on disk. The three
# GGUF shards hold 130.60 GiB (gguf-parser's reading of the files, 671.03B parameters, 1.67 bits per
# weight on average): the blog's "131GB" is GiB, 140.2e9 bytes.
UNSLOTH_R1_1_58BIT = MixedQuant(
    "DeepSeek-R1-UD-IQ1_S (Unsloth's dynamic '1.58-bit')",
    routed_expert_bits=GGUF_BITS["IQ1_S"],
    other_bits=(GGUF_BITS["Q4_K"], GGUF_BITS["Q6_K"]),
    label="131GB",
    file_bytes=130.60 * 2**30,
    source="Unsloth blog 2025-01-27; file size: gpustack/gguf-parser-go's README reading the shards",
)


@dataclass(frozen=True)
class OffloadRun:
    """A reported run of R1 with the weights split between GPU memory and system RAM."""

    quant: str
    gpus: str
    gpu_memory_gb: float
    layers_on_gpu: int | None  # of 61 (llama.cpp's --n-gpu-layers)
    # decoding, as reported: (low, high), the same number twice when it was measured once
    tokens_per_s: tuple[float, float]
    source: str


# What people reported, not what we measured. [Unsloth] gives expectations for the 1.58-bit files;
# [llama.cpp#11474] collects measured runs (eval time, batch 1, llama.cpp, January-February 2025).
COMMUNITY_OFFLOAD_RUNS: tuple[OffloadRun, ...] = (
    OffloadRun("UD-IQ1_S", "2 x H100 80GB", 160, 61, (14, 14), "Unsloth's blog, all layers on GPU"),
    OffloadRun("UD-IQ1_S", "1 x RTX 4090", 24, None, (1, 3), "Unsloth's blog: 'at least 1 to 3'"),
    OffloadRun("UD-IQ1_S", "RTX 3090, EPYC 9654", 24, 8, (3.28, 3.28), "llama.cpp#11474 (Jan 31)"),
    OffloadRun(
        "UD-IQ1_S", "2 x RTX 6000 Ada, EPYC", 96, 36, (4.25, 4.25), "llama.cpp#11474 (Feb 6)"
    ),
)
