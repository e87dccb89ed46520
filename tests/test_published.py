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


def test_v3_router_agrees_with_v3_config_and_the_moe_defaults():
    """The released router's expert counts are the config's; its renormalisation and group rule are
    what course_lib.moe picks for its gate by default (the paper's rule)."""
    from course_lib.moe import paper_defaults

    cfg = CONFIGS["DeepSeek-V3"]
    for name, router in published.ROUTERS.items():
        assert (router.normalize, router.group_score) == paper_defaults(router.score_func), name
        assert router.n_activated_experts <= router.topk_groups * (
            router.n_routed_experts // router.n_groups
        )
    v3 = published.ROUTERS["DeepSeek-V3"]
    assert (v3.n_routed_experts, v3.n_shared_experts, v3.n_activated_experts) == (
        cfg.n_routed_experts, cfg.n_shared_experts, cfg.n_activated_experts,
    )  # fmt: skip
    # V3 node-limited routing sums the best K_r / M affinities per node [V3 §2.1.2]: 8 / 4 = 2
    assert v3.n_activated_experts // v3.topk_groups == 2


def test_v3_yarn_reaches_the_last_context_phase():
    """YaRN's factor times the pre-training context covers the 128K phase [V3 §4.3]."""
    y = published.V3_YARN
    assert y.original_max_position == published.V3_CONTEXT_PHASES[0]
    assert y.factor * y.original_max_position >= published.V3_CONTEXT_PHASES[-1]
