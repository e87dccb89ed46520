"""course_lib.architectures: parameter counts and KV cache per token of the real configs, each set of
published or derived numbers in one parametrised table (derivations: docs/references.md)."""

from __future__ import annotations

import pytest

from course_lib.architectures import (
    CONFIGS,
    PARAM_GROUPS,
    TransformerConfig,
    config_kv_elements_per_token,
    kv_elements_per_token,
    param_count,
    param_groups,
)

# --------------------------------------------------------------------------------------------------
# Parameter counts by config arithmetic
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "active_only", "low", "high"),
    [
        # [V3 §1]: 671B total, 37B activated per token (the count with both embedding tables and
        # the shared expert is 37.55B; references.md "Parameter counts" works it out)
        ("DeepSeek-V3", False, 670.5e9, 671.5e9),
        ("DeepSeek-V3", True, 37.0e9, 38.0e9),
    ],
)
def test_v3_config_arithmetic_gives_the_reported_sizes(config, active_only, low, high):
    assert low < param_count(CONFIGS[config], active_only=active_only) < high


@pytest.mark.parametrize(
    ("config", "hub_billions", "digits"),
    [
        # the parameter count each R1 distill's hub page shows (safetensors metadata), at its precision
        ("Qwen2.5-Math-1.5B", 1.78, 2),
        ("Qwen2.5-Math-7B", 7.62, 2),
        ("Llama-3.1-8B", 8.03, 2),
        ("Qwen2.5-14B", 14.8, 1),
        ("Qwen2.5-32B", 32.8, 1),
        ("Llama-3.3-70B", 70.6, 1),
    ],
)
def test_distill_params_match_the_hub(config, hub_billions, digits):
    assert round(param_count(CONFIGS[config]) / 1e9, digits) == hub_billions


def test_hand_counted_tiny_config():
    # d_model 4, d_ff 8, 1 layer, 2 heads, 1 KV head, head_dim 2, vocab 10, untied, no bias:
    # embed+head 2*10*4=80; q 4*4=16, k,v 2*(4*2)=16, o 4*4=16 -> 48; mlp 3*4*8=96; norms 2*4=8;
    # final norm 4. Total 80 + 48 + 96 + 8 + 4 = 236.
    cfg = TransformerConfig("tiny", 4, 8, 1, 2, 1, 2, 10)
    assert param_count(cfg) == 236
    assert param_count(TransformerConfig("tiny", 4, 8, 1, 2, 1, 2, 10, qkv_bias=True)) == 236 + 8
    assert param_count(TransformerConfig("tiny", 4, 8, 1, 2, 1, 2, 10, tied_embeddings=True)) == 196


def test_param_groups_split_v3_by_hand():
    # DeepSeek-V3 [ref] config_671B.json: 58 MoE layers of 256 routed + 1 shared SwiGLU expert of
    # width 2,048 (3 x 7,168 x 2,048 = 44,040,192 each), 3 dense FFNs of width 18,432, vocab 129,280.
    g = param_groups(CONFIGS["DeepSeek-V3"])
    expert = 3 * 7168 * 2048
    assert list(g) == list(PARAM_GROUPS)
    assert g["routed experts"] == 58 * 256 * expert == 653_908_770_816
    assert g["shared experts"] == 58 * expert
    assert g["dense FFN"] == 3 * 3 * 7168 * 18432
    assert g["embedding"] == g["LM head"] == 129_280 * 7168
    assert g["router"] == 58 * (256 * 7168 + 256)
    assert g["attention"] == 61 * 187_107_328  # per layer by hand in docs/references.md
    assert round(g["routed experts"] / param_count(CONFIGS["DeepSeek-V3"]), 3) == 0.974
    active = param_groups(CONFIGS["DeepSeek-V3"], active_only=True)
    assert active["routed experts"] == 58 * 8 * expert
    assert {k: v for k, v in active.items() if k != "routed experts"} == {
        k: v for k, v in g.items() if k != "routed experts"
    }


