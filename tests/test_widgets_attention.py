"""The notebook-02 KV-cache calculator: numbers from sizing, controls wired to the figures."""

from __future__ import annotations

import pytest

from course_lib import architectures
from course_lib.widgets import attention as w

V3 = dict(
    n_layers=61, n_heads=128, head_dim=128, n_kv_heads=8, kv_lora_rank=512, qk_rope_head_dim=64
)


def test_calculator_reproduces_v2_table_1_for_v3_sizes():
    b = w.calculator_bytes(**V3, context_tokens=1, batch=1, dtype="bf16")
    assert b["MHA"] == 2 * 128 * 128 * 61 * 2
    assert b["GQA (8 KV heads)"] == 2 * 8 * 128 * 61 * 2
    assert b["MQA"] == 2 * 128 * 61 * 2
    assert b["MLA"] == (512 + 64) * 61 * 2  # (d_c + d_h^R) * layers, bf16
    b4 = w.calculator_bytes(**V3, context_tokens=1000, batch=3, dtype="fp32")
    assert b4["MLA"] == (512 + 64) * 61 * 1000 * 3 * 4


def test_real_configs_are_the_config_arithmetic():
    """The dashboard shows architectures' KV elements per token (pinned in test_architectures)."""
    per_token = architectures.config_kv_elements_per_token
    cfg = architectures.CONFIGS
    got = w.real_config_bytes(context_tokens=1, batch=1, dtype="bf16")
    assert got["DeepSeek-V3 (MLA, absorbed cache)"] == 2 * per_token(cfg["DeepSeek-V3"])
    assert got["DeepSeek-V3 (MLA, naive cache)"] == 2 * per_token(
        cfg["DeepSeek-V3"], naive_mla=True
    )
    assert got["R1-Distill-Qwen-1.5B (GQA)"] == 2 * per_token(cfg["Qwen2.5-Math-1.5B"])
    assert got["Qwen2.5-32B (GQA)"] == 2 * per_token(cfg["Qwen2.5-32B"])
    llama = per_token(cfg["Llama-3.1-8B"])
    assert w.real_config_bytes(4096, 2, "fp8")["Llama-3.1-8B (GQA)"] == llama * 4096 * 2


def test_calculator_rejects_bad_input():
    with pytest.raises(ValueError, match="divide"):
        w.calculator_bytes(**{**V3, "n_kv_heads": 3}, context_tokens=1)
    with pytest.raises(ValueError, match="dtype"):
        w.calculator_bytes(**V3, context_tokens=1, dtype="int3")
    with pytest.raises(ValueError, match="pick one of"):
        w.kv_cache_calculator(context_tokens=1000)


def test_summary_states_the_ratios():
    text = w.calculator_summary(**V3, context_tokens=1024)
    assert "MHA" in text and f"{(2 * 128 * 128) / 576:,.1f}x MLA" in text


def test_calculator_widget_wires_controls_to_figures():
    box = w.kv_cache_calculator()
    assert set(box.controls) == {*V3, "context_tokens", "batch", "dtype"}
    mla = list(box.figures["calculator"].data[0].y).index("MLA")
    assert box.figures["calculator"].data[0].x[mla] == 70_272 * 32768
    box.controls["n_layers"].value = 30
    assert box.figures["calculator"].data[0].x[mla] == 576 * 30 * 2 * 32768
    box.controls["dtype"].value = "fp8"
    assert box.figures["calculator"].data[0].x[mla] == 576 * 30 * 32768
    real = box.figures["real"].data[0]
    assert (
        real.x[0]
        == architectures.config_kv_elements_per_token(architectures.CONFIGS["DeepSeek-V3"]) * 32768
    )
    # only KV-head counts that divide the head count are offered, and they follow it
    assert list(box.controls["n_kv_heads"].options) == [1, 2, 4, 8, 16, 32, 64, 128]
    box.controls["n_heads"].value = 12
    assert list(box.controls["n_kv_heads"].options) == [1, 2, 3, 4, 6, 12]
    assert box.controls["n_kv_heads"].value == 6  # the largest allowed <= 8
    gqa = next(k for k in box.figures["calculator"].data[0].y if k.startswith("GQA"))
    assert gqa == "GQA (6 KV heads)"
