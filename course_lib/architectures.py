"""Real model configs, and what follows from them by arithmetic: parameter counts, KV cache per token.

Each :class:`TransformerConfig` holds the ``config.json`` fields that decide a decoder's size, under
the same names as :class:`course_lib.model.TinySeekConfig` (``d_model``, ``d_ff``, ``d_expert``,
``n_activated_experts``, ...). :data:`CONFIGS` are DeepSeek-V3's and the R1 distills' bases, as
released ([cfg] each model's config.json on the Hugging Face hub; [ref] deepseek-ai/DeepSeek-V3's
``inference/configs/config_671B.json``). :func:`param_count` adds up embeddings, attention,
feed-forward or MoE, norms and the LM head; :func:`kv_elements_per_token` is DeepSeek-V2's Table 1.
docs/references.md "Architectures and parameter counts" and "KV cache per token" work both by hand.

Simplified: DeepSeek-V3's multi-token-prediction module is not counted (its 671B / 37B leave it out
too).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TransformerConfig:
    """The config.json fields that decide parameter count and KV cache of a decoder-only model.

    Dense GQA models (Qwen2/Llama) fill the first block; DeepSeek-V3 adds MLA and MoE fields.
    """

    name: str
    d_model: int
    d_ff: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    vocab_size: int
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
    first_k_dense: int = 0
    n_routed_experts: int = 0
    n_shared_experts: int = 0
    n_activated_experts: int = 0
    d_expert: int = 0


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
        first_k_dense=3,
        n_routed_experts=256,
        n_shared_experts=1,
        n_activated_experts=8,
        d_expert=2048,
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


def _attention_params(cfg: TransformerConfig) -> int:
    """One layer's attention: projections, their biases (Qwen2) and MLA's two inner norms."""
    h = cfg.d_model
    if cfg.attention == "mla":
        qk_head = cfg.qk_nope_head_dim + cfg.qk_rope_head_dim
        return (
            h * cfg.q_lora_rank  # W^DQ
            + cfg.q_lora_rank  # q_a_layernorm
            + cfg.q_lora_rank * cfg.n_heads * qk_head  # W^UQ and W^QR
            + h * (cfg.kv_lora_rank + cfg.qk_rope_head_dim)  # W^DKV and W^KR
            + cfg.kv_lora_rank  # kv_a_layernorm
            + cfg.kv_lora_rank * cfg.n_heads * (cfg.qk_nope_head_dim + cfg.v_head_dim)  # W^UK, W^UV
            + cfg.n_heads * cfg.v_head_dim * h  # W^O
        )
    q, kv = cfg.n_heads * cfg.head_dim, cfg.n_kv_heads * cfg.head_dim
    return h * q + 2 * h * kv + q * h + ((q + 2 * kv) if cfg.qkv_bias else 0)


# The parts param_groups splits a decoder into (in the order a token meets them).
PARAM_GROUPS = (
    "embedding",
    "attention",
    "norms",
    "dense FFN",
    "shared experts",
    "router",
    "routed experts",
    "LM head",
)


def param_groups(cfg: TransformerConfig, active_only: bool = False) -> dict[str, int]:
    """A decoder's parameters by part: {group: count} over :data:`PARAM_GROUPS`, adding up to
    :func:`param_count`.

    "attention" includes MLA's two inner norms; "norms" are the two RMSNorms per layer and the final
    one; a tied LM head counts 0 (it is the embedding). ``active_only`` counts, for an MoE, only the
    ``n_activated_experts`` routed experts a token uses. For DeepSeek-V3 the routed experts are
    58 layers x 256 experts, 97% of all parameters: what a mixed-precision quantisation squeezes
    hardest (:func:`course_lib.sizing.mixed_weight_bytes`).
    """
    h = cfg.d_model
    n_moe = cfg.n_layers - cfg.first_k_dense if cfg.n_routed_experts else 0
    expert = 3 * h * cfg.d_expert  # gate, up, down (SwiGLU)
    routed = cfg.n_activated_experts if active_only else cfg.n_routed_experts
    return {
        "embedding": cfg.vocab_size * h,
        "attention": cfg.n_layers * _attention_params(cfg),
        "norms": cfg.n_layers * 2 * h + h,
        "dense FFN": (cfg.n_layers - n_moe) * 3 * h * cfg.d_ff,
        "shared experts": n_moe * cfg.n_shared_experts * expert,
        "router": n_moe * (cfg.n_routed_experts * h + cfg.n_routed_experts),  # weight + bias
        "routed experts": n_moe * routed * expert,
        "LM head": 0 if cfg.tied_embeddings else cfg.vocab_size * h,
    }


def param_count(cfg: TransformerConfig, active_only: bool = False) -> int:
    """Parameters of a decoder from its config: embeddings, attention, FFN/MoE, RMSNorms, LM head.

    ``active_only`` counts, for an MoE, the shared experts plus ``n_activated_experts`` routed ones
    (what one token touches). DeepSeek-V3's multi-token-prediction module is not counted: [V3]'s
    671B / 37B leave it out too. :func:`param_groups` gives the same count part by part.
    """
    return sum(param_groups(cfg, active_only).values())


# --------------------------------------------------------------------------------------------------
# KV cache per token [V2 Table 1]
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
