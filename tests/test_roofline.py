"""course_lib.roofline: a pass's FLOPs and bytes by hand; decode memory-bound, prefill compute-bound."""

from __future__ import annotations

import pytest

from course_lib.roofline import roofline


def test_roofline_decode_is_memory_bound_prefill_compute_bound():
    # R1-Distill-Qwen-1.5B in fp16 on a T4 (65 TFLOP/s, 320 GB/s): the ridge is 203 FLOPs per byte.
    decode = roofline("R1-Distill-Qwen-1.5B", 16, "T4", new_tokens=1)
    assert decode.ridge == pytest.approx(65e12 / 320e9)
    assert decode.bound == "memory" and decode.intensity == pytest.approx(1.0, rel=1e-3)
    # by hand: 2 FLOPs per matmul weight (all but the embedding) over the bytes of one pass
    matmul = 1_777_088_000 - 233_373_696
    assert decode.flops == 2 * matmul
    assert decode.bytes == pytest.approx((matmul + 1536) * 2 + 28_672)  # weights + 1 token of KV
    assert decode.tokens_per_s == pytest.approx(320e9 / decode.bytes)
    prefill = roofline("R1-Distill-Qwen-1.5B", 16, "T4", new_tokens=2048)
    assert prefill.bound == "compute" and prefill.intensity > prefill.ridge
    assert prefill.tokens_per_s == pytest.approx(65e12 / (2 * matmul), rel=1e-9)
    # batching decode steps raises the intensity just like a prompt does
    batched = roofline("R1-Distill-Qwen-1.5B", 16, "T4", new_tokens=1, batch=64)
    assert 50 < batched.intensity < 64


def test_roofline_needs_a_known_peak():
    with pytest.raises(ValueError, match="peak_tflops"):
        roofline("R1-Distill-Qwen-1.5B", 16, "RTX 4090")
    r = roofline("R1-Distill-Qwen-1.5B", 16, "RTX 4090", peak_tflops=165.2)
    assert r.ridge == pytest.approx(165.2e12 / 1008e9)
