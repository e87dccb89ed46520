"""course_lib.published: the published numbers agree with each other where the papers give them twice,
and the R1 family is built from the configs. (No test restates a constant: the constants' sources are
in docs/references.md.)"""

from __future__ import annotations

import pytest

from course_lib import published, sizing
from course_lib.architectures import CONFIGS, param_count


@pytest.mark.parametrize(
    ("stage", "cost_musd"),
    # [V3 Table 1] prices each stage's H800 GPU-hours at $2/GPU-hour; its cost column, in $M:
    [
        ("pre-training", 5.328),
        ("context extension", 0.238),
        ("post-training", 0.01),
        ("total", 5.576),
    ],
)
def test_v3_table1_cost_column_is_its_hours_column_at_2_dollars(stage, cost_musd):
    rows = {
        r["stage"]: r for r in sizing.training_cost_table(published.V3_RENTAL_PRICE_PER_GPU_HOUR)
    }
    assert rows[stage]["cost_usd"] == pytest.approx(cost_musd * 1e6)


def test_pretraining_hours_agree_with_the_per_trillion_rate():
    # [V3 §1]: 180K GPU-hours per trillion tokens x 14.8T tokens = the pre-training row of Table 1,
    # "3.7 days per trillion tokens on our cluster with 2048 H800 GPUs".
    per_t = published.V3_GPU_HOURS_PER_TRILLION_TOKENS
    pretrain = published.V3_TRAINING_GPU_HOURS["pre-training"]
    assert round(per_t * published.V3_PRETRAIN_TOKENS / 1e12) == pretrain
    assert round(sizing.wall_clock_days(per_t, published.V3_CLUSTER_GPUS), 1) == 3.7


def test_r1_family_is_v3_and_the_distills_built_from_their_configs():
    r1 = published.R1_MODELS["DeepSeek-R1"]
    assert r1.is_moe and r1.config is CONFIGS["DeepSeek-V3"]
    assert round(param_count(r1.config) / 1e9) == round(r1.params_total / 1e9)
    for name, spec in published.R1_MODELS.items():
        if name != "DeepSeek-R1":
            assert spec.params_total == spec.params_active == param_count(spec.config)
            assert not spec.is_moe
    # every distill has its Table 5 scores, and only the distills
    assert set(published.DISTILL_SCORES) == set(published.R1_MODELS) - {"DeepSeek-R1"}


def test_a_gpu_needs_positive_memory_and_bandwidth():
    with pytest.raises(ValueError, match="positive"):
        published.GPU("broken", 0, 100)


# --------------------------------------------------------------------------------------------------
# R1's own training cost [R1-Nature, supplementary information]
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stage", "paper_gpu_hours", "paper_usd"),
    # The paper's rows: H800 GPU-hours and dollars at $2 per GPU-hour, both rounded to thousands.
    [
        ("DeepSeek-R1-Zero: RL from V3-Base", 101_000, 202_000),
        ("SFT data creation", 5_000, 10_000),
        ("DeepSeek-R1: cold start, RL, SFT, RL", 41_000, 82_000),
    ],
)
def test_r1_cost_rows_are_gpus_times_hours_as_the_paper_reports(stage, paper_gpu_hours, paper_usd):
    computed = sizing.r1_training_gpu_hours()[stage]
    # 512 H800s x 198 h = 101,376 and x 80 h = 40,960 GPU-hours; the paper rounds to thousands
    assert round(computed, -3) == paper_gpu_hours
    row = next(r for r in published.R1_TRAINING_STAGES if r.name == stage)
    assert (row.reported_gpu_hours, row.reported_usd) == (paper_gpu_hours, paper_usd)
    # its dollars are its rounded GPU-hours at V3's own price, $2 per GPU-hour
    assert paper_usd == paper_gpu_hours * published.V3_RENTAL_PRICE_PER_GPU_HOUR


def test_r1_cost_total_against_the_paper():
    rows = sizing.training_cost_table(2.0, sizing.r1_training_gpu_hours())
    total = rows[-1]
    assert total["stage"] == "total" and total["gpu_hours"] == 512 * 198 + 5_000 + 512 * 80
    # the paper's totals (147K GPU-hours, $294K) add its rounded rows; ours differ by the rounding only
    assert sum(r.reported_gpu_hours for r in published.R1_TRAINING_STAGES) == 147_000
    assert sum(r.reported_usd for r in published.R1_TRAINING_STAGES) == 294_000
    assert published.R1_REPORTED_TOTAL_GPU_HOURS == 147_000
    assert published.R1_REPORTED_TOTAL_USD == 294_000
    assert total["gpu_hours"] == pytest.approx(147_000, rel=0.003)
    assert total["cost_usd"] == pytest.approx(294_000, rel=0.003)
    # R1's own stages are about 5% of V3's official run in GPU-hours
    v3 = sum(published.V3_TRAINING_GPU_HOURS.values())
    assert round(total["gpu_hours"] / v3, 3) == 0.053


def test_gguf_bits_per_weight_from_the_block_layouts():
    # ggml-common.h: 256 weights per block in 50 (IQ1_S), 66 (IQ2_XXS), 144 (Q4_K), 210 (Q6_K) bytes;
    # llama-quantize labels IQ1_S "1.56 bpw" and IQ2_XXS "2.06 bpw", as Unsloth's table does.
    bits = published.GGUF_BITS
    assert (bits["IQ1_S"], bits["IQ2_XXS"], bits["Q4_K"], bits["Q6_K"]) == (1.5625, 2.0625, 4.5, 6.5625)
    assert round(bits["IQ1_S"], 2) == 1.56 and round(bits["IQ2_XXS"], 2) == 2.06
    q = published.UNSLOTH_R1_1_58BIT
    # the files' 130.60 GiB is what the blog rounds to "131GB"
    assert round(q.file_bytes / 2**30) == 131 and q.label == "131GB"
