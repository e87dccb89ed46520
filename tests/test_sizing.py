"""course_lib.sizing: the calculators on hand-worked cases, properties and bad input."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from course_lib import architectures, published, sizing
from course_lib.sizing import GB

# --------------------------------------------------------------------------------------------------
# Training cost and 6·N·D
# --------------------------------------------------------------------------------------------------


def test_training_cost_scales_with_price():
    rows = {r["stage"]: r for r in sizing.training_cost_table(3.5)}
    assert rows["total"]["cost_usd"] == pytest.approx(2_788_000 * 3.5)
    assert sizing.training_cost(10, 0) == 0


def test_six_n_d_and_implied_utilisation():
    flops = sizing.training_flops(37e9, 14.8e12)
    assert flops == pytest.approx(3.2856e24, rel=1e-12)  # 6 * 37e9 * 14.8e12, by hand
    u_fp8 = sizing.implied_utilisation(flops, 2_664_000, published.H800.fp8_tflops)
    u_bf16 = sizing.implied_utilisation(flops, 2_664_000, published.H800.bf16_tflops)
    # by hand: 3.2856e24 / (2.664e6 h * 3600 s * 1978.9e12 FLOP/s) = 0.1731
    assert u_fp8 == pytest.approx(3.2856e24 / (2.664e6 * 3600 * 1978.9e12))
    assert round(u_fp8, 3) == 0.173
    assert u_bf16 == pytest.approx(2 * u_fp8, rel=1e-3)  # BF16 peak is half the FP8 peak
    # a hand-made case: 1 GPU-hour at 1 TFLOP/s peak does 3.6e15 FLOPs at 100%
    assert sizing.implied_utilisation(3.6e15, 1, 1) == pytest.approx(1.0)


# --------------------------------------------------------------------------------------------------
# KV cache bytes (elements per token: test_architectures)
# --------------------------------------------------------------------------------------------------


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
    name=st.sampled_from(list(published.R1_MODELS)),
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
    assert sizing.gpus_that_fit("R1-Distill-Qwen-1.5B", 4) == list(published.GPUS)


def test_sizing_table_rows():
    rows = sizing.sizing_table(context_tokens=1000)
    assert len(rows) == len(published.R1_MODELS) * len(sizing.BITS_CHOICES)
    row = next(r for r in rows if r["model"] == "R1-Distill-Qwen-1.5B" and r["bits"] == 16)
    assert row["weights_gb"] == pytest.approx(1_777_088_000 * 2 / 1e9)
    assert row["kv_gb"] == pytest.approx(28_672 * 1000 / 1e9)
    assert row["total_gb"] == pytest.approx(row["weights_gb"] + row["kv_gb"])


def test_decode_bound_hand_worked():
    spec = published.ModelSpec("toy", "-", 1e9, 1e9, 1, 0, "mha", "-", "hand-made")
    # 1e9 weights at 8 bits = 1 GB per token (no config: all params_active are read); 100 GB/s
    # reads that 100 times a second
    assert sizing.decode_tokens_per_s(spec, 8, 100) == pytest.approx(100)
    assert sizing.decode_tokens_per_s(spec, 4, 100) == pytest.approx(200)


def test_decode_bound_moe_reads_only_active_params():
    # R1 at 4 bits: 36,625,625,600 parameters read per token (the active ones, one embedding row)
    # x 0.5 B = 18.3 GB; H100's 3,350 GB/s -> 182.9 tokens/s at most
    tps = sizing.decode_tokens_per_s("DeepSeek-R1", 4, "H100")
    assert tps == pytest.approx(3350e9 / (36_625_625_600 * 0.5))
    dense = published.ModelSpec("dense-671B", "-", 671e9, 671e9, 61, 0, "mha", "-", "hypothetical")
    assert tps / sizing.decode_tokens_per_s(dense, 4, "H100") == pytest.approx(671e9 / 36_625_625_600)
    assert sizing.decode_bound(37e9, 4, 3350) == pytest.approx(3350e9 / 18.5e9)


def test_decode_bound_counts_kv_reads():
    no_ctx = sizing.decode_tokens_per_s("R1-Distill-Qwen-7B", 4, "T4")
    long_ctx = sizing.decode_tokens_per_s("R1-Distill-Qwen-7B", 4, "T4", context_tokens=32_768)
    w = (7_615_616_512 - 152_064 * 3584 + 3584) * 0.5  # all but one row of the input embedding
    assert no_ctx == pytest.approx(320e9 / w)
    assert long_ctx == pytest.approx(320e9 / (w + 57_344 * 32_768))


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
        (lambda: sizing.get_gpu("A100"), "published.GPU(name, memory_gb, bandwidth_gbs)"),
        (lambda: sizing.training_cost(-1), "gpu_hours must be >= 0"),
        (lambda: sizing.training_cost(10, -2), "price_per_gpu_hour"),
        (lambda: sizing.training_flops(0, 1e12), "37e9"),
        (lambda: sizing.implied_utilisation(1e24, 0, 989.4), "gpu_hours must be > 0"),
        (lambda: sizing.decode_tokens_per_s("R1-Distill-Qwen-7B", 4, -100), "bandwidth_gbs"),
    ],
)
def test_bad_inputs_raise_value_error_with_fix(call, needle):
    with pytest.raises(ValueError, match=None) as info:
        call()
    assert needle in str(info.value)


def test_nan_is_rejected():
    with pytest.raises(ValueError):
        sizing.weight_bytes(math.nan, 4)


# Inputs that used to give wrong numbers silently (issue: inputs that fail clearly).
@pytest.mark.parametrize(
    ("call", "needle"),
    [
        (lambda: sizing.weight_bytes(math.inf, 4), "n_params must be a finite number"),
        (lambda: sizing.weight_bytes(7e9, math.inf), "bits must be a finite number"),
        (lambda: sizing.weight_bytes(7e9, 100), "bits must be in [0.5, 32]"),
        (lambda: sizing.weight_bytes(7e9, 1e-300), "bits must be in [0.5, 32]"),
        (lambda: sizing.weight_bytes(7e9, True), "bits must be a number, got True (a bool)"),
        (
            lambda: sizing.kv_cache_bytes("R1-Distill-Qwen-7B", 5, bytes_per_element="2"),
            "bytes_per_element must be a number, got '2' (a str); use 2 for bf16",
        ),
        (
            lambda: sizing.kv_cache_bytes("R1-Distill-Qwen-7B", 5, bytes_per_element=-2),
            "bytes_per_element must be in [0.125, 8]",
        ),
        (
            lambda: sizing.kv_cache_bytes("R1-Distill-Qwen-7B", 2.5),
            "context_tokens must be a whole",
        ),
        (lambda: sizing.kv_cache_bytes("R1-Distill-Qwen-7B", math.inf), "finite"),
        (lambda: sizing.kv_cache_bytes("R1-Distill-Qwen-7B", 5, batch=0), "batch must be >= 1"),
        (
            lambda: sizing.memory_bytes("R1-Distill-Qwen-7B", 4, 5, kv_bytes_per_element=0),
            "kv_bytes_per_element must be in",
        ),
        (lambda: sizing.training_cost(math.inf), "gpu_hours must be a finite number"),
        (lambda: sizing.training_cost(-1e-300), "gpu_hours must be >= 0"),
        (lambda: sizing.wall_clock_days(1000, 0.5), "n_gpus must be a whole number"),
        (lambda: sizing.decode_tokens_per_s("R1-Distill-Qwen-7B", 4, math.nan), "finite"),
        (lambda: sizing.required_host_bandwidth_gbs("DeepSeek-R1", 4, "H100", -1), "tokens_per_s"),
        # one unit convention: memory is bytes; a number of GB is caught and converted in the fix
        (lambda: sizing.largest_model_that_fits(16), "16 * sizing.GB"),
        (lambda: sizing.largest_model_that_fits(math.inf), "free_bytes must be a finite number"),
    ],
)
def test_bad_inputs_that_used_to_pass_silently(call, needle):
    with pytest.raises(ValueError) as info:
        call()
    assert needle in str(info.value)


# --------------------------------------------------------------------------------------------------
# Offloading
# --------------------------------------------------------------------------------------------------


def test_offload_split_hand_worked():
    on_gpu, on_host = sizing.offload_split("DeepSeek-R1", 1.58, "RTX 6000 Ada")
    assert on_gpu == 48e9
    assert on_host == pytest.approx(671e9 * 1.58 / 8 - 48e9)
    assert sizing.offload_split("R1-Distill-Qwen-7B", 4, "T4")[1] == 0  # it all fits


def test_required_host_bandwidth_hand_worked():
    # Per token the 37B active weights are read; the share that lives in RAM (as of all weights)
    # comes at the RAM's bandwidth, the rest at the GPU's: 1 / tokens_per_s = t_gpu + t_ram.
    on_gpu, on_host = sizing.offload_split("DeepSeek-R1", 1.58, "RTX 6000 Ada")
    share, active = on_host / (on_gpu + on_host), 36_625_625_600 * 1.58 / 8
    need = sizing.required_host_bandwidth_gbs("DeepSeek-R1", 1.58, "RTX 6000 Ada", 4)
    seconds = active * (1 - share) / 960e9 + active * share / (need * 1e9)
    assert seconds == pytest.approx(1 / 4)
    assert sizing.required_host_bandwidth_gbs("R1-Distill-Qwen-1.5B", 4, "H100", 1) == 0.0
    # faster than the GPU alone can go: impossible at any host bandwidth
    assert math.isinf(sizing.required_host_bandwidth_gbs("R1-Distill-Qwen-1.5B", 16, "T4", 1e6))


def test_largest_model_that_fits():
    # a T4 (16 GB) at 4 bits with 4K tokens: 14B needs 7.39 + 0.81 GB; 32B needs 16.38 + 1.07 GB
    assert sizing.largest_model_that_fits(16 * GB, 4, 4096) == "R1-Distill-Qwen-14B"
    # bf16: the 7B distill needs 15.23 + 0.23 = 15.47 GB, just inside 16 GB, not inside 15 GB
    assert sizing.largest_model_that_fits(16 * GB, 16, 4096) == "R1-Distill-Qwen-7B"
    assert sizing.largest_model_that_fits(15 * GB, 16, 4096) == "R1-Distill-Qwen-1.5B"
    assert sizing.largest_model_that_fits(200 * GB, 1.58) == "DeepSeek-R1"
    assert sizing.largest_model_that_fits(0.1 * GB, 4) is None
    only_small = ["R1-Distill-Qwen-1.5B", "R1-Distill-Qwen-7B"]
    assert (
        sizing.largest_model_that_fits(80 * GB, 16, candidates=only_small) == "R1-Distill-Qwen-7B"
    )
    with pytest.raises(ValueError, match="free memory"):
        sizing.largest_model_that_fits(-1)


# --------------------------------------------------------------------------------------------------
# Mixed precision: the community "1.58-bit" R1 [Unsloth]
# --------------------------------------------------------------------------------------------------


def _unsloth_bytes(other_bits: float) -> float:
    q = published.UNSLOTH_R1_1_58BIT
    groups = architectures.param_groups(architectures.CONFIGS["DeepSeek-V3"])
    bits = {"routed experts": q.routed_expert_bits, "*": other_bits}
    return sum(sizing.mixed_weight_bytes(groups, bits).values())


@pytest.mark.parametrize("end", [0, 1])
def test_mixed_precision_r1_within_5_percent_of_the_131gb_files(end):
    # Routed experts at IQ1_S (1.5625 bits), everything else "4 or 6 bits" (Q4_K 4.5 / Q6_K 6.5625):
    # 137.3 GB and 141.8 GB against the files' 130.60 GiB = 140.2 GB (the blog's "131GB").
    q = published.UNSLOTH_R1_1_58BIT
    predicted = _unsloth_bytes(q.other_bits[end])
    assert abs(predicted / q.file_bytes - 1) < 0.05
    assert abs(predicted / (131 * 2**30) - 1) < 0.05  # and of the label itself, read as GiB


def test_mixed_precision_by_hand_and_the_uniform_estimate_misses():
    q = published.UNSLOTH_R1_1_58BIT
    routed, other = 653_908_770_816, 671_026_419_200 - 653_908_770_816
    low = _unsloth_bytes(4.5)
    assert low == pytest.approx(routed * 1.5625 / 8 + other * 4.5 / 8)
    assert round(low / 1e9, 1) == 137.3
    # every weight at log2(3) = 1.58 bits gives 132.5 GB, 5.5% short of the files: the label "131GB"
    # only looks like it because the label is in GiB
    uniform = sizing.weight_bytes(published.V3_PARAMS_TOTAL, 1.58)
    assert uniform / q.file_bytes - 1 < -0.05
    # the routed experts are 97% of the parameters but only ~93% of the bytes
    groups = architectures.param_groups(architectures.CONFIGS["DeepSeek-V3"])
    b = sizing.mixed_weight_bytes(groups, {"routed experts": 1.5625, "*": 4.5})
    assert round(b["routed experts"] / sum(b.values()), 2) == 0.93


def test_mixed_weight_bytes_bad_input():
    groups = {"a": 8, "b": 16}
    assert sizing.mixed_weight_bytes(groups, {"a": 4, "b": 2}) == {"a": 4, "b": 4}
    with pytest.raises(ValueError, match="does not have"):
        sizing.mixed_weight_bytes(groups, {"routed": 2, "*": 4})
    with pytest.raises(ValueError, match="no bits for"):
        sizing.mixed_weight_bytes(groups, {"a": 4})


# --------------------------------------------------------------------------------------------------
# What a pass reads, and the roofline
# --------------------------------------------------------------------------------------------------


def test_a_token_reads_one_row_of_the_input_embedding():
    # R1-Distill-Qwen-1.5B: 1,777,088,000 parameters, of which the 151,936 x 1,536 = 233,373,696
    # input embedding is a lookup: one row of 1,536 is read per token.
    assert sizing.params_read_per_token("R1-Distill-Qwen-1.5B") == 1_777_088_000 - 233_373_696 + 1536
    # DeepSeek-R1: 37,552,297,472 active by config, less all but one row of its 129,280 x 7,168 table
    assert sizing.params_read_per_token("DeepSeek-R1") == 37_552_297_472 - 129_280 * 7168 + 7168


def test_a_batch_reads_more_distinct_experts():
    one = sizing.params_read("DeepSeek-R1", 1)
    assert one["routed experts"] == pytest.approx(58 * 8 * 3 * 7168 * 2048)
    # two tokens choosing 8 of 256 evenly: 256 x (1 - (248/256)^2) = 15.75 distinct experts per layer
    two = sizing.params_read("DeepSeek-R1", 2)
    assert two["routed experts"] == pytest.approx(58 * 15.75 * 3 * 7168 * 2048)
    many = sizing.params_read("DeepSeek-R1", 4096)
    assert many["routed experts"] == pytest.approx(653_908_770_816, rel=1e-6)
    assert many["embedding"] == 4096 * 7168
    dense = sizing.params_read("R1-Distill-Qwen-7B", 512)
    assert dense["routed experts"] == 0 and dense["embedding"] == 512 * 3584