@pytest.mark.parametrize("name", list(CONFIGS))
@pytest.mark.parametrize("active_only", [False, True])
def test_param_groups_add_up_to_param_count(name, active_only):
    groups = param_groups(CONFIGS[name], active_only)
    assert sum(groups.values()) == param_count(CONFIGS[name], active_only)
    assert all(v >= 0 for v in groups.values())


def test_param_groups_of_the_tiny_config():
    g = param_groups(TransformerConfig("tiny", 4, 8, 1, 2, 1, 2, 10, tied_embeddings=True))
    assert g == {
        "embedding": 40,
        "attention": 48,
        "norms": 12,
        "dense FFN": 96,
        "shared experts": 0,
        "router": 0,
        "routed experts": 0,
        "LM head": 0,
    }


# --------------------------------------------------------------------------------------------------
# KV cache per token: [V2 Table 1] and the derived table of docs/references.md "KV cache"
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "naive_mla", "elements_per_token"),
    [
        ("DeepSeek-V3", False, 35_136),  # (512 + 64) x 61
        ("DeepSeek-V3", True, 2_498_560),  # 128 heads x (192 + 128) x 61
        ("Qwen2.5-Math-1.5B", False, 14_336),  # 2 x 2 x 128 x 28
        ("Qwen2.5-Math-7B", False, 28_672),  # 2 x 4 x 128 x 28
        ("Llama-3.1-8B", False, 65_536),  # 2 x 8 x 128 x 32
        ("Qwen2.5-32B", False, 131_072),  # 2 x 8 x 128 x 64
    ],
)
def test_kv_elements_per_token_of_the_real_configs(config, naive_mla, elements_per_token):
    assert config_kv_elements_per_token(CONFIGS[config], naive_mla=naive_mla) == elements_per_token


def test_v2_table1_formulas():
    n_l, n_h, d_h = 60, 128, 128
    assert kv_elements_per_token("mha", n_l, n_heads=n_h, head_dim=d_h) == 2 * n_h * d_h * n_l
    assert kv_elements_per_token("gqa", n_l, head_dim=d_h, n_kv_heads=8) == 2 * 8 * d_h * n_l
    assert kv_elements_per_token("mqa", n_l, head_dim=d_h) == 2 * d_h * n_l
    mla = kv_elements_per_token("mla", n_l, kv_lora_rank=4 * d_h, qk_rope_head_dim=d_h // 2)
    assert mla == 9 * d_h * n_l // 2  # (9/2) d_h l with d_c = 4 d_h, d_h^R = d_h / 2 [V2 Table 1]
    # GQA with as many groups as heads is MHA; with one group it is MQA
    mha = kv_elements_per_token("mha", n_l, n_heads=n_h, head_dim=d_h)
    assert kv_elements_per_token("gqa", n_l, head_dim=d_h, n_kv_heads=n_h) == mha
    mqa = kv_elements_per_token("mqa", n_l, head_dim=d_h)
    assert kv_elements_per_token("gqa", n_l, head_dim=d_h, n_kv_heads=1) == mqa


@pytest.mark.parametrize(
    ("call", "needle"),
    [
        (lambda: kv_elements_per_token("linear", 4), "use one of"),
        (lambda: kv_elements_per_token("mha", 4, head_dim=64), "n_heads=..."),
        (lambda: kv_elements_per_token("gqa", 4, head_dim=64), "n_kv_heads=..."),
        (lambda: kv_elements_per_token("mla", 4, kv_lora_rank=512), "qk_rope_head_dim"),
        (lambda: kv_elements_per_token("mqa", -4, head_dim=64), "positive integer"),
        (lambda: kv_elements_per_token("mqa", "four", head_dim=64), "positive integer"),
        (lambda: kv_elements_per_token("mqa", 4, head_dim=64.5), "head_dim=128"),
    ],
)
def test_bad_inputs_raise_value_error_with_fix(call, needle):
    with pytest.raises(ValueError) as info:
        call()
    assert needle in str(info.value)
