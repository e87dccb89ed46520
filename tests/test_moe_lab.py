import numpy as np
import pytest

from course_lib.model import TinySeek
from course_lib.moe_lab import collapse_config, dense_twin, make_data, moe_config, run_variant


def test_dense_twin_has_the_same_active_parameters():
    cfg = moe_config()
    moe, dense = TinySeek(cfg), TinySeek(dense_twin(cfg))
    router = cfg.n_layers * cfg.n_routed_experts * cfg.d_model
    assert moe.num_parameters(active_only=True) - router == dense.num_parameters()
    assert moe.num_parameters() > 1.5 * dense.num_parameters()


def test_run_variant_collects_routing_stats():
    data = make_data(n_train=300, n_val=100, batch_size=4, seq_len=32, val_batches=2)
    cfg = moe_config(d_model=32, n_layers=1, n_heads=2, n_routed_experts=4, d_expert=8, balance="aux_free",
                     bias_gamma=0.05)  # fmt: skip
    run = run_variant("aux-free", cfg, data, steps=6, progress=False)
    assert run.loads.shape == (6, 1, 4) and (run.loads.sum(-1) == 4 * 32 * 2).all()
    assert run.domain_usage.shape == (1, 4, 4)
    np.testing.assert_allclose(run.domain_usage.sum(-1), 1.0, atol=1e-6)
    assert run.val_steps[-1] == 6 and len(run.val_losses) == len(run.val_steps)
    assert 1.0 <= run.end_max_over_mean() <= 4.0
    assert run.model.moe_layers()[0].router.bias.abs().sum() > 0  # the bias moved
    dense = run_variant("dense", dense_twin(cfg), data, steps=2, progress=False)
    assert dense.loads is None and dense.domain_usage is None
    with pytest.raises(ValueError, match="dense"):
        dense.end_max_over_mean()


def test_collapse_config_and_end_of_training_statistics():
    cfg = collapse_config()
    assert (cfg.score_func, cfg.n_activated_experts, cfg.n_routed_experts, cfg.n_shared_experts) == (
        "softmax", 1, 16, 0,
    )  # fmt: skip
    data = make_data(n_train=300, n_val=100, batch_size=4, seq_len=32, val_batches=2)
    run = run_variant(
        "collapse", collapse_config(d_model=32, n_heads=2), data, steps=10, progress=False
    )
    late = run.end_loads()  # last 10% of 10 steps: one step, 4 x 32 tokens x top-1 per layer
    assert late.shape == (2, 16) and (late.sum(-1) == 4 * 32).all()
    shares = late / late.sum(-1, keepdims=True)
    assert run.end_min_share() == pytest.approx(shares.min())
    assert run.end_max_violation() == pytest.approx(max(16 * shares.max(-1)) - 1)
    assert run.dead_experts() == [int((s < 0.01).sum()) for s in shares]
