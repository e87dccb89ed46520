"""course_lib.sizing against the papers' figures, FACTS.md's derived KV table and hand-worked cases."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from course_lib import sizing
from course_lib.sizing import GB

# --------------------------------------------------------------------------------------------------
# Training cost: [V3 Table 1], exact to the GPU-hour and the dollar
# --------------------------------------------------------------------------------------------------


def test_v3_table1_gpu_hours_and_dollars_exact():
    rows = {r["stage"]: r for r in sizing.training_cost_table(2.0)}
    assert rows["pre-training"]["gpu_hours"] == 2_664_000
    assert rows["context extension"]["gpu_hours"] == 119_000
    assert rows["post-training"]["gpu_hours"] == 5_000
    assert rows["total"]["gpu_hours"] == 2_788_000
    assert round(rows["pre-training"]["cost_usd"]) == 5_328_000
    assert round(rows["context extension"]["cost_usd"]) == 238_000
    assert round(rows["post-training"]["cost_usd"]) == 10_000
    assert round(rows["total"]["cost_usd"]) == 5_576_000
    assert list(rows)[-1] == "total"


def test_training_cost_scales_with_price():
    rows = {r["stage"]: r for r in sizing.training_cost_table(3.5)}
    assert rows["total"]["cost_usd"] == pytest.approx(2_788_000 * 3.5)
    assert sizing.training_cost(10, 0) == 0


def test_pretraining_hours_agree_with_per_trillion_rate():
    # [V3 §1]: 180K GPU-hours per trillion tokens x 14.8T tokens = the 2,664K of Table 1.
    per_t = sizing.V3_GPU_HOURS_PER_TRILLION_TOKENS
    assert round(per_t * sizing.V3_PRETRAIN_TOKENS / 1e12) == 2_664_000
    # "3.7 days per trillion tokens on 2048 H800s"
    assert round(sizing.wall_clock_days(per_t), 1) == 3.7


def test_six_n_d_and_implied_utilisation():
    flops = sizing.training_flops(37e9, 14.8e12)
    assert flops == pytest.approx(3.2856e24, rel=1e-12)  # 6 * 37e9 * 14.8e12, by hand
    u_fp8 = sizing.implied_utilisation(flops, 2_664_000, sizing.H800.fp8_tflops)
    u_bf16 = sizing.implied_utilisation(flops, 2_664_000, sizing.H800.bf16_tflops)
    # by hand: 3.2856e24 / (2.664e6 h * 3600 s * 1978.9e12 FLOP/s) = 0.1731
    assert u_fp8 == pytest.approx(3.2856e24 / (2.664e6 * 3600 * 1978.9e12))
    assert round(u_fp8, 3) == 0.173
    assert u_bf16 == pytest.approx(2 * u_fp8, rel=1e-3)  # BF16 peak is half the FP8 peak
    # a hand-made case: 1 GPU-hour at 1 TFLOP/s peak does 3.6e15 FLOPs at 100%
    assert sizing.implied_utilisation(3.6e15, 1, 1) == pytest.approx(1.0)


# --------------------------------------------------------------------------------------------------
# Parameter counts by config arithmetic
# --------------------------------------------------------------------------------------------------


def test_v3_config_arithmetic_gives_671b_and_about_37b_active():
    cfg = sizing.CONFIGS["DeepSeek-V3"]
    assert round(sizing.param_count(cfg) / 1e9) == 671
    active = sizing.param_count(cfg, active_only=True)
    assert 36.5e9 < active < 38e9  # [V3]: 37B (the count with both embedding tables is 37.55B)


@pytest.mark.parametrize(
    ("name", "hub_billions", "digits"),
    [
        # the parameter count shown on each hub model page (safetensors metadata), at its precision
        ("R1-Distill-Qwen-1.5B", 1.78, 2),
        ("R1-Distill-Qwen-7B", 7.62, 2),
        ("R1-Distill-Llama-8B", 8.03, 2),
        ("R1-Distill-Qwen-14B", 14.8, 1),
        ("R1-Distill-Qwen-32B", 32.8, 1),
        ("R1-Distill-Llama-70B", 70.6, 1),
    ],
)
def test_distill_params_match_hub(name, hub_billions, digits):
    spec = sizing.R1_MODELS[name]
    assert round(spec.params_total / 1e9, digits) == hub_billions
    assert spec.params_active == spec.params_total and not spec.is_moe


def test_hand_counted_tiny_config():
    # hidden 4, inter 8, 1 layer, 2 heads, 1 KV head, head_dim 2, vocab 10, untied, no bias:
    # embed+head 2*10*4=80; q 4*4=16, k,v 2*(4*2)=16, o 4*4=16 -> 48; mlp 3*4*8=96; norms 2*4=8;
    # final norm 4. Total 80 + 48 + 96 + 8 + 4 = 236.
    cfg = sizing.TransformerConfig("tiny", 4, 8, 1, 2, 1, 2, 10)
    assert sizing.param_count(cfg) == 236
    biased = sizing.TransformerConfig("tiny", 4, 8, 1, 2, 1, 2, 10, qkv_bias=True)
    assert sizing.param_count(biased) == 236 + 4 + 2 + 2
    tied = sizing.TransformerConfig("tiny", 4, 8, 1, 2, 1, 2, 10, tied_embeddings=True)
    assert sizing.param_count(tied) == 236 - 40


def test_r1_family_keys_and_specs():
    assert list(sizing.R1_MODELS) == [
        "DeepSeek-R1",
        "R1-Distill-Qwen-1.5B",
        "R1-Distill-Qwen-7B",
        "R1-Distill-Llama-8B",
        "R1-Distill-Qwen-14B",
        "R1-Distill-Qwen-32B",
        "R1-Distill-Llama-70B",
    ]
    r1 = sizing.R1_MODELS["DeepSeek-R1"]
    assert (r1.params_total, r1.params_active, r1.n_layers) == (671e9, 37e9, 61)
    assert r1.is_moe and r1.hf_id == "deepseek-ai/DeepSeek-R1"
    assert sizing.R1_MODELS["R1-Distill-Llama-8B"].base == "Llama-3.1-8B"


def test_gpu_table():
    assert set(sizing.GPUS) == {"T4", "RTX 4090", "RTX 6000 Ada", "A100 80GB", "H100", "M2 Ultra"}
    t4 = sizing.GPUS["T4"]
    assert (t4.memory_gb, t4.bandwidth_gbs) == (16, 320)
    assert sizing.GPUS["M2 Ultra"].memory_gb == 192
    assert sizing.get_gpu("H800") is sizing.H800


# --------------------------------------------------------------------------------------------------
# KV cache: [V2 Table 1] formulas and FACTS.md's derived table
# --------------------------------------------------------------------------------------------------

FACTS_KV = {  # model -> (elements per token, bf16 bytes per token), FACTS.md
    "DeepSeek-R1": (35_136, 70_272),
    "R1-Distill-Qwen-1.5B": (14_336, 28_672),
    "R1-Distill-Qwen-7B": (28_672, 57_344),
    "R1-Distill-Llama-8B": (65_536, 131_072),
    "R1-Distill-Qwen-32B": (131_072, 262_144),
}


@pytest.mark.parametrize("name", list(FACTS_KV))
def test_kv_table_of_facts(name):
    elements, bf16_bytes = FACTS_KV[name]
    assert sizing.R1_MODELS[name].kv_elements_per_token == elements
    assert sizing.kv_cache_bytes(name, 1) == bf16_bytes


def test_naive_mla_cache_of_v3():
    cfg = sizing.CONFIGS["DeepSeek-V3"]
    assert sizing.config_kv_elements_per_token(cfg, naive_mla=True) == 2_498_560
    assert sizing.config_kv_elements_per_token(cfg) == 35_136


def test_issue4_reference_configs():
    assert sizing.config_kv_elements_per_token(sizing.CONFIGS["Llama-3.1-8B"]) == 65_536
    assert sizing.config_kv_elements_per_token(sizing.CONFIGS["Qwen2.5-32B"]) == 131_072
    assert sizing.kv_cache_bytes("Llama-3.1-8B", 1000) == 131_072_000
    assert sizing.kv_cache_bytes(sizing.CONFIGS["Qwen2.5-32B"], 10) == 2_621_440


def test_v2_table1_formulas():
    n_l, n_h, d_h = 60, 128, 128
    assert (
        sizing.kv_elements_per_token("mha", n_l, n_heads=n_h, head_dim=d_h) == 2 * n_h * d_h * n_l
    )
    assert sizing.kv_elements_per_token("gqa", n_l, head_dim=d_h, n_kv_heads=8) == 2 * 8 * d_h * n_l
    assert sizing.kv_elements_per_token("mqa", n_l, head_dim=d_h) == 2 * d_h * n_l
    mla = sizing.kv_elements_per_token("mla", n_l, kv_lora_rank=4 * d_h, qk_rope_head_dim=d_h // 2)
    assert mla == 9 * d_h * n_l // 2  # (9/2) d_h n_l with d_c = 4 d_h, d_h^R = d_h / 2
    # GQA with as many groups as heads is MHA; with one group it is MQA
    assert sizing.kv_elements_per_token(
        "gqa", n_l, head_dim=d_h, n_kv_heads=n_h
    ) == sizing.kv_elements_per_token("mha", n_l, n_heads=n_h, head_dim=d_h)
    assert sizing.kv_elements_per_token(
        "gqa", n_l, head_dim=d_h, n_kv_heads=1
    ) == sizing.kv_elements_per_token("mqa", n_l, head_dim=d_h)


def test_kv_cache_hand_worked():
    # R1-Distill-Qwen-1.5B, 4096 tokens, bf16: 28 layers * 2 (K,V) * 2 heads * 128 * 2 B * 4096
    assert sizing.kv_cache_bytes("R1-Distill-Qwen-1.5B", 4096) == 28 * 2 * 2 * 128 * 2 * 4096
    # batch and bytes per element multiply
    assert sizing.kv_cache_bytes("R1-Distill-Qwen-1.5B", 4096, batch=3, bytes_per_element=1) == (
        28 * 2 * 2 * 128 * 4096 * 3
    )


@given(
    t=st.integers(0, 200_000),
    b=st.integers(1, 64),
    name=st.sampled_from(list(sizing.R1_MODELS)),
)
def test_kv_cache_is_linear_in_tokens_and_batch(t, b, name):
    one = sizing.kv_cache_bytes(name, 1)
    assert sizing.kv_cache_bytes(name, t, batch=b) == one * t * b


# --------------------------------------------------------------------------------------------------
# Weights memory, fits-on and decode speed
# --------------------------------------------------------------------------------------------------


def test_weight_bytes_hand_worked():
    assert sizing.weight_bytes(7e9, 4) == 3.5e9
    assert sizing.weight_bytes(671e9, 16) == 1.342e12
    assert sizing.weight_bytes(671e9, 8) == 671e9
    assert sizing.weight_bytes(1_000, 1.58) == pytest.approx(197.5)


@given(n=st.floats(1, 1e12), b1=st.floats(0.5, 32), b2=st.floats(0.5, 32))
def test_weight_bytes_monotone_in_bits(n, b1, b2):
    lo, hi = sorted((b1, b2))
    assert sizing.weight_bytes(n, lo) <= sizing.weight_bytes(n, hi)


def test_fits_weights_and_context():
    # 7B distill in bf16: 15.23 GB of weights fit a 16 GB T4 with no context...
    assert sizing.fits("R1-Distill-Qwen-7B", "T4", 16, context_tokens=0)
    # ... but 32K tokens of bf16 KV cache add 57,344 B * 32,768 = 1.88 GB and it no longer fits
    assert sizing.kv_cache_bytes("R1-Distill-Qwen-7B", 32_768) == 57_344 * 32_768
    assert not sizing.fits("R1-Distill-Qwen-7B", "T4", 16, context_tokens=32_768)
    assert sizing.fits("R1-Distill-Qwen-7B", "T4", 4, context_tokens=32_768)


def test_671b_needs_more_than_one_48gb_gpu_at_every_bit_width():
    for bits in sizing.BITS_CHOICES:
        assert not sizing.fits("DeepSeek-R1", "RTX 6000 Ada", bits)
    # at ~1.58 bits: 671e9 * 1.58 / 8 = 132.5 GB: only the 192 GB M2 Ultra holds it
    assert sizing.weight_bytes(671e9, 1.58) / GB == pytest.approx(132.5225)
    assert sizing.gpus_that_fit("DeepSeek-R1", 1.58) == ["M2 Ultra"]
    assert sizing.gpus_that_fit("DeepSeek-R1", 4) == []


def test_gpus_that_fit_the_smallest_distill():
    assert sizing.gpus_that_fit("R1-Distill-Qwen-1.5B", 4) == list(sizing.GPUS)


def test_sizing_table_rows():
    rows = sizing.sizing_table(context_tokens=1000)
    assert len(rows) == len(sizing.R1_MODELS) * len(sizing.BITS_CHOICES)
    row = next(r for r in rows if r["model"] == "R1-Distill-Qwen-1.5B" and r["bits"] == 16)
    assert row["weights_gb"] == pytest.approx(1_777_088_000 * 2 / 1e9)
    assert row["kv_gb"] == pytest.approx(28_672 * 1000 / 1e9)
    assert row["total_gb"] == pytest.approx(row["weights_gb"] + row["kv_gb"])


def test_decode_bound_hand_worked():
    spec = sizing.ModelSpec("toy", "-", 1e9, 1e9, 1, 0, "mha", "-", "hand-made")
    # 1e9 weights at 8 bits = 1 GB per token; 100 GB/s reads that 100 times a second
    assert sizing.decode_tokens_per_s(spec, 8, 100) == pytest.approx(100)
    assert sizing.decode_tokens_per_s(spec, 4, 100) == pytest.approx(200)


def test_decode_bound_moe_reads_only_active_params():
    # R1 at 4 bits: 37e9 * 0.5 B = 18.5 GB per token; H100's 3,350 GB/s -> 181.08 tokens/s at most
    tps = sizing.decode_tokens_per_s("DeepSeek-R1", 4, "H100")
    assert tps == pytest.approx(3350e9 / 18.5e9)
    dense = sizing.ModelSpec("dense-671B", "-", 671e9, 671e9, 61, 0, "mha", "-", "hypothetical")
    assert tps / sizing.decode_tokens_per_s(dense, 4, "H100") == pytest.approx(671 / 37)


def test_decode_bound_counts_kv_reads():
    no_ctx = sizing.decode_tokens_per_s("R1-Distill-Qwen-7B", 4, "T4")
    long_ctx = sizing.decode_tokens_per_s("R1-Distill-Qwen-7B", 4, "T4", context_tokens=32_768)
    w = 7_615_616_512 * 0.5
    assert no_ctx == pytest.approx(320e9 / w)
    assert long_ctx == pytest.approx(320e9 / (w + 57_344 * 32_768))


def test_reported_scores_are_r1_table4():
    r1, o1 = sizing.REPORTED_SCORES["DeepSeek-R1"], sizing.REPORTED_SCORES["OpenAI-o1-1217"]
    assert (r1["AIME 2024"], r1["MATH-500"]) == (79.8, 97.3)
    assert (o1["AIME 2024"], o1["MATH-500"]) == (79.2, 96.4)
    assert set(sizing.DISTILL_SCORES) == set(sizing.R1_MODELS) - {"DeepSeek-R1"}
    assert sum(sizing.DISTILL_SAMPLES.values()) == 800_000


# --------------------------------------------------------------------------------------------------
# Bad input: ValueError that names the fix
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "needle"),
    [
        (lambda: sizing.weight_bytes(7e9, 0), "bits"),
        (lambda: sizing.weight_bytes(7e9, -4), "e.g. 16, 8, 4 or 1.58"),
        (lambda: sizing.weight_bytes(-1, 4), "n_params must be >= 0"),
        (lambda: sizing.weight_bytes("7B", 4), "must be a number"),
        (lambda: sizing.kv_cache_bytes("R1-Distill-Qwen-7B", -5), "context_tokens"),
        (lambda: sizing.kv_cache_bytes("R1-Distill-Qwen-7B", 5, batch=-1), "batch"),
        (lambda: sizing.kv_cache_bytes("R1-Distill-Qwen-7B", 5, bytes_per_element=0), "use 2"),
        (lambda: sizing.kv_cache_bytes("GPT-4", 5), "use one of"),
        (lambda: sizing.fits("R1-Distill-Qwen-7B", "GTX 1080", 4), "use one of"),
        (lambda: sizing.get_gpu("A100"), "sizing.GPU(name, memory_gb, bandwidth_gbs)"),
        (lambda: sizing.training_cost(-1), "gpu_hours must be >= 0"),
        (lambda: sizing.training_cost(10, -2), "price_per_gpu_hour"),
        (lambda: sizing.training_flops(0, 1e12), "37e9"),
        (lambda: sizing.implied_utilisation(1e24, 0, 989.4), "gpu_hours must be > 0"),
        (lambda: sizing.decode_tokens_per_s("R1-Distill-Qwen-7B", 4, -100), "bandwidth_gbs"),
        (lambda: sizing.kv_elements_per_token("linear", 4), "use one of"),
        (lambda: sizing.kv_elements_per_token("mha", 4, head_dim=64), "n_heads=..."),
        (lambda: sizing.kv_elements_per_token("gqa", 4, head_dim=64), "n_kv_heads=..."),
        (lambda: sizing.kv_elements_per_token("mla", 4, kv_lora_rank=512), "qk_rope_head_dim"),
        (lambda: sizing.kv_elements_per_token("mqa", -4, head_dim=64), "positive integer"),
        (lambda: sizing.kv_elements_per_token("mqa", "four", head_dim=64), "positive integer"),
        (lambda: sizing.kv_elements_per_token("mqa", 4, head_dim=64.5), "head_dim=128"),
        (lambda: sizing.GPU("broken", 0, 100), "positive"),
    ],
)
def test_bad_inputs_raise_value_error_with_fix(call, needle):
    with pytest.raises(ValueError, match=None) as info:
        call()
    assert needle in str(info.value)


def test_nan_is_rejected():
    with pytest.raises(ValueError):
        sizing.weight_bytes(math.nan, 4)


# --------------------------------------------------------------------------------------------------
# Offloading and the claims table
# --------------------------------------------------------------------------------------------------


def test_offload_split_and_speed_hand_worked():
    on_gpu, on_host = sizing.offload_split("DeepSeek-R1", 1.58, "RTX 6000 Ada")
    assert on_gpu == 48e9
    assert on_host == pytest.approx(671e9 * 1.58 / 8 - 48e9)
    share = on_host / (on_gpu + on_host)
    active = 37e9 * 1.58 / 8
    expected = 1 / (active * (1 - share) / 960e9 + active * share / 50e9)
    assert sizing.offload_decode_tokens_per_s(
        "DeepSeek-R1", 1.58, "RTX 6000 Ada", 50
    ) == pytest.approx(expected)
    # a model that fits entirely runs at the GPU-only bound whatever the host bandwidth
    assert sizing.offload_decode_tokens_per_s("R1-Distill-Qwen-7B", 4, "T4", 1) == pytest.approx(
        sizing.decode_tokens_per_s("R1-Distill-Qwen-7B", 4, "T4")
    )


def test_required_host_bandwidth_inverts_offload_speed():
    need = sizing.required_host_bandwidth_gbs("DeepSeek-R1", 1.58, "RTX 6000 Ada", 4)
    assert sizing.offload_decode_tokens_per_s(
        "DeepSeek-R1", 1.58, "RTX 6000 Ada", need
    ) == pytest.approx(4)
    assert sizing.required_host_bandwidth_gbs("R1-Distill-Qwen-1.5B", 4, "H100", 1) == 0.0
    # faster than the GPU alone can go: impossible at any host bandwidth
    assert math.isinf(sizing.required_host_bandwidth_gbs("R1-Distill-Qwen-1.5B", 16, "T4", 1e6))


def test_claims_table_shape_and_report_figures():
    rows = sizing.claims_vs_papers()
    assert [set(r) for r in rows] == [{"claim", "papers", "calculators", "verdict"}] * 5
    assert rows[0]["claim"] == "DeepSeek trained R1 for $5.6M"
    assert "$5.576M" in rows[0]["calculators"] and "2,788,000" in rows[0]["calculators"]
    assert "[V3 Table 1" in rows[0]["papers"]
    assert "800,000" in rows[1]["calculators"] and "DeepSeek-R1" in rows[1]["verdict"]
    assert "R1 itself cannot" in rows[2]["verdict"]
    assert "132.5 GB > 48 GB" in rows[3]["calculators"]
    assert "AIME 2024 +0.6 points" in rows[4]["calculators"]
    assert "MATH-500 +0.9 points" in rows[4]["calculators"]


def test_claims_table_follows_its_inputs():
    rows = sizing.claims_vs_papers(price_per_gpu_hour=3.0)
    assert "$8.364M" in rows[0]["calculators"]
    assert rows[0]["claim"].endswith("$5.6M")  # the claim itself does not move
    tiny_phone = sizing.claims_vs_papers(phone_memory_gb=0.5)
    assert "none" in tiny_phone[2]["calculators"] and tiny_phone[2]["verdict"].startswith("False")
    big = sizing.claims_vs_papers(claimed_gpu=sizing.GPU("big", 200, 5000))
    assert big[3]["verdict"] == "True on the GPU alone."
    with pytest.raises(ValueError, match="phone's RAM"):
        sizing.claims_vs_papers(phone_memory_gb=0)


def test_kv_table_reproduces_facts():
    rows = {r["model"]: r for r in sizing.kv_table()}
    assert rows["DeepSeek-V3 (MLA)"]["bytes_per_token"] == 70_272
    assert rows["DeepSeek-V3, naive MLA cache"]["elements_per_token"] == 2_498_560
    assert rows["DeepSeek-V3, naive MLA cache"]["bytes_per_token"] == 4_997_120
    assert rows["Qwen2.5-Math-1.5B"]["bytes_per_token"] == 28_672
    assert rows["Qwen2.5-Math-7B"]["bytes_per_token"] == 57_344
    assert rows["Llama-3.1-8B"]["bytes_per_token"] == 131_072
    assert rows["Qwen2.5-32B"]["bytes_per_token"] == 262_144
    assert sizing.kv_table(1)[0]["bytes_per_token"] == 35_136


def test_largest_model_that_fits():
    # a T4 (16 GB) at 4 bits with 4K tokens: 14B needs 7.39 + 0.81 GB; 32B needs 16.38 + 1.07 GB
    assert sizing.largest_model_that_fits(16, 4, 4096) == "R1-Distill-Qwen-14B"
    # bf16: the 7B distill needs 15.23 + 0.23 = 15.47 GB, just inside 16 GB, not inside 15 GB
    assert sizing.largest_model_that_fits(16, 16, 4096) == "R1-Distill-Qwen-7B"
    assert sizing.largest_model_that_fits(15, 16, 4096) == "R1-Distill-Qwen-1.5B"
    assert sizing.largest_model_that_fits(200, 1.58) == "DeepSeek-R1"
    assert sizing.largest_model_that_fits(0.1, 4) is None
    only_small = ["R1-Distill-Qwen-1.5B", "R1-Distill-Qwen-7B"]
    assert sizing.largest_model_that_fits(80, 16, candidates=only_small) == "R1-Distill-Qwen-7B"
    with pytest.raises(ValueError, match="free memory"):
        sizing.largest_model_that_fits(-1)
